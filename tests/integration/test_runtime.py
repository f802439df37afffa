"""The handler runtime, timers and scheduling trigger over real log backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eventbatch.clock import VirtualClock
from eventbatch.log.factory import open_log
from eventbatch.runtime import HandlerRunner
from eventbatch.snapshots import SPACING_BYTES, SnapshotStore
from eventbatch.timers import TimerService
from eventbatch.triggers import SchedulingTrigger
from schemas.envelope import Causation, Envelope
from schemas.events import (
    HandlerFailed,
    NodeRemoved,
    PodBound,
    SchedulingRequested,
    TimerCancelled,
    TimerFired,
    TimerScheduled,
)
from tests.integration.echo_handler import NAME, EchoHandler, expected_nodes


@pytest.fixture(params=["memory", "sqlite"])
async def log(request, tmp_path: Path):
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/events.db"
    async with open_log(url) as event_log:
        yield event_log


async def everything(log) -> list[Envelope]:
    end = await log.end_position()
    out: list[Envelope] = []
    if end:
        async for envelope in log.read(0):
            out.append(envelope)
            if envelope.position + 1 >= end:
                break
    return out


def request(at: int) -> Envelope:
    return Envelope.wrap(SchedulingRequested(now=at), recorded_at=at)


async def test_each_trigger_is_answered_once_as_one_stamped_batch(log) -> None:
    await log.append([request(100), request(200)])
    runner = HandlerRunner(handler=EchoHandler(), log=log)
    await runner.catch_up()
    await log.append([request(300)])
    await runner.catch_up()

    events = await everything(log)
    decisions = [e for e in events if e.causation]
    assert [d.causation.position for d in decisions] == [0] * 3 + [1] * 3 + [8] * 3
    assert [d.causation.index for d in decisions] == [0, 1, 2] * 3
    assert [d.recorded_at for d in decisions] == [100] * 3 + [200] * 3 + [300] * 3
    assert [d.payload.node for d in decisions if d.causation.index == 0] == expected_nodes(3)
    # each batch is contiguous, right where it was appended
    assert [d.position for d in decisions] == [2, 3, 4, 5, 6, 7, 9, 10, 11]

    again = HandlerRunner(handler=EchoHandler(), log=log)
    await again.catch_up()
    assert again.stats.triggers_answered == 0
    assert again.stats.replayed_answers == 3
    assert again.state == runner.state
    assert await log.end_position() == 12


async def test_a_batch_appended_twice_is_ignored_on_replay(log) -> None:
    await log.append([request(1), request(2)])
    first = HandlerRunner(handler=EchoHandler(), log=log)
    await first.catch_up()
    batch = [e for e in await everything(log) if e.causation and e.causation.position == 0]
    await log.append([Envelope.wrap(e.payload, recorded_at=e.recorded_at, causation=e.causation) for e in batch])

    replay = HandlerRunner(handler=EchoHandler(), log=log)
    await replay.catch_up()
    assert replay.stats.duplicates_ignored == 3
    assert replay.state == first.state == {"triggers": 2, "own": 6}
    assert replay.stats.triggers_answered == 0


async def test_a_failing_decide_is_dead_lettered_and_processing_goes_on(log) -> None:
    await log.append([request(1), request(2), request(3)])
    runner = HandlerRunner(handler=EchoHandler(fail_on={1}), log=log)
    await runner.catch_up()
    events = await everything(log)
    failures = [e for e in events if isinstance(e.payload, HandlerFailed)]
    assert len(failures) == 1
    assert failures[0].causation == Causation(1, NAME, 0)
    assert "planted failure at #1" in failures[0].payload.error
    assert sorted({e.causation.position for e in events if isinstance(e.payload, PodBound)}) == [0, 2]

    again = HandlerRunner(handler=EchoHandler(fail_on={1}), log=log)
    await again.catch_up()
    assert again.stats.handler_failures == 0  # not retried after a restart


def timer(name: str, at: int) -> Envelope:
    return Envelope.wrap(TimerScheduled(timer=name, fire_at=at, owner="default/j"), recorded_at=0)


async def test_timers_fire_on_the_virtual_clock_once(log) -> None:
    clock = VirtualClock()
    await log.append([timer("a", 5_000), timer("b", 2_000), timer("c", 9_000)])
    await log.append([Envelope.wrap(TimerCancelled(timer="c"), recorded_at=0), timer("a", 7_000)])
    service = TimerService(log=log, clock=clock)
    await service.catch_up()
    assert service.next_deadline() == 2_000
    assert await service.fire_due() == 0

    clock.advance_to(6_000)
    assert await service.fire_due() == 1  # b only: a moved to 7s, c was cancelled
    clock.advance_to(60_000)
    assert await service.fire_due() == 1
    fired = [e for e in await everything(log) if isinstance(e.payload, TimerFired)]
    assert [(f.payload.timer, f.payload.now) for f in fired] == [("b", 6_000), ("a", 60_000)]
    assert [f.causation.position for f in fired] == [1, 4]

    restarted = TimerService(log=log, clock=clock)
    await restarted.catch_up()
    assert restarted.pending == {}
    assert await restarted.fire_due() == 0


def node_gone(name: str) -> Envelope:
    return Envelope.wrap(NodeRemoved(node=name), recorded_at=0)


async def test_a_burst_of_relevant_events_yields_one_scheduling_request(log) -> None:
    clock = VirtualClock(start=1_000)
    trigger = SchedulingTrigger(
        log=log, clock=clock, is_relevant=lambda e: isinstance(e.payload, NodeRemoved), debounce_ms=50
    )
    await log.append([node_gone(f"n{i}") for i in range(5)])
    task = asyncio.create_task(trigger.run())
    try:
        async with asyncio.timeout(10):
            while clock.next_deadline() is None:  # noqa: ASYNC110 - the trigger's timer signals nothing: polled to a deadline
                await asyncio.sleep(0)
            assert clock.next_deadline() == 1_050
            clock.advance_to(1_050)
            while trigger.requested == 0:  # noqa: ASYNC110 - a counter, polled to a deadline
                await asyncio.sleep(0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    requests = [e for e in await everything(log) if isinstance(e.payload, SchedulingRequested)]
    assert len(requests) == 1
    assert requests[0].payload.now == 1_050
    assert requests[0].position == 5

    restarted = SchedulingTrigger(log=log, clock=clock, is_relevant=lambda e: True)
    await restarted.catch_up()
    assert not restarted.due  # the request already answers every event before it


async def test_the_trigger_keeps_one_request_ahead_of_the_scheduler(log) -> None:
    clock = VirtualClock(start=1_000)
    trigger = SchedulingTrigger(
        log=log, clock=clock, is_relevant=lambda e: isinstance(e.payload, NodeRemoved), debounce_ms=50
    )
    taken_up: set[int] = set()
    trigger.taken_up = lambda position: position in taken_up  # the scheduler's runner, in serve
    await log.append([node_gone("n0")])

    async def requests() -> list[Envelope]:
        return [e for e in await everything(log) if isinstance(e.payload, SchedulingRequested)]

    async def wait_for(condition) -> None:
        async with asyncio.timeout(10):
            while not await condition():
                if (deadline := clock.next_deadline()) is not None:
                    clock.advance_to(deadline)
                await asyncio.sleep(0.001)

    task = asyncio.create_task(trigger.run())
    try:
        await wait_for(lambda: _count(requests, 1))
        await log.append([node_gone("n1")])  # arrives while the scheduler works on the first
        await wait_for(lambda: _relevant_seen(trigger, 2))
        for _ in range(20):  # the debounce passes again and again: still no second request
            if (deadline := clock.next_deadline()) is not None:
                clock.advance_to(deadline)
            await asyncio.sleep(0.005)
        assert len(await requests()) == 1
        first = (await requests())[0]
        taken_up.add(first.position)  # the scheduler took it up: the next one goes out
        await wait_for(lambda: _count(requests, 2))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    second = (await requests())[1]
    assert second.causation.position == 2 and second.causation.handler == "scheduling-trigger"


async def _count(requests, n: int) -> bool:
    return len(await requests()) >= n


async def _relevant_seen(trigger: SchedulingTrigger, position: int) -> bool:
    return trigger.last_relevant >= position


@pytest.mark.parametrize(("session_ms", "window"), [(0.1, 2), (3.0, 24), (40.0, 50)])
async def test_the_window_before_a_session_follows_what_the_latest_session_cost(log, session_ms, window) -> None:
    """A quiet cluster (cheap sessions) is answered within the shortest window; a busy one
    gathers events for the full debounce; in between, eight times the latest session."""
    clock = VirtualClock(start=1_000)
    trigger = SchedulingTrigger(
        log=log, clock=clock, is_relevant=lambda e: isinstance(e.payload, NodeRemoved),
        debounce_ms=50, min_debounce_ms=2,
    )
    trigger.session_ms = lambda: session_ms  # the scheduler's runner, in serve
    await log.append([node_gone("n0")])
    task = asyncio.create_task(trigger.run())
    try:
        async with asyncio.timeout(10):
            while not (asked := [e for e in await everything(log) if isinstance(e.payload, SchedulingRequested)]):
                if (deadline := clock.next_deadline()) is not None:
                    clock.advance_to(deadline)
                await asyncio.sleep(0.001)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert asked[0].payload.now == 1_000 + window


class _Ballast:
    """A handler whose state holds ``size`` bytes besides a count of the events it folded."""

    name = "ballast"

    def __init__(self, size: int) -> None:
        self.size = size

    def initial(self) -> dict:
        return {"folded": 0, "ballast": "x" * self.size}

    def fold(self, state: dict, envelope: Envelope) -> dict:
        state["folded"] += 1
        return state

    def decide(self, state: dict, envelope: Envelope) -> list:
        return []


@pytest.mark.parametrize(("size", "saved"), [(1000, 12), (3 * SPACING_BYTES, 4)])
async def test_a_large_state_is_snapshotted_at_intervals_grown_with_its_size(tmp_path: Path, size: int, saved: int) -> None:
    """Encoding a state costs in proportion to its size: a state of three times ``SPACING_BYTES``
    is snapshotted every 3 x ``snapshot_every`` events (after the first), a small one every
    ``snapshot_every``, and
    a restart from the last snapshot of either reads the tail and folds every event once."""
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log, SnapshotStore(tmp_path / "snapshots.db") as store:
        await log.append([request(i) for i in range(125)])
        runner = HandlerRunner(handler=_Ballast(size), log=log, snapshots=store, snapshot_every=10)
        await runner.catch_up()
        assert runner.stats.snapshots_saved == saved  # 10, 20, ... 120; or 10, 40, 70, 100
        restarted = HandlerRunner(handler=_Ballast(size), log=log, snapshots=store, snapshot_every=10)
        await restarted.catch_up()
        assert restarted.stats.restored_from == (120 if saved == 12 else 100)
        assert restarted.state["folded"] == 125
