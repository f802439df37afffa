"""Stepping the pipeline (``settle``) skips work only where nothing can have changed.

A reactor whose ``due`` reads only its folded state and the clock (timers, the
simulated kubelet) does not ask again at the same moment with nothing new
folded; a new event or a later clock must still be answered. The log is a
simulation's (``SoleWriterLog`` over SQLite), read through the components'
shared handle as ``build_pipeline`` gives it.
"""

from __future__ import annotations

from pathlib import Path

from eventbatch.clock import VirtualClock
from eventbatch.follow import SharedReads, read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.log.sole_writer import SoleWriterLog
from eventbatch.timers import TimerService
from schemas.envelope import Envelope
from schemas.events import TimerFired, TimerScheduled


def timer(name: str, at: int) -> Envelope:
    return Envelope.wrap(TimerScheduled(timer=name, fire_at=at, owner="default/j"), recorded_at=0)


async def fired(log) -> list[tuple[str, int]]:
    seen: list[Envelope] = []
    await read_to_tail(log, 0, seen.append)
    return [(e.payload.timer, e.payload.now) for e in seen if isinstance(e.payload, TimerFired)]


async def test_a_timer_idle_at_one_moment_fires_on_a_new_schedule_and_on_a_later_clock(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with SoleWriterLog(open_log(f"sqlite:///{tmp_path}/e.db")) as log:
        service = TimerService(log=SharedReads(log), clock=clock)
        await log.append([timer("a", 5_000)])
        assert await service.act() == 0  # not yet due
        assert await service.act() == 0
        clock.advance_to(5_000)
        assert await service.act() == 1  # the clock moved: due now
        assert await service.act() == 0
        await log.append([timer("b", 5_000)])  # at the same moment, something new is folded
        assert await service.act() == 1
        await log.append([timer("c", 9_000), timer("d", 1_000)])
        assert await service.act() == 1  # d, already past
        clock.advance_to(9_000)
        assert await service.act() == 1
        assert await fired(log) == [("a", 5_000), ("b", 5_000), ("d", 5_000), ("c", 9_000)]
