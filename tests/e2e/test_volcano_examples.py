"""Every manifest of Volcano's ``example/`` folder and user guide, unchanged: it runs, it is refused as
Volcano refuses it, or it is named below as not supported, with the reason.

Where it sits: the Volcano drop-in promise at the edge and through the whole
pipeline. The files are kept under ``tests/fixtures/volcano/examples/``
(Volcano v1.15.1, ``tests/fixtures/volcano/README.md``) and
``tests/fixtures/volcano/docs/user-guide/`` (the YAML blocks of Volcano's
``docs/user-guide/*.md`` holding a Volcano object, one file each:
``tests/fixtures/volcano/docs/README.md``). For each file:

* **runs**: a scenario on a small simulated cluster (4 nodes of 32 cpu,
  128Gi, 8 GPUs, with what a kubelet gives every node: ``docs/cluster.md``)
  and a default Queue applies the file by its path, through the real loader
  (``schemas.loaders.load_file``, what ``eventbatch apply -f`` reads with),
  and ``eventbatch.sim`` runs the real controllers, scheduler and simulated
  kubelet on an in-memory log until nothing is left to happen. Volcano's
  examples give their pods no run time, so they run for ever: each Job must
  be Running (or Completed) with every one of its pods bound, which is what
  ``kubectl get vcjob`` and ``kubectl get pods`` show on a Volcano cluster.
  A file of Queues must create every Queue;
* **refused** (``invalid_jobs/``, the manifests Volcano's admission webhook
  denies, and the user guide's blocks Volcano's CRDs refuse): the error names
  the field, with Volcano's reason;
* **not supported** (``UNSUPPORTED``): refused naming the field, and the
  table says why. The table is exact: a listed file that starts loading, or
  an unlisted file that is refused or does not run, fails a test.

A Command written as Volcano's ``vcctl`` writes it (``target`` an owner
reference with uid, controller, blockOwnerDeletion) suspends a running
example Job and closes a Queue. Volcano's repository holds no Command
manifest (neither under ``example/`` nor in ``docs/user-guide/``), so that
one is written from ``pkg/cli/util/util.go`` (``CreateJobCommand``) and
``pkg/cli/queue/util.go`` (``CreateQueueCommand``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from schemas.envelope import Envelope
from schemas.loaders import ManifestError, load_file
from schemas.resources import Job, Queue, key_of
from schemas.scenario import load_scenario

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "volcano"
EXAMPLES = FIXTURES / "examples"
ALL = sorted(p.relative_to(FIXTURES).as_posix() for p in (FIXTURES / "examples").rglob("*.yaml"))
DOCS = sorted(p.relative_to(FIXTURES).as_posix() for p in (FIXTURES / "docs").rglob("*.yaml"))

_LATER = "not supported yet (issue 17)"
_ARGO = (
    "an Argo Workflow, not a Volcano object: its Volcano Job is a string inside a workflow step "
    "(Argo creates it; the Job alone would load)"
)
# file -> (the field the refusal names, why the file is not supported)
UNSUPPORTED: dict[str, tuple[str, str]] = {
    "examples/integrations/argo/10-job-step.yaml": ("apiVersion", _ARGO),
    "examples/integrations/argo/20-job-DAG.yaml": ("apiVersion", _ARGO),
    "examples/integrations/argo/mpi/hello-world.yaml": ("apiVersion", _ARGO),
}

# file -> (the field named, our reason, Volcano's webhook message for it and where it is written)
REFUSED: dict[str, tuple[str, str, str]] = {
    "examples/invalid_jobs/duplicatedPolicyEvent-webhook-deny.yaml": (
        "spec.policies[1].event",
        "duplicate event 'PodFailed'",
        "duplicate event PodFailed across different policy (pkg/webhooks/admission/jobs/validate/util.go:94)",
    ),
    "examples/invalid_jobs/duplicatedTaskName-webhook-deny.yaml": (
        "spec.tasks[1].name",
        "duplicate task name 'task-1'",
        "duplicated task name task-1 (pkg/webhooks/admission/jobs/validate/admit_job.go:163)",
    ),
    "examples/invalid_jobs/minAvailable-webhook-deny.yaml": (
        "spec.minAvailable",
        "must not exceed the total replicas of all tasks (4)",
        "job 'minAvailable' should not be greater than total replicas in tasks "
        "(pkg/webhooks/admission/jobs/validate/admit_job.go:181)",
    ),
}

_DRA = "a resource.k8s.io {} in the same file as the Job: dynamic resource allocation is not supported"
_GUARANTEE = (
    "resource names straight under spec.guarantee: Volcano's Queue CRD has only spec.guarantee.resource, so "
    "kubectl's strict field validation refuses the file too"
)
# The user-guide's examples, as the two tables above.
UNSUPPORTED.update({
    "docs/user-guide/how_to_configure_priorityclass_for_job-1.yaml": (
        "apiVersion", "two Kubernetes PriorityClasses in the same file as the Job: `eventbatch apply` takes "
        "Volcano objects and Nodes (a scenario gives priority classes under priorityClasses)",
    ),
    "docs/user-guide/how_to_use_dra_quota-4.yaml": ("apiVersion", _DRA.format("ResourceClaimTemplate")),
    "docs/user-guide/how_to_use_dra_quota-5.yaml": ("apiVersion", _DRA.format("ResourceClaim")),
})
REFUSED.update({
    "docs/user-guide/how_to_use_cdp_plugin-2.yaml": (
        "spec", "expected an object, got string '...'", "an elided snippet: Volcano's CRD types spec as an object",
    ),
    "docs/user-guide/how_to_use_dra_quota-1.yaml": (
        'spec.guarantee["deviceclass/gpu.nvidia.com"]', "unknown field", _GUARANTEE,
    ),
    "docs/user-guide/how_to_use_dra_quota-2.yaml": (
        'spec.guarantee["cores.deviceclass/hami-core-gpu.project-hami.io"]', "unknown field", _GUARANTEE,
    ),
    "docs/user-guide/how_to_use_dra_quota-6.yaml": (
        'spec.guarantee["deviceclass/gpu.nvidia.com"]', "unknown field", _GUARANTEE,
    ),
    "docs/user-guide/how_to_use_job_policy-3.yaml": (
        "spec.tasks[0].policies[0].events", "expected a list, got string 'PodFailed'",
        "Volcano's Job CRD types a policy's events as an array of strings",
    ),
})

# Volcano's JobFlow example: its JobTemplates, then the JobFlow (run by the test below).
FLOWS = ["examples/jobflow/JobTemplate.yaml", "examples/jobflow/JobFlow.yaml"]
# Volcano's CronJob example (run by the test below: it makes a Job every 5 minutes).
CRONJOBS = ["examples/cronjob/cronjob.yaml"]
RUNS = [f for f in ALL + DOCS if f not in UNSUPPORTED and f not in REFUSED and f not in FLOWS and f not in CRONJOBS]
# Jobs whose queues are another example file.
QUEUES_FROM = {"examples/hierarchical-jobs/jobs.yaml": "examples/hierarchical-jobs/queues.yaml"}
DEFAULT_QUEUE = {
    "apiVersion": "scheduling.volcano.sh/v1beta1",
    "kind": "Queue",
    "metadata": {"name": "default"},
    "spec": {"weight": 1, "reclaimable": True},
}
NODES = [{"prefix": "n", "count": 4, "allocatable": {"cpu": 32, "memory": "128Gi", "nvidia.com/gpu": 8}}]
# Queues an example's Jobs name besides the default one.
EXTRA_QUEUES = {"docs/user-guide/how_to_use_job_ttl-1.yaml": ["testing"]}
# Nodes an example needs besides those: the Ascend node its pods select and the NPU cores they request.
EXTRA_NODES = {
    "docs/user-guide/how_to_use_vnpu-1.yaml": [
        {"name": "ascend-0", "allocatable": {"cpu": 32, "memory": "128Gi", "huawei.com/npu-core": 8},
         "labels": {"host-arch": "huawei-arm"}},
    ],
}


@dataclass
class Outcome:
    stopped: str
    jobs: dict[str, str] = field(default_factory=dict)  # job -> last phase
    requested: dict[str, set[str]] = field(default_factory=dict)  # job -> pods requested
    bound: set[str] = field(default_factory=set)
    queues: set[str] = field(default_factory=set)
    refusals: list[str] = field(default_factory=list)
    accepted: list[tuple[str, str]] = field(default_factory=list)  # (job, action)
    queue_states: dict[str, str] = field(default_factory=dict)
    created_at: dict[str, int] = field(default_factory=dict)  # job -> when created (ms)
    skipped: list[int] = field(default_factory=list)  # CronJob runs not started: their scheduled times (ms)


async def _run(
    tmp_path: Path, workload: list[dict[str, Any]], queues: list[Any] | None = None,
    nodes: list[dict[str, Any]] | None = None,
) -> Outcome:
    raw = {"nodes": [*NODES, *(nodes or [])], "queues": queues if queues is not None else [DEFAULT_QUEUE],
           "workload": workload, "until": "2h"}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    async with open_log("memory://") as log:
        result = await run_scenario(load_scenario(path), log=log, settings=Settings())
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
    out = Outcome(stopped=result.stopped)
    for envelope in events:
        e, kind = envelope.payload, envelope.type
        if kind == "JobCreated":
            out.jobs.setdefault(e.job, "")
            out.created_at.setdefault(e.job, envelope.recorded_at)
        elif kind == "CronJobRunSkipped":
            out.skipped.append(e.scheduled)
        elif kind == "JobPhaseChanged":
            out.jobs[e.job] = e.phase
        elif kind == "PodRequested":
            out.requested.setdefault(e.job, set()).add(e.pod)
        elif kind == "PodBound":
            out.bound.add(e.pod)
        elif kind == "QueueCreated":
            out.queues.add(e.queue)
        elif kind == "QueueStateChanged":
            out.queue_states[e.queue] = e.state
        elif kind == "JobCommandAccepted":
            out.accepted.append((e.job, e.action))
        elif kind.endswith("Refused"):
            out.refusals.append(f"{kind}: {e.reason}")
    return out


def test_every_example_file_is_in_exactly_one_place() -> None:
    """A file added to the fixtures is run, or listed as refused or unsupported; a listed file exists."""
    assert (len(ALL), len(DOCS)) == (29, 43)
    assert set(UNSUPPORTED) | set(REFUSED) | set(FLOWS) | set(CRONJOBS) <= set(ALL + DOCS)
    assert not set(FLOWS) & (set(UNSUPPORTED) | set(REFUSED))
    assert not set(CRONJOBS) & (set(UNSUPPORTED) | set(REFUSED) | set(FLOWS))
    assert not set(UNSUPPORTED) & set(REFUSED)
    assert len([f for f in RUNS if f.startswith("examples/")]) == 20
    assert len([f for f in RUNS if f.startswith("docs/")]) == 35


@pytest.mark.parametrize("example", sorted(UNSUPPORTED))
def test_an_unsupported_example_is_refused_naming_the_field(example: str) -> None:
    path, why = UNSUPPORTED[example]
    with pytest.raises(ManifestError) as refused:
        load_file(FIXTURES / example)
    assert refused.value.path == path, f"{example} ({why}): {refused.value}"
    assert refused.value.document == 1


@pytest.mark.parametrize("example", sorted(REFUSED))
def test_an_invalid_example_is_refused_as_volcano_refuses_it(example: str) -> None:
    path, reason, volcano = REFUSED[example]
    with pytest.raises(ManifestError) as refused:
        load_file(FIXTURES / example)
    assert (refused.value.path, refused.value.document) == (path, 1), f"Volcano: {volcano}; ours: {refused.value}"
    assert reason in refused.value.reason


@pytest.mark.parametrize("example", RUNS)
async def test_an_example_runs_unchanged_on_a_small_cluster(tmp_path: Path, example: str) -> None:
    manifests = load_file(FIXTURES / example)
    # A Job with only generateName is keyed by its prefix here, and by the name the controller gave it below.
    jobs = {
        key_of(m.metadata) + (m.metadata.generate_name if not m.metadata.name else ""): sum(
            t.replicas for t in m.spec.tasks) for m in manifests if isinstance(m, Job)
    }
    queues = {m.metadata.name for m in manifests if isinstance(m, Queue)}
    assert jobs or queues, f"{example} holds neither a Job nor a Queue"
    extra = [str(FIXTURES / QUEUES_FROM[example])] if example in QUEUES_FROM else []
    # A file that defines the default Queue itself is the cluster's only Queue.
    scenario_queues = extra if "default" in queues else [DEFAULT_QUEUE, *extra]
    scenario_queues += [{**DEFAULT_QUEUE, "metadata": {"name": q}} for q in EXTRA_QUEUES.get(example, [])]

    out = await _run(
        tmp_path, [{"at": "0s", "apply": str(FIXTURES / example)}], scenario_queues, EXTRA_NODES.get(example)
    )

    assert out.stopped == "nothing left to happen"
    assert not out.refusals
    assert queues <= out.queues
    for key in [k for k in out.jobs if k not in jobs]:  # a generated name: <prefix><5 characters>
        prefix = next((p for p in jobs if key.startswith(p) and len(key) == len(p) + 5), None)
        if prefix is not None:
            out.jobs[prefix] = out.jobs.pop(key)
            out.requested[prefix] = out.requested.pop(key, set())
    assert set(out.jobs) == set(jobs)
    for job, replicas in jobs.items():
        assert out.jobs[job] in ("Running", "Completed"), f"{job}: {out.jobs[job] or 'no phase'}"
        pods = out.requested.get(job, set())
        assert len(pods) == replicas, f"{job}: {len(pods)} of {replicas} pods created"
        assert pods <= out.bound, f"{job}: unbound {sorted(pods - out.bound)}"


def _vcctl_command(action: str, target: dict[str, Any], namespace: str = "") -> dict[str, Any]:
    """A Command as ``vcctl`` creates it: the target is the object's controller reference."""
    name = target["name"]
    reference = {**target, "controller": True, "blockOwnerDeletion": True}
    metadata: dict[str, Any] = {
        "name": f"{name}-{action.lower()}-x7k2p",
        "generateName": f"{name}-{action.lower()}-",
        "ownerReferences": [reference],
    }
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "bus.volcano.sh/v1alpha1", "kind": "Command", "metadata": metadata, "action": action,
            "target": reference}


