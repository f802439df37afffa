"""Replay: verify reproduces every recorded decision and reports planted ones;
the status at a past position; snapshot + tail equals a full replay.

Logs come from the real pipeline (queue and job controllers, scheduler,
simulated kubelet) on a virtual clock.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventbatch.app import build_pipeline
from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.codec import decode, encode
from eventbatch.log.factory import open_log
from eventbatch.log.memory import MemoryLog
from eventbatch.readmodels import Projector, ReadModelStore
from eventbatch.replay import state_at
from eventbatch.runtime import HandlerRunner
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from eventbatch.sim.inputs import cluster_events, step_events
from eventbatch.snapshots import SnapshotStore, retention_horizon
from eventbatch.verify import verify
from handlers.job import JobHandler
from handlers.queue import QueueHandler
from handlers.scheduler import SchedulerHandler, is_relevant
from schemas.envelope import Envelope
from schemas.events import PodFailed, SchedulingRequested
from schemas.scenario import load_scenario
from tests.integration.test_readmodels import workload


def handlers():
    return [QueueHandler(), JobHandler(), SchedulerHandler()]


async def recorded(tmp_path: Path, jobs: int = 10) -> Path:
    path = tmp_path / "events.db"
    async with open_log(f"sqlite:///{path}") as log:
        await run_scenario(workload(tmp_path, jobs=jobs), log=log, settings=Settings())
    return path


def doctor(source: Path, target: Path, change) -> tuple[int, Envelope]:
    """Copy an SQLite log and rewrite the first record ``change`` returns a new envelope for."""
    shutil.copy(source, target)
    with sqlite3.connect(target) as db:
        for position, data in db.execute("SELECT position, data FROM events ORDER BY position").fetchall():
            original = decode(position, data)
            doctored = change(original)
            if doctored is not None:
                db.execute("UPDATE events SET data = ? WHERE position = ?", (encode(doctored), position))
                return position, original
    raise AssertionError("nothing to doctor")


async def verify_file(path: Path):
    async with open_log(f"sqlite:///{path}") as log:
        return await verify(log, handlers())


async def test_verify_reproduces_every_decision_of_a_recorded_simulation(tmp_path: Path) -> None:
    report = await verify_file(await recorded(tmp_path))
    assert report.ok, [d.describe() for d in report.divergences]
    assert {name: c.decisions_matched > 0 for name, c in report.checks.items()} == {
        "queue-controller": True, "job-controller": True, "scheduler": True}
    assert report.not_verified == {}  # the components' effects are checked too
    assert report.effects_verified and report.effects == [], [e.describe() for e in report.effects]
    checked = {name: (c.answers > 0, c.answers == c.reproduced) for name, c in report.effect_checks.items()}
    assert checked == {"sim": (True, True), "scheduling-trigger": (True, True)}


async def sim_answers(path: Path) -> list[Envelope]:
    async with open_log(f"sqlite:///{path}") as log:
        return [e async for e in log.read(0) if e.causation is not None and e.causation.handler == "sim"]


async def test_verify_reports_a_duplicated_effect_of_the_simulated_kubelet(tmp_path: Path) -> None:
    source = await recorded(tmp_path)
    again = next(e for e in await sim_answers(source) if e.type == "PodCreated")
    async with open_log(f"sqlite:///{source}") as log:  # the same answer appended a second time
        [position] = await log.append([again])
    report = await verify_file(source)
    assert not report.ok
    assert [(e.kind, e.component, e.cause, e.position) for e in report.effects] == [
        ("duplicated", "sim", again.causation.position, position)]
    assert f"answers #{again.causation.position} again" in report.effects[0].describe()


async def test_verify_reports_an_effect_the_simulated_kubelet_would_not_have_made(tmp_path: Path) -> None:
    source = await recorded(tmp_path)

    def fail_instead(env: Envelope):  # a pod that succeeded recorded as failed
        if env.type == "PodSucceeded" and env.causation is not None:
            failed = PodFailed(pod=env.payload.pod, job=env.payload.job, exit_code=1, reason="Error")
            return msgspec.structs.replace(env, type="PodFailed", payload=failed)
        return None

    position, original = doctor(source, tmp_path / "doctored.db", fail_instead)
    report = await verify_file(tmp_path / "doctored.db")
    unreproduced = [e for e in report.effects if e.kind == "unreproduced"]
    assert [(e.component, e.position) for e in unreproduced] == [("sim", position)]
    assert "PodSucceeded(" in unreproduced[0].expected and "PodFailed(" in unreproduced[0].recorded


async def test_verify_reports_an_effect_that_was_due_and_never_made(tmp_path: Path) -> None:
    source = await recorded(tmp_path)

    def forget(env: Envelope):  # the kubelet's first PodCreated is not on the log: another record is there
        if env.type == "PodCreated" and env.causation is not None:
            other = SchedulingRequested(scheduler="another-scheduler", now=env.recorded_at, reason="doctored")
            return Envelope.wrap(other, recorded_at=env.recorded_at)
        return None

    position, original = doctor(source, tmp_path / "doctored.db", forget)
    report = await verify_file(tmp_path / "doctored.db")
    lost = [e for e in report.effects if e.kind == "lost"]
    assert [(e.component, e.cause) for e in lost] == [("sim", original.causation.position)]
    assert "was due and never appended" in lost[0].describe()


async def test_verify_refuses_an_empty_log(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path}/empty.db") as log:
        report = await verify(log, handlers())
    assert report.empty and not report.ok


async def test_verify_reports_a_doctored_bind_with_what_the_scheduler_decides_instead(tmp_path: Path) -> None:
    source = await recorded(tmp_path)

    def move_bind(env: Envelope):
        if env.type == "PodBound":
            other = "node-1" if env.payload.node != "node-1" else "node-2"
            return msgspec.structs.replace(env, payload=msgspec.structs.replace(env.payload, node=other))
        return None

    position, original = doctor(source, tmp_path / "doctored.db", move_bind)
    report = await verify_file(tmp_path / "doctored.db")
    assert not report.ok
    first = report.divergences[0]
    assert (first.kind, first.handler, first.position, first.trigger) == (
        "unreproduced", "scheduler", position, original.causation.position)
    assert f"node='{original.payload.node}'" in first.decided
    assert f"#{position} scheduler: recorded PodBound(" in first.describe()


async def test_verify_reports_a_decision_missing_from_the_log(tmp_path: Path) -> None:
    source = await recorded(tmp_path)

    def drop_answer(env: Envelope):  # the job controller's answer turned into someone else's event
        if env.type == "PodRequested" and env.causation is not None:
            return msgspec.structs.replace(env, causation=None)
        return None

    position, original = doctor(source, tmp_path / "doctored.db", drop_answer)
    report = await verify_file(tmp_path / "doctored.db")
    missing = [d for d in report.divergences if d.kind == "unrecorded"]
    assert missing and missing[0].handler == "job-controller"
    assert missing[0].trigger == original.causation.position
    assert missing[0].decided.startswith(f"PodRequested(pod='{original.payload.pod}'")


async def test_state_at_a_position_equals_the_read_models_caught_up_to_it(tmp_path: Path) -> None:
    path = await recorded(tmp_path)
    async with open_log(f"sqlite:///{path}") as log:
        end = await log.end_position()
        for cut in (end // 3, end // 2, end - 1):
            views = await state_at(log, to=cut)
            async with ReadModelStore(tmp_path / f"views-{cut}.db") as store:
                await Projector(log=log, store=store).catch_up(to=cut + 1)
                stored = await store.all_rows()
            rows = views.snapshot_rows()
            assert rows.queues == stored["queue_view"]  # both in key order
            assert rows.jobs == stored["job_view"]
            assert rows.nodes == stored["node_view"]


async def test_state_at_a_time_is_the_log_as_it_stood_then(tmp_path: Path) -> None:
    path = await recorded(tmp_path)
    async with open_log(f"sqlite:///{path}") as log:
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
        moment = events[len(events) // 2].recorded_at
        first_later = next(e.position for e in events if e.recorded_at > moment)
        at_time = await state_at(log, at=moment)
        at_position = await state_at(log, to=first_later - 1)
    assert at_time.position == first_later - 1
    assert at_time.snapshot_rows() == at_position.snapshot_rows()


# --- snapshot + tail equals a full replay -----------------------------------------


def canonical(value, depth: int = 0):
    """A comparable rendering of handler state: objects as dicts, sets sorted, caches left out."""
    if depth > 40:
        raise ValueError("state too deep")
    if isinstance(value, dict):
        return {repr(k): canonical(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(repr(canonical(v, depth + 1)) for v in value)
    if isinstance(value, (list, tuple)):
        return [canonical(v, depth + 1) for v in value]
    if isinstance(value, msgspec.Struct):
        return canonical(msgspec.structs.asdict(value), depth + 1)
    if isinstance(value, Counter):
        return dict(sorted(value.items()))
    if hasattr(value, "__dict__") or hasattr(value, "__slots__"):
        names = list(getattr(value, "__dict__", {}))
        names += [n for cls in type(value).__mro__ for n in getattr(cls, "__slots__", ())]
        # ``*_cache`` fields are derived by readers, never folded (ClusterState.node_cache)
        return {n: canonical(getattr(value, n), depth + 1) for n in sorted(set(names))
                if hasattr(value, n) and not n.endswith("_cache")}
    return value


async def drive(scenario, log, *, snapshots=None, every=None, restart_after: int | None = None, compact=False,
                handlers_of=None, before_restart=None):
    """The scenario through the pipeline; with ``restart_after`` the pipeline is rebuilt
    (a new process: handlers restored from their snapshots) after that many settles,
    ``before_restart(pipeline)`` awaited first, and with ``compact`` the log before every
    snapshot is removed first. ``handlers_of(scenario)`` gives the handlers (default:
    ``handlers()``); ``drive.rounds`` is how many settles the run took."""
    clock = VirtualClock()

    def pipeline():
        chosen = handlers_of(scenario) if handlers_of is not None else handlers()
        return build_pipeline(log=log, clock=clock, handlers=chosen, settings=Settings(),
                              is_relevant=is_relevant, cluster="sim", snapshots=snapshots, snapshot_every=every)

    current = pipeline()
    steps = list(scenario.steps)
    batch = cluster_events(scenario)
    rounds = 0
    while True:
        while steps and steps[0].at_ms <= clock.now():
            batch += step_events(steps.pop(0))
        if batch:
            await log.append([Envelope.wrap(e, recorded_at=clock.now()) for e in batch])
            batch = []
        await current.settle()
        rounds += 1
        if rounds == restart_after:
            if before_restart is not None:
                await before_restart(current)
            if compact:
                horizon = await retention_horizon(
                    snapshots=snapshots, handlers=list(current.snapshot_names()), views_position=None, with_views=False)
                drive.compacted_to = await log.truncate(horizon)
                drive.end_at_restart = await log.end_position()
            current = pipeline()
            await current.settle()  # the new process catches up before it looks at the clock
        moments = [m for m in (current.next_deadline(), steps[0].at_ms if steps else None) if m is not None]
        if not moments:
            drive.rounds = rounds
            return current
        clock.advance_to(max(min(moments), clock.now()))


async def records(log, start: int = 0) -> list[bytes]:
    out: list[Envelope] = []
    await read_to_tail(log, start, out.append)
    return [encode(e) for e in out]


jobs_strategy = st.lists(
    st.fixed_dictionaries({
        "replicas": st.integers(1, 3),
        "minutes": st.integers(1, 4),
        "exit": st.sampled_from([0, 0, 0, 3]),
        "queue": st.sampled_from(["batch", "research"]),
        "at": st.integers(0, 300),
        "cpu": st.integers(1, 3),
    }),
    min_size=3,
    max_size=16,
)


def scenario_of(tmp_path: Path, jobs: list[dict], name: str):
    workload_entries = []
    for i, job in enumerate(sorted(jobs, key=lambda j: j["at"])):
        annotations = {"eventbatch.io/sim-duration": f"{job['minutes']}m"}
        if job["exit"]:
            annotations["eventbatch.io/sim-exit-code"] = str(job["exit"])
        workload_entries.append({"at": f"{job['at']}s", "apply": {
            "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job",
            "metadata": {"name": f"j{i}", "namespace": "default"},
            "spec": {"queue": job["queue"], "minAvailable": job["replicas"], "maxRetry": 1,
                     "policies": [{"exitCode": 3, "action": "RestartJob"}],
                     "tasks": [{"name": "main", "replicas": job["replicas"], "template": {
                         "metadata": {"annotations": annotations},
                         "spec": {"containers": [{"name": "c", "image": "x", "resources": {
                             "requests": {"cpu": str(job["cpu"]), "memory": "1Gi"}}}]}}}]}}})
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({
        "nodes": [{"prefix": "node-", "count": 2, "allocatable": {"cpu": 4, "memory": "16Gi"}}],
        "queues": [{"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": q},
                    "spec": {"weight": w}} for q, w in (("default", 1), ("batch", 1), ("research", 2))],
        "workload": workload_entries,
        "until": "all-finished",
    }))
    return load_scenario(str(path))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jobs=jobs_strategy, every=st.integers(3, 25), restart_after=st.integers(2, 12), chunk=st.integers(3, 50))
async def test_snapshot_plus_tail_equals_a_full_replay(tmp_path_factory, jobs, every, restart_after, chunk) -> None:
    tmp_path = tmp_path_factory.mktemp("snap")
    scenario = scenario_of(tmp_path, jobs, "random")

    # Uninterrupted, without snapshots: the reference log.
    reference = MemoryLog()
    async with reference:
        await drive(scenario, reference)
        expected_log = await records(reference)

    async with MemoryLog() as log, SnapshotStore(tmp_path / "snapshots.db") as snapshots:
        # The same run, restarted midway; handlers come back from snapshot + tail.
        final = await drive(scenario, log, snapshots=snapshots, every=every, restart_after=restart_after)
        assert await records(log) == expected_log
        end = await log.end_position()

        # Handler state: snapshot + tail equals a full replay from position 0.
        for runner in final.runners:
            tail_runner = HandlerRunner(handler=runner.handler, log=log, snapshots=snapshots)
            await tail_runner.catch_up()
            full_runner = HandlerRunner(handler=type(runner.handler)(), log=log)
            await full_runner.catch_up()
            assert 0 < tail_runner.stats.restored_from <= end
            assert tail_runner.stats.folded < full_runner.stats.folded
            assert canonical(tail_runner.state) == canonical(full_runner.state) == canonical(runner.state)
        assert await log.end_position() == end  # nothing was answered twice

        # Read models: a projector stopped midway and resumed equals a rebuild.
        async with ReadModelStore(tmp_path / "resumed.db") as store:
            await Projector(log=log, store=store, chunk=chunk, snapshot_every=every).catch_up(to=end // 2)
        async with ReadModelStore(tmp_path / "resumed.db") as store:
            resumed = Projector(log=log, store=store, chunk=chunk, snapshot_every=every)
            await resumed.catch_up()
            resumed_rows = await store.all_rows()
        async with ReadModelStore(tmp_path / "full.db") as store:
            await Projector(log=log, store=store, chunk=10_000, snapshot_every=None).catch_up()
            full_rows = await store.all_rows()
    assert resumed_rows == full_rows


async def test_a_log_compacted_below_the_snapshots_still_restarts_audits_and_verifies(tmp_path: Path) -> None:
    scenario = workload(tmp_path, jobs=10, ttl=True)
    path = tmp_path / "events.db"
    async with open_log(f"sqlite:///{path}") as log, SnapshotStore(tmp_path / "snapshots.db") as snapshots:
        final = await drive(scenario, log, snapshots=snapshots, every=37)  # periodic snapshots only
        end = await log.end_position()
        async with ReadModelStore(tmp_path / "views.db") as store:
            projector = Projector(log=log, store=store)
            await projector.catch_up()
            await projector.checkpoint()
            before = await store.all_rows()
            views_at = (await store.snapshot())[0]
        horizon = await retention_horizon(
            snapshots=snapshots, handlers=[r.name for r in final.runners], views_position=views_at)
    assert 0 < horizon < end
    async with open_log(f"sqlite:///{path}") as log:
        async with ReadModelStore(tmp_path / "views.db") as store:  # what compact does first
            assert await store.keep_records(log, horizon) > 0
        assert await log.truncate(horizon) == horizon

    async with open_log(f"sqlite:///{path}") as log, SnapshotStore(tmp_path / "snapshots.db") as snapshots:
        report = await verify(log, handlers(), snapshots=snapshots)
        assert report.ok, [d.describe() for d in report.divergences]
        for handler in handlers():
            runner = HandlerRunner(handler=handler, log=log, snapshots=snapshots)
            await runner.catch_up()
            assert runner.stats.restored_from >= horizon
        assert await log.end_position() == end  # nothing answered twice
        async with ReadModelStore(tmp_path / "views.db") as store:
            await Projector(log=log, store=store).catch_up()
            after = await store.all_rows()
    assert after == before
    removed = {r.key for r in after["job_history"]}
    assert removed and removed <= {r.name for r in after["audit_view"] if r.scope == "job"}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jobs=jobs_strategy, every=st.integers(3, 25), restart_after=st.integers(3, 12))
async def test_serve_restarts_on_a_log_compacted_to_its_snapshots_and_goes_on_as_if_uninterrupted(
    tmp_path_factory, jobs, every, restart_after
) -> None:
    """Every component (handlers, timers, the simulated kubelet, the trigger) comes back
    from its snapshot; the log before the lowest one is gone; the run is the same."""
    tmp_path = tmp_path_factory.mktemp("compact")
    scenario = scenario_of(tmp_path, jobs, "random")
    reference = MemoryLog()
    async with reference:
        await drive(scenario, reference)
        expected_log = await records(reference)

    drive.compacted_to, drive.end_at_restart = 0, 0
    async with MemoryLog() as log, SnapshotStore(tmp_path / "snapshots.db") as snapshots:
        await drive(scenario, log, snapshots=snapshots, every=every, restart_after=restart_after, compact=True)
        start = drive.compacted_to
        assert start == await log.start_position()
        assert await records(log, start) == expected_log[start:]
    if drive.end_at_restart >= every:  # every component has folded enough events to have a snapshot
        assert start > 0, "the log before the snapshots was compacted"
