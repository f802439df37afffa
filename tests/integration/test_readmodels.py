"""Read models in SQLite: a live projector, a rebuild from 0 and a restart all agree.

A generated workload runs through the real pipeline (queue and job
controllers, scheduler, simulated kubelet) on a real log. A projector follows
the log while it runs, as in production; afterwards a rebuild from position 0
into a fresh database must hold exactly the same rows, and the queue status
must match what the simulation report (an independent fold of the same log)
says about each queue.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from contextlib import suppress
from pathlib import Path

import pytest

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.readmodels import Projector, ReadModelStore
from eventbatch.readmodels.store import SCHEMA_VERSION, OldViewsStore
from eventbatch.replay import rebuild
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from eventbatch.sim.report import build_report
from schemas.scenario import Scenario, load_scenario


def workload(tmp_path: Path, *, jobs: int = 12, seed: int = 0, ttl: bool = False) -> Scenario:
    """Jobs of 1-3 pods over two queues on 3 small nodes; some fail with exit 3 and are retried."""
    entries = []
    for i in range(jobs):
        k = (i * 7 + seed * 13) % 11
        replicas = 1 + k % 3
        annotations = {"eventbatch.io/sim-duration": f"{1 + k % 4}m"}
        if k in (3, 8):
            annotations["eventbatch.io/sim-exit-code"] = "3"
        spec = {
            "queue": "batch" if k % 2 else "research",
            "minAvailable": replicas,
            "maxRetry": 1 + k % 2,
            "policies": [{"exitCode": 3, "action": "RestartJob"}],
            "tasks": [{
                "name": "main",
                "replicas": replicas,
                "template": {
                    "metadata": {"annotations": annotations},
                    "spec": {"containers": [{"name": "main", "image": "busybox",
                                             "resources": {"requests": {"cpu": str(1 + k % 2), "memory": "1Gi"}}}]},
                },
            }],
        }
        if ttl and k % 4 == 0:
            spec["ttlSecondsAfterFinished"] = 30
        entries.append({"at": f"{(i * (3 + seed % 5)) % 240}s", "apply": {
            "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job",
            "metadata": {"name": f"job-{i:03d}", "namespace": "default"}, "spec": spec}})
    entries.sort(key=lambda e: int(e["at"][:-1]))
    raw = {
        "nodes": [{"prefix": "node-", "count": 3, "allocatable": {"cpu": 4, "memory": "16Gi"}}],
        "queues": [
            {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": name},
             "spec": {"weight": weight}}
            for name, weight in (("default", 1), ("batch", 1), ("research", 2))
        ],
        "workload": entries,
        "until": "all-finished",
    }
    path = tmp_path / f"workload-{seed}-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(raw))
    return load_scenario(str(path))


async def rows_of(path: Path, log) -> dict:
    """Every row of the store at ``path``; its timelines' records are read from ``log``."""
    async with ReadModelStore(path, log=log) as store:
        return await store.all_rows()


def report_queues(events, end: int) -> dict[str, dict[str, int]]:
    """The last point of each queue's podgroup counts in the simulation report."""
    last: dict[str, dict[str, int]] = {}
    for point in build_report(events, end=end).queue_series:
        last[point["queue"]] = {p: point[p] for p in ("Pending", "Inqueue", "Running", "Completed")}
    return last


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
def log_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    return f"kafka://{bootstrap}/eventbatch-test-{uuid.uuid4().hex[:12]}"


async def test_queue_status_after_replay_equals_the_live_status(log_url: str, tmp_path: Path) -> None:
    scenario = workload(tmp_path, jobs=14)
    async with open_log(log_url) as log, ReadModelStore(tmp_path / "live.db") as live_store:
        live = Projector(log=log, store=live_store, chunk=16, snapshot_every=40)
        follower = asyncio.create_task(live.run(), name="live-projector")
        try:
            result = await run_scenario(scenario, log=log, settings=Settings())
            async with asyncio.timeout(30):
                # what the store holds, not the fold's position: a chunk is folded before it is written
                while await live_store.position() < result.end - 1:  # noqa: ASYNC110 - the store signals no write: polled to a deadline
                    await asyncio.sleep(0.01)
        finally:
            follower.cancel()
            with suppress(asyncio.CancelledError):
                await follower
        events = []
        await read_to_tail(log, 0, events.append)
        await rebuild(log, tmp_path / "rebuilt.db", chunk=1000)
        live_rows = await rows_of(tmp_path / "live.db", log)
        rebuilt_rows = await rows_of(tmp_path / "rebuilt.db", log)
    assert rebuilt_rows == live_rows
    queues = {r.name: r for r in rebuilt_rows["queue_view"]}
    expected = report_queues(events, result.end)
    assert {q: {"Pending": r.pending, "Inqueue": r.inqueue, "Running": r.running, "Completed": r.completed}
            for q, r in queues.items() if q in expected} == expected
    # every job's podgroup is counted, and most ran to their end: the comparison is not vacuous
    assert sum(r.pending + r.inqueue + r.running + r.completed + r.unknown for r in queues.values()) == 14
    assert sum(r.completed for r in queues.values()) >= 10
    assert {r.phase for r in rebuilt_rows["job_view"]} >= {"Completed", "Failed"}


