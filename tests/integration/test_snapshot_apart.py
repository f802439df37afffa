"""Snapshots encoded apart: a large state's snapshot made by a forked copy of ``serve``.

A large state takes tens to hundreds of milliseconds to encode, which would hold every component
on the event loop; while following the log, a runner whose latest snapshot took over ``APART_MS``
to encode hands the next to a forked child and goes on folding. These tests hold the guarantees that must survive that: the snapshot is the
state at the position it names (not what was folded after), a state the codec refuses stores
nothing, and a restart from such a snapshot folds every event once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from eventbatch.log.factory import open_log
from eventbatch.runtime import HandlerRunner
from eventbatch.snapshots import ComponentSnapshot, SnapshotStore, StateCodecFailed, apart_possible
from schemas.envelope import Envelope
from schemas.events import SchedulingRequested

pytestmark = pytest.mark.skipif(not apart_possible(), reason="snapshots are encoded apart on Linux only")


async def test_a_snapshot_encoded_apart_is_the_state_at_the_call_whatever_is_folded_after(tmp_path: Path) -> None:
    async with SnapshotStore(tmp_path / "snapshots.db") as store:
        state = {"folded": 7, "jobs": {f"job-{i}": ["pod-a", "pod-b", i] for i in range(20_000)}}
        saving = store.save_apart(ComponentSnapshot("job-controller", 8, state, last_answered=6))
        state["folded"] = 99  # the component goes on folding at once
        state["jobs"].clear()
        size = await saving
        loaded = await store.load("job-controller")
    assert size > 100_000
    assert loaded is not None
    assert (loaded.position, loaded.last_answered, loaded.state["folded"]) == (8, 6, 7)
    assert loaded.state["jobs"]["job-19999"] == ["pod-a", "pod-b", 19999]
    assert len(loaded.state["jobs"]) == 20_000


async def test_a_state_the_codec_refuses_stores_nothing(tmp_path: Path) -> None:
    async with SnapshotStore(tmp_path / "snapshots.db") as store:
        with pytest.raises(StateCodecFailed, match="could not be encoded"):
            await store.save_apart(ComponentSnapshot("odd", 3, {"held": object()}))
        assert await store.load("odd") is None


class _Counter:
    """A handler whose large state counts the events it folded: a snapshot's count must be
    its position exactly, whatever the runner folded while the snapshot was encoded."""

    name = "counter"

    def initial(self) -> dict:
        return {"folded": 0, "ballast": [{"pod": f"p-{i}", "held": [i, None]} for i in range(12_000)]}

    def fold(self, state: dict, envelope: Envelope) -> dict:
        state["folded"] += 1
        return state

    def decide(self, state: dict, envelope: Envelope) -> list:
        return []


def request(at: int) -> Envelope:
    return Envelope.wrap(SchedulingRequested(now=at), recorded_at=at)


async def test_a_following_runner_snapshots_a_large_state_apart_and_a_restart_folds_every_event_once(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log, SnapshotStore(tmp_path / "snapshots.db") as store:
        await store.save(ComponentSnapshot("probe", 0, _Counter().initial()))
        assert store.slow_to_encode("probe")  # the ballast takes long enough to encode to go apart
        runner = HandlerRunner(handler=_Counter(), log=log, snapshots=store, snapshot_every=10)
        following = asyncio.create_task(runner.run())
        try:
            for start in range(0, 400, 20):
                await log.append([request(start + i) for i in range(20)])
            async with asyncio.timeout(30):
                while runner.next_position < 400 or runner.stats.snapshots_saved < 2:  # noqa: ASYNC110 - the runner has no event to wait on; bounded by the timeout
                    await asyncio.sleep(0.01)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        await runner.checkpoint()  # waits for one still being encoded, then saves here
        saved = await store.load("counter")
        assert saved is not None and saved.position == 400 and saved.state["folded"] == 400

        await log.append([request(400 + i) for i in range(5)])
        restarted = HandlerRunner(handler=_Counter(), log=log, snapshots=store, snapshot_every=10)
        await restarted.catch_up()
    assert restarted.stats.restored_from == 400
    assert restarted.state["folded"] == 405


async def test_each_snapshot_saved_apart_holds_the_state_at_its_own_position(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log, SnapshotStore(tmp_path / "snapshots.db") as store:
        runner = HandlerRunner(handler=_Counter(), log=log, snapshots=store, snapshot_every=10)
        following = asyncio.create_task(runner.run())
        positions: list[int] = []
        try:
            for start in range(0, 1000, 10):
                await log.append([request(start + i) for i in range(10)])
                saved = await store.load("counter")
                if saved is not None:
                    assert saved.state["folded"] == saved.position  # never a later state
                    if not positions or positions[-1] != saved.position:
                        positions.append(saved.position)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
    assert len(positions) >= 2  # snapshots kept landing while the runner followed the log


def test_an_encoder_that_outlives_its_deadline_is_killed_and_counts_as_failed() -> None:
    """A stuck child can never hold up a checkpoint: past the deadline it is killed and reaped."""
    import os
    import time

    from eventbatch.snapshots import _collect

    read_end, write_end = os.pipe()  # the write end stays open here: the pipe never ends by itself
    pid = os.posix_spawnp("sleep", ["sleep", "60"], dict(os.environ))
    began = time.monotonic()
    try:
        assert _collect(pid, read_end, deadline_s=0.5) is None
    finally:
        os.close(write_end)
    assert time.monotonic() - began < 10
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass  # reaped: gone
    else:
        raise AssertionError(f"the encoder {pid} is still there")
