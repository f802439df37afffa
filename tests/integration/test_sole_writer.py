"""A simulation through ``SoleWriterLog`` writes exactly the log it writes without it."""

from __future__ import annotations

from pathlib import Path

from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.log.sole_writer import SoleWriterLog
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from schemas.envelope import Envelope
from schemas.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]


async def simulate(url: str, *, sole: bool, keep: int = 200_000) -> list[Envelope]:
    log = open_log(url)
    if sole:
        log = SoleWriterLog(log, keep=keep)
    scenario = load_scenario(ROOT / "examples" / "fair-share.yaml")
    async with log:
        result = await run_scenario(scenario, log=log, settings=Settings(), clock=VirtualClock())
    async with open_log(url) as plain:  # read back from disk, not from the kept tail
        events: list[Envelope] = []
        await read_to_tail(plain, result.start, events.append)
    return events


async def test_the_kept_tail_changes_nothing_on_disk(tmp_path: Path) -> None:
    plain = await simulate(f"sqlite:///{tmp_path}/plain.db", sole=False)
    cached = await simulate(f"sqlite:///{tmp_path}/sole.db", sole=True)
    tiny = await simulate(f"sqlite:///{tmp_path}/tiny.db", sole=True, keep=7)  # reads cross the tail edge
    assert len(plain) > 100
    assert cached == plain
    assert tiny == plain


async def test_reads_older_than_the_tail_come_from_the_backend(tmp_path: Path) -> None:
    from schemas.events import SchedulingRequested

    async with SoleWriterLog(open_log(f"sqlite:///{tmp_path}/e.db"), keep=3) as log:
        await log.append([Envelope.wrap(SchedulingRequested(now=i), recorded_at=i) for i in range(10)])
        assert await log.end_position() == 10
        seen: list[Envelope] = []
        await read_to_tail(log, 2, seen.append)
        assert [e.position for e in seen] == list(range(2, 10))
        assert [e.payload.now for e in seen] == list(range(2, 10))


async def test_appends_are_written_behind_in_batches_and_all_on_stop(tmp_path: Path) -> None:
    from schemas.events import SchedulingRequested

    url = f"sqlite:///{tmp_path}/e.db"
    events = [Envelope.wrap(SchedulingRequested(now=i), recorded_at=i) for i in range(10)]
    async with open_log(url) as disk, SoleWriterLog(open_log(url), flush_every=4) as log:
        assert await log.append(events[:3]) == [0, 1, 2]
        assert await disk.end_position() == 0  # below a batch: held, yet readable through the writer
        assert [e.payload.now for e in await _read(log)] == [0, 1, 2]
        assert await log.append(events[3:5]) == [3, 4]
        assert await disk.end_position() == 5  # a batch reached: one transaction
        await log.append(events[5:7])
        seen = []
        async for envelope in log.read(0, follow=True):  # a follower reads the backend: written first
            seen.append(envelope.payload.now)
            if len(seen) == 7:
                break
        assert seen == list(range(7)) and await disk.end_position() == 7
        await log.append(events[7:])
    async with open_log(url) as disk:
        assert [e.payload.now for e in await _read(disk)] == list(range(10))  # stop wrote the rest


async def _read(log) -> list[Envelope]:
    seen: list[Envelope] = []
    await read_to_tail(log, 0, seen.append)
    return seen


async def test_a_log_opened_with_history_reads_it_from_the_backend_and_the_rest_from_memory(tmp_path: Path) -> None:
    from eventbatch.follow import SharedReads
    from schemas.events import SchedulingRequested

    url = f"sqlite:///{tmp_path}/e.db"
    async with open_log(url) as disk:  # history written before the sole writer opened the log
        await disk.append([Envelope.wrap(SchedulingRequested(now=i), recorded_at=i) for i in range(5)])
    async with SoleWriterLog(open_log(url)) as log:
        for start in range(6):  # nothing appended yet: all of it from the backend
            assert [e.payload.now for e in await _read_from(SharedReads(log), start)] == list(range(start, 5))
        await log.append([Envelope.wrap(SchedulingRequested(now=i), recorded_at=i) for i in range(5, 8)])
        for handle in (log, SharedReads(log)):  # a component's shared handle reads the same
            for start in range(9):
                assert [e.payload.now for e in await _read_from(handle, start)] == list(range(start, 8))


async def test_every_start_reads_the_same_events_while_the_tail_is_trimmed(tmp_path: Path) -> None:
    from schemas.events import SchedulingRequested

    async with SoleWriterLog(open_log(f"sqlite:///{tmp_path}/e.db"), keep=3, flush_every=4) as log:
        for i in range(20):
            await log.append([Envelope.wrap(SchedulingRequested(now=i), recorded_at=i)])
            for start in range(i + 2):
                seen = await _read_from(log, start)
                assert [e.position for e in seen] == [e.payload.now for e in seen] == list(range(start, i + 1))


async def test_events_appended_while_reading_are_read_in_the_same_call(tmp_path: Path) -> None:
    from schemas.events import SchedulingRequested

    async with SoleWriterLog(open_log(f"sqlite:///{tmp_path}/e.db"), keep=2, flush_every=3) as log:
        await log.append([Envelope.wrap(SchedulingRequested(now=0), recorded_at=0)])
        seen: list[int] = []

        async def answer(envelope: Envelope) -> None:  # a handler appending its answer as it reads
            seen.append(envelope.payload.now)
            if envelope.payload.now < 9:
                await log.append([Envelope.wrap(SchedulingRequested(now=envelope.payload.now + 1), recorded_at=0)])

        assert await read_to_tail(log, 0, answer) == 10
        assert seen == list(range(10))


async def _read_from(log, start: int) -> list[Envelope]:
    seen: list[Envelope] = []
    await read_to_tail(log, start, seen.append)
    return seen
