"""Snapshots and the shape of state: one saved by code whose state had another shape is never used.

A restart loads each component's snapshot only if the record classes its
state holds still have the attributes they were saved with
(``statecodec.shape_changes``); otherwise the component folds the log from
the start, says so in one WARNING line, and the log it writes is the one of
an uninterrupted run. ``compact`` refuses to cut the log for such a
snapshot. Runs the real pipeline (queue and job controllers, scheduler,
node controller, timers, simulated kubelet, scheduling trigger) on a real
SQLite log and snapshot store, restarted midway (``test_replay.drive``).
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec

from eventbatch import statecodec
from eventbatch.app import build_pipeline
from eventbatch.clock import VirtualClock
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.snapshots import ComponentSnapshot, SnapshotStore, unfit
from handlers.scheduler import is_relevant
from tests.integration.test_readmodels import workload
from tests.integration.test_replay import canonical, drive, handlers, records

ROOT = Path(__file__).resolve().parents[2]
# What the scheduler's state gained in this version: a snapshot of the previous one lacks them.
NEW_IN_CLUSTER_STATE = ("live_groups", "groups_by_job", "node_seq", "node_touched", "held_dims")


def without_shapes(blob: bytes) -> bytes:
    """The bytes the previous eventbatch wrote for the same state: no shapes kept."""
    version, table, root = msgspec.msgpack.decode(blob[len(statecodec.MAGIC):])[:3]
    return statecodec.MAGIC + msgspec.msgpack.encode([version, table, root])


def rows(path: Path) -> dict[str, bytes]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT name, data FROM snapshots ORDER BY name"))


def rewrite(path: Path, name: str, blob: bytes) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE snapshots SET data = ? WHERE name = ?", (blob, name))


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "eventbatch.snapshots" and r.levelno == logging.WARNING]


async def run(tmp_path: Path, tamper=None, *, name: str = "run"):
    """The workload through the pipeline with snapshots every 20 events, restarted after
    three settles; ``tamper(store, path)`` is awaited on the saved snapshots first.
    Returns the final pipeline, the log's records and the store's path."""
    store_path = tmp_path / f"{name}-snapshots.db"

    async def before_restart(current) -> None:
        await current.checkpoint()
        if tamper is not None:
            await tamper(store, store_path)

    async with open_log(f"sqlite:///{tmp_path / f'{name}.db'}") as log, SnapshotStore(store_path) as store:
        final = await drive(workload(tmp_path, jobs=8, ttl=True), log, snapshots=store, every=20,
                            restart_after=3, before_restart=before_restart)
        return final, await records(log), store_path


async def uninterrupted(tmp_path: Path):
    async with open_log(f"sqlite:///{tmp_path / 'reference.db'}") as log:
        final = await drive(workload(tmp_path, jobs=8, ttl=True), log)
        return final, await records(log)


def same_states(final, reference) -> None:
    for runner, expected in zip(final.runners, reference.runners, strict=True):
        assert canonical(runner.state) == canonical(expected.state), runner.name
        assert runner.stats.fold_failures == 0, runner.name


async def test_snapshots_the_previous_eventbatch_saved_are_not_used_and_the_log_is_folded_instead(
    tmp_path: Path, caplog
) -> None:
    reference, expected = await uninterrupted(tmp_path)

    async def previous_version(store: SnapshotStore, path: Path) -> None:
        # The scheduler's state as the previous version held it, in the bytes it wrote.
        saved = await store.load("scheduler")
        for attribute in NEW_IN_CLUSTER_STATE:
            delattr(saved.state, attribute)
        await store.save(saved)
        for name, blob in rows(path).items():
            rewrite(path, name, without_shapes(blob))

    caplog.set_level(logging.WARNING, logger="eventbatch.snapshots")
    final, written, path = await run(tmp_path, previous_version)
    assert written == expected  # nothing lost, no decision made twice
    assert {r.name: r.stats.restored_from for r in final.runners} == {r.name: -1 for r in final.runners}
    same_states(final, reference)
    said = warnings_of(caplog)
    assert sorted(m.split()[1] for m in said) == sorted(rows(path)), said  # one line per snapshot
    scheduler = next(m for m in said if m.startswith("snapshot scheduler "))
    assert "not used: it was saved by an older eventbatch, which did not record the shape of its state" in scheduler
    assert scheduler.endswith("scheduler folds its state from the log instead")
    assert all(unfit(blob) is None for blob in rows(path).values())  # saved again, in this shape


async def test_a_snapshot_of_a_state_missing_a_field_is_not_used(tmp_path: Path, caplog) -> None:
    reference, expected = await uninterrupted(tmp_path)

    async def drop_a_field(store: SnapshotStore, path: Path) -> None:
        saved = await store.load("scheduler")
        del saved.state.live_groups
        await store.save(ComponentSnapshot(saved.name, saved.position, saved.state, saved.last_answered))

    caplog.set_level(logging.WARNING, logger="eventbatch.snapshots")
    final, written, _ = await run(tmp_path, drop_a_field)
    assert written == expected
    restored = {r.name: r.stats.restored_from for r in final.runners}
    assert restored.pop("scheduler") == -1
    assert all(position > 0 for position in restored.values()), restored  # the others still load theirs
    same_states(final, reference)
    [said] = warnings_of(caplog)
    assert "the shape of its state has changed since it was saved (projections.cluster_model:ClusterState)" in said


async def test_a_snapshot_saved_with_another_shape_of_a_class_is_not_used(tmp_path: Path, caplog) -> None:
    reference, expected = await uninterrupted(tmp_path)

    async def other_shape(store: SnapshotStore, path: Path) -> None:
        # As if the job controller's record classes had other fields when it was saved.
        blob = rows(path)["job-controller"]
        version, table, root, shapes = msgspec.msgpack.decode(blob[len(statecodec.MAGIC):])
        assert "projections.job_records:JobsState" in shapes
        shapes["projections.job_records:JobsState"] = "0" * 16
        rewrite(path, "job-controller", statecodec.MAGIC + msgspec.msgpack.encode([version, table, root, shapes]))

    caplog.set_level(logging.WARNING, logger="eventbatch.snapshots")
    final, written, _ = await run(tmp_path, other_shape)
    assert written == expected
    restored = {r.name: r.stats.restored_from for r in final.runners}
    assert restored.pop("job-controller") == -1
    assert all(position > 0 for position in restored.values()), restored
    same_states(final, reference)
    [said] = warnings_of(caplog)
    assert said.startswith("snapshot job-controller (#") and "(projections.job_records:JobsState)" in said


async def test_snapshots_of_this_eventbatch_are_loaded_and_say_nothing(tmp_path: Path, caplog) -> None:
    reference, expected = await uninterrupted(tmp_path)
    caplog.set_level(logging.WARNING, logger="eventbatch.snapshots")
    final, written, path = await run(tmp_path)
    assert written == expected
    assert all(r.stats.restored_from > 0 for r in final.runners), [(r.name, r.stats.restored_from) for r in final.runners]
    same_states(final, reference)
    assert warnings_of(caplog) == []
    saved = rows(path)
    assert {"scheduler", "job-controller", "timers", "sim", "scheduling-trigger"} <= set(saved)
    assert {name: statecodec.shape_changes(blob) for name, blob in saved.items()} == {name: [] for name in saved}


def eventbatch(log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


async def start_of(log_path: Path) -> int:
    async with open_log(f"sqlite:///{log_path}") as log:
        return await log.start_position()


async def test_compact_refuses_a_snapshot_this_eventbatch_would_not_use_until_it_is_saved_again(
    tmp_path: Path
) -> None:
    _, _, path = await run(tmp_path)
    log_path = tmp_path / "run.db"
    rewrite(path, "scheduler", without_shapes(rows(path)["scheduler"]))

    for args in (("--dry-run",), ()):
        refused = eventbatch(log_path, "compact", "--snapshots", str(path), *args)
        assert refused.returncode == 2, (refused.stdout, refused.stderr)
        assert refused.stdout == ""
        [line] = refused.stderr.splitlines()
        assert line.startswith("eventbatch: error: snapshot scheduler (#"), line
        assert "cannot be used by this eventbatch: it was saved by an older eventbatch" in line
        assert line.endswith("scheduler needs the log from the start until serve saves a new snapshot of it")
    assert await start_of(log_path) == 0

    # A new process folds the scheduler from the log and snapshots it: compact goes ahead.
    async with open_log(f"sqlite:///{log_path}") as log, SnapshotStore(path) as store:
        pipeline = build_pipeline(log=log, clock=VirtualClock(), handlers=handlers(), settings=Settings(),
                                  is_relevant=is_relevant, cluster="sim", snapshots=store, snapshot_every=20)
        await pipeline.settle()
        assert {r.name: r.stats.restored_from for r in pipeline.runners}["scheduler"] == -1
        await pipeline.checkpoint()
    done = eventbatch(log_path, "compact", "--snapshots", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("removed #0..#"), done.stdout
    assert await start_of(log_path) > 0


async def test_a_component_snapshot_without_an_attribute_its_state_now_has_is_not_used(
    tmp_path: Path, caplog
) -> None:
    reference, expected = await uninterrupted(tmp_path)

    async def older_kubelet(store: SnapshotStore, path: Path) -> None:
        # The simulated kubelet as a version that kept no ``seq`` saved it.
        saved = await store.load("sim")
        del saved.state["seq"]
        await store.save(saved)

    caplog.set_level(logging.WARNING, logger="eventbatch.snapshots")
    final, written, _ = await run(tmp_path, older_kubelet)
    assert written == expected
    assert all(r.stats.restored_from > 0 for r in final.runners)
    [sim] = [c for c in final.components() if c.name == "sim"]
    [was] = [c for c in reference.components() if c.name == "sim"]
    assert {a: canonical(getattr(sim, a)) for a in sim.STATE} == {a: canonical(getattr(was, a)) for a in was.STATE}
    [said] = warnings_of(caplog)
    assert said.startswith("snapshot sim (#")
    assert "not used: it holds ['pods', 'timed', 'work'], this eventbatch keeps ['pods', 'seq', 'timed', 'work']" in said