async def test_a_restart_resumes_from_the_snapshot_and_the_tracked_position(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    async with open_log(url) as log:
        result = await run_scenario(workload(tmp_path, jobs=10, ttl=True), log=log, settings=Settings())
        half = result.end // 2
        async with ReadModelStore(tmp_path / "views.db") as store:
            first = Projector(log=log, store=store, chunk=25, snapshot_every=100)
            await first.catch_up(to=half)
            assert await store.position() == half - 1
        async with ReadModelStore(tmp_path / "views.db") as store:  # a new process, the same file
            second = Projector(log=log, store=store, chunk=25, snapshot_every=100)
            await second.catch_up()
            assert 0 < second.stats.resumed_from <= half - 1
            assert second.stats.folded < result.end  # snapshot + tail, not a full replay
            assert await store.position() == result.end - 1
        await rebuild(log, tmp_path / "rebuilt.db")
        assert await rows_of(tmp_path / "views.db", log) == await rows_of(tmp_path / "rebuilt.db", log)


async def test_a_finished_job_removed_by_its_ttl_leaves_memory_but_keeps_its_audit(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log:
        await run_scenario(workload(tmp_path, jobs=8, ttl=True), log=log, settings=Settings())
        async with ReadModelStore(tmp_path / "views.db") as store:
            projector = Projector(log=log, store=store)
            await projector.catch_up()
            jobs = {r.key for r in await store.rows("job_view")}
            audited = {r.name for r in await store.audit("job")}
    removed = audited - jobs
    assert removed, "some jobs have a TTL and are removed"
    views = projector.views
    assert not removed & set(views.jobs)
    assert not removed & {group.job for group in views.groups.values()}
    assert not {p for p in [*views.pods, *views.holds] if p.rsplit("-", 2)[0] in removed}


async def test_timelines_are_read_from_the_log_and_from_the_records_kept_before_it_is_compacted(tmp_path: Path) -> None:
    """A timeline holds positions: its records come from the log, and below a compaction
    from the copies ``keep_records`` made; a record removed without one is named as such."""
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log:
        await run_scenario(workload(tmp_path, jobs=6), log=log, settings=Settings())
        async with ReadModelStore(tmp_path / "views.db") as store:
            await Projector(log=log, store=store).catch_up()
            before = await store.audit("job")
            horizon = (await log.end_position()) // 2
            kept = await store.keep_records(log, horizon)
    assert kept > 0 and any(r.position < horizon for r in before)
    assert all(r.detail != "record removed from the log" for r in before)
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log:
        assert await log.truncate(horizon) == horizon
        async with ReadModelStore(tmp_path / "views.db", log=log) as store:
            assert await store.audit("job") == before
        async with ReadModelStore(tmp_path / "views.db", log=log) as store:
            await store.db.execute("DELETE FROM audit_records")
            await store.db.commit()
            after = await store.audit("job")
    assert [r.position for r in after] == [r.position for r in before]
    gone = [r for r in after if r.position < horizon]
    assert gone and all(r.detail == "record removed from the log" and r.type == "?" for r in gone)
    assert [r for r in after if r.position >= horizon and r.cause_position is None] == [
        r for r in before if r.position >= horizon and r.cause_position is None]


async def test_a_store_of_another_layout_is_refused_rather_than_misread(tmp_path: Path) -> None:
    path = tmp_path / "views.db"
    with sqlite3.connect(path) as db:  # the layout before versions: records in the timelines, user_version 0
        db.execute("CREATE TABLE audit_causes (position INTEGER PRIMARY KEY, record BLOB NOT NULL)")
    with pytest.raises(OldViewsStore, match="written by another eventbatch.*delete it to rebuild"):
        await ReadModelStore(path).start()
    fresh = tmp_path / "fresh.db"
    async with ReadModelStore(fresh):
        pass
    with sqlite3.connect(fresh) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    async with ReadModelStore(fresh) as store:  # this layout opens again
        assert await store.position() == -1
