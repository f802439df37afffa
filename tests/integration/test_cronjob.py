"""CronJobs in virtual time: Jobs on schedule, the concurrency policies, history limits, suspend, delete.

Where it sits: the CronJob controller (``handlers.cronjob``) with the real job
controller, scheduler, timers and simulated kubelet, driven by
``eventbatch.sim`` on an in-memory log; what is asserted is what a user sees
(which Jobs exist, when each was created, what became of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from schemas.envelope import Envelope
from schemas.scenario import load_scenario

MIN = 60_000
QUEUE = {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": "default"},
         "spec": {"weight": 1}}


def cronjob(name: str = "tick", *, schedule: str = "*/5 * * * *", runs: str = "2m", exit_code: int = 0,
            **spec: Any) -> dict[str, Any]:
    annotations = {"eventbatch.io/sim-duration": runs}
    if exit_code:
        annotations["eventbatch.io/sim-exit-code"] = str(exit_code)
    return {
        "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "CronJob", "metadata": {"name": name},
        "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"minAvailable": 1, "tasks": [{
            "name": "t", "replicas": 1, "template": {"metadata": {"annotations": annotations}, "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "1"}}}]}},
        }]}}},
    }


@dataclass
class Run:
    events: list[Envelope]
    created: dict[str, int] = field(default_factory=dict)  # job -> when the job controller created it
    removed: dict[str, int] = field(default_factory=dict)
    phase: dict[str, str] = field(default_factory=dict)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (scheduled minute, reason)

    def live(self) -> list[str]:
        return sorted((j for j in self.created if j not in self.removed), key=self.created.__getitem__)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


async def simulate(tmp_path: Path, workload: list[dict[str, Any]], until: str = "1h") -> Run:
    raw = {"nodes": [{"prefix": "n", "count": 2, "allocatable": {"cpu": 8, "memory": "32Gi"}}],
           "queues": [QUEUE], "workload": workload, "until": until}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    async with open_log("memory://") as log:
        await run_scenario(load_scenario(path), log=log, settings=Settings())
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
    run = Run(events)
    for env in events:
        e = env.payload
        if env.type == "JobCreated":
            run.created[e.job] = env.recorded_at
        elif env.type == "JobRemoved":
            run.removed[e.job] = env.recorded_at
        elif env.type == "JobPhaseChanged":
            run.phase[e.job] = e.phase
        elif env.type == "CronJobRunSkipped":
            run.skipped.append((e.scheduled // MIN, e.reason))
    return run


def names(jobs: list[str]) -> list[str]:
    return [j.split("/", 1)[1] for j in jobs]


async def test_every_five_minutes_for_an_hour_makes_twelve_jobs_on_time_and_keeps_three(tmp_path: Path) -> None:
    run = await simulate(tmp_path, [{"at": "0s", "apply": cronjob()}])

    # a Job at 5, 10, ..., 60 minutes, named as Volcano names it: <cronjob>-<minutes since the epoch>
    assert {job: at // 1000 for job, at in run.created.items()} == {
        f"default/tick-{m}": m * 60 for m in range(5, 61, 5)
    }
    submitted = [e.payload for e in run.events if e.type == "JobSubmitRequested"]
    first = submitted[0].manifest
    assert first.metadata.annotations["volcano.sh/cronjob-scheduled-timestamp"] == "1970-01-01T00:05:00Z"
    owner = first.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("CronJob", "tick", True)
    # each ran 2 minutes; successfulJobsHistoryLimit defaults to 3: the oldest go as newer ones finish
    assert names(run.live()) == ["tick-45", "tick-50", "tick-55", "tick-60"]
    assert run.removed["default/tick-5"] == (22 * 60 + 1) * 1000  # when tick-20 finished, the 4th success
    assert not run.skipped


async def test_forbid_skips_a_run_while_one_is_active(tmp_path: Path) -> None:
    # each run takes 7 minutes: the one at 10m finds tick-5 running; 60s later it is too late to start
    run = await simulate(tmp_path, [{"at": "0s", "apply": cronjob(
        runs="7m", concurrencyPolicy="Forbid", startingDeadlineSeconds=60)}], until="30m")
    assert names(sorted(run.created, key=run.created.__getitem__)) == ["tick-5", "tick-15", "tick-25"]
    # once for each time: at 10m (tick-5 active), then too late when it ended; the same at 20m and 30m
    assert [m for m, _ in run.skipped] == [10, 20, 30]
    assert "concurrencyPolicy Forbid: default/tick-5 still active at 1970-01-01T00:10:00Z" in run.skipped[0][1]


async def test_forbid_without_a_deadline_starts_the_held_run_when_the_active_one_ends(tmp_path: Path) -> None:
    run = await simulate(tmp_path, [{"at": "0s", "apply": cronjob(runs="7m", concurrencyPolicy="Forbid")}],
                         until="14m")
    # tick-5 runs 5m01s..12m01s; the 10m run waits for it and starts then, as Volcano starts it
    assert {j: at // 1000 for j, at in run.created.items()} == {"default/tick-5": 300, "default/tick-10": 721}


async def test_replace_deletes_the_active_job_then_creates_the_next(tmp_path: Path) -> None:
    run = await simulate(tmp_path, [{"at": "0s", "apply": cronjob(runs="7m", concurrencyPolicy="Replace")}],
                         until="16m")
    assert {j: at // MIN for j, at in run.created.items()} == {
        "default/tick-5": 5, "default/tick-10": 10, "default/tick-15": 15}
    assert {j: at // MIN for j, at in run.removed.items()} == {"default/tick-5": 10, "default/tick-10": 15}
    # the active job is deleted before its successor is submitted, in the same batch
    asked = [(e.type, e.payload.job) for e in run.events if e.type in ("JobDeleteRequested", "JobSubmitRequested")]
    assert asked[:4] == [("JobSubmitRequested", "default/tick-5"), ("JobDeleteRequested", "default/tick-5"),
                         ("JobSubmitRequested", "default/tick-10"), ("JobDeleteRequested", "default/tick-10")]
    assert run.phase.get("default/tick-5") != "Completed"


async def test_allow_lets_runs_overlap(tmp_path: Path) -> None:
    run = await simulate(tmp_path, [{"at": "0s", "apply": cronjob(runs="7m")}], until="11m")
    assert names(run.live()) == ["tick-5", "tick-10"]
    assert run.phase == {"default/tick-5": "Running", "default/tick-10": "Running"}
    assert not run.removed


async def test_failed_jobs_history_limit_keeps_the_latest_failures(tmp_path: Path) -> None:
    run = await simulate(tmp_path, [{"at": "0s", "apply": cronjob(
        runs="1m", exit_code=3, failedJobsHistoryLimit=2)}], until="32m")
    assert {run.phase[j] for j in run.created} == {"Failed"}
    assert names(run.live()) == ["tick-25", "tick-30"]


async def test_suspend_stops_runs_and_resuming_runs_the_latest_missed_time(tmp_path: Path) -> None:
    run = await simulate(tmp_path, [
        {"at": "0s", "apply": cronjob()},
        {"at": "12m", "apply": cronjob(suspend=True)},
        {"at": "31m", "apply": cronjob(suspend=False)},
    ], until="40m")
    # 5 and 10, none while suspended, then at 31m the latest missed (30), then 35 and 40
    assert names(sorted(run.created, key=run.created.__getitem__)) == [
        "tick-5", "tick-10", "tick-30", "tick-35", "tick-40"]
    assert run.created["default/tick-30"] // MIN == 31
    assert "TimerCancelled" in run.types()



async def test_a_run_missed_by_more_than_the_starting_deadline_is_skipped(tmp_path: Path) -> None:
    run = await simulate(tmp_path, [
        {"at": "0s", "apply": cronjob(startingDeadlineSeconds=60)},
        {"at": "7m", "apply": cronjob(startingDeadlineSeconds=60, suspend=True)},
        {"at": "31m30s", "apply": cronjob(startingDeadlineSeconds=60)},
    ], until="36m")
    assert names(sorted(run.created, key=run.created.__getitem__)) == ["tick-5", "tick-35"]
    assert run.skipped == [(30, "missed its starting deadline: 1970-01-01T00:30:00Z is more than 60s before "
                                "1970-01-01T00:31:30Z")]
