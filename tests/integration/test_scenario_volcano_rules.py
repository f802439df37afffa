"""Volcano's own example Jobs run through the whole pipeline as Volcano runs them (scheduler rules of issue 16).

Each test writes a scenario (one node, a default Queue, one of Volcano's
example manifests applied unchanged from ``tests/fixtures/volcano/examples``),
runs it with ``eventbatch.sim`` on a real SQLite log (queue and job
controllers, the scheduler, the simulated kubelet), and reads the log: the
pods bound and the Job's phase, which is what a user sees with ``kubectl get``.
The expectation of each comes from Volcano's source, named in the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from schemas.envelope import Envelope
from schemas.scenario import load_scenario

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "volcano" / "examples"
DEFAULT_QUEUE = {
    "apiVersion": "scheduling.volcano.sh/v1beta1",
    "kind": "Queue",
    "metadata": {"name": "default"},
    "spec": {"weight": 1, "reclaimable": True},
}


async def _simulate(tmp_path: Path, example: str, scheduler: dict[str, Any] | None = None) -> list[Envelope]:
    """The example on one 4-cpu node for 10 minutes; the whole log."""
    raw: dict[str, Any] = {
        "nodes": [{"name": "n0", "allocatable": {"cpu": 4, "memory": "16Gi", "pods": 110}}],
        "queues": [DEFAULT_QUEUE],
        "workload": [{"at": "0s", "apply": yaml.safe_load((EXAMPLES / example).read_text())}],
        "until": "10m",
    }
    if scheduler is not None:
        raw["scheduler"] = scheduler
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    async with open_log(f"sqlite:///{tmp_path}/log.db") as log:
        await run_scenario(load_scenario(str(path)), log=log, settings=Settings())
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
    return events


def _bound(events: list[Envelope]) -> list[str]:
    return sorted(e.payload.pod for e in events if e.type == "PodBound")


def _phase(events: list[Envelope], job: str) -> str:
    phases = [e.payload.phase for e in events if e.type == "JobPhaseChanged" and e.payload.job == job]
    return phases[-1] if phases else ""


@pytest.mark.parametrize(
    ("example", "job"),
    [("job.yaml", "default/test-job"), ("kubecon-2019-china/task-priority/elastic-job.yaml", "default/elastic-job")],
)
async def test_volcano_elastic_examples_run_what_fits_on_one_4_cpu_node(tmp_path: Path, example: str, job: str):
    """Rule 4 (gang with elastic jobs). Volcano: pkg/scheduler/api/job_info.go, ``CheckTaskValid``
    (lines 1072-1102), ``CheckTaskReady`` (1104-1117), ``CheckTaskPipelined`` (1119-1150) return true when
    ``ji.MinAvailable < ji.TaskMinAvailableTotal``.

    ``job.yaml``: minAvailable 3, one task of 6 one-cpu replicas (task
    minimum defaulted to 6 by the webhook, mutate_job.go lines 205-217);
    ``elastic-job.yaml``: minAvailable 3, tasks of 9 and 1 one-cpu
    replicas. 3 < 6 and 3 < 10: the task minimums are skipped, gang wants 3
    of any task, and Volcano binds 4 pods on one 4-cpu node; the Job runs.
    """
    events = await _simulate(tmp_path, example)
    assert len(_bound(events)) == 4
    assert _phase(events, job) == "Running"


async def test_a_volcano_job_runs_with_a_conf_without_enqueue(tmp_path: Path):
    """Rule 3 (allocate without enqueue). Volcano: pkg/scheduler/actions/allocate/allocate.go,
    ``buildAllocateContext`` (lines 152-164): with no ``enqueue`` among the actions, allocate moves a
    Pending podgroup to Inqueue ("no enqueue action is configured") and goes on; the job controller
    then creates the pods and allocate binds them.

    Volcano's ``job.yaml`` (minAvailable 3, 6 one-cpu replicas) with
    ``actions: "allocate, backfill"`` on one 4-cpu node: its podgroup is
    admitted by allocate (rule ``allocate.no-enqueue``), 4 pods bound, the
    Job Running.
    """
    scheduler = {
        "actions": "allocate, backfill",
        "tiers": [
            {"plugins": [{"name": "priority"}, {"name": "gang"}, {"name": "conformance"}]},
            {"plugins": [{"name": "drf"}, {"name": "predicates"}, {"name": "proportion"}, {"name": "nodeorder"}]},
        ],
    }
    events = await _simulate(tmp_path, "job.yaml", scheduler)
    enqueued = [e.payload for e in events if e.type == "PodGroupEnqueued"]
    assert [(p.podgroup, p.rule) for p in enqueued] == [("default/test-job", "allocate.no-enqueue")]
    assert len(_bound(events)) == 4
    assert _phase(events, "default/test-job") == "Running"