async def test_volcano_commands_suspend_an_example_job_and_close_a_queue(tmp_path: Path) -> None:
    job = {"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "name": "test-job",
           "uid": "3c5d0b6e-2b7f-4a8e-9d1a-5f6b7c8d9e0f"}
    queue = {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "name": "default",
             "uid": "9e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"}
    out = await _run(tmp_path, [
        {"at": "0s", "apply": str(EXAMPLES / "job.yaml")},
        {"at": "5m", "apply": _vcctl_command("AbortJob", job, namespace="default")},
        {"at": "10m", "apply": _vcctl_command("CloseQueue", queue)},
    ])
    assert out.accepted == [("default/test-job", "AbortJob")]
    assert out.jobs["default/test-job"] == "Aborted"
    assert out.queue_states["default"] == "Closed"
    assert not out.refusals


async def test_volcanos_jobflow_example_runs_its_first_step_and_waits_with_the_others(tmp_path: Path) -> None:
    """JobTemplate.yaml then JobFlow.yaml, unchanged: the JobFlow ``test`` makes the Job of
    its first flow, ``test-a`` (Volcano's <jobflow>-<flow>), which runs for ever as the
    example's pods do; b waits for a to complete, and c, d, e for b (and c, d)."""
    out = await _run(tmp_path, [{"at": "0s", "apply": str(FIXTURES / f)} for f in FLOWS])
    assert out.stopped == "nothing left to happen"
    assert not out.refusals
    assert out.jobs == {"default/test-a": "Running"}
    assert out.requested["default/test-a"] <= out.bound and len(out.requested["default/test-a"]) == 1


async def test_the_cronjob_example_makes_its_job_on_schedule_and_forbids_overlap(tmp_path: Path) -> None:
    """Volcano's CronJob example, unchanged: every 5 minutes, concurrencyPolicy Forbid. Its Job's
    pod runs for ever (no run time), so the Job of 00:05 stays Running and every later run is
    skipped, as Volcano's controller skips it."""
    out = await _run(tmp_path, [{"at": "0s", "apply": str(FIXTURES / f)} for f in CRONJOBS])
    assert out.stopped == "until reached"
    assert not out.refusals
    job = "default/volcano-cronjob-example-5"  # <cronjob>-<minutes since the epoch>, as Volcano names it
    assert out.jobs == {job: "Running"}
    assert out.created_at[job] == 5 * 60_000
    assert out.requested[job] and out.requested[job] <= out.bound
    assert out.skipped == [m * 60_000 for m in range(10, 121, 5)]
