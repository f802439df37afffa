"""The status writer shows Volcano's status fields on the Job, PodGroup and Queue objects."""

from __future__ import annotations

from eventbatch.clock import SystemClock
from eventbatch.kube.client import Connection, Kube
from eventbatch.kube.crds import GROUPS
from eventbatch.kube.status import KubeStatusWriter
from eventbatch.log.memory import MemoryLog
from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    JobPhaseChanged,
    PodDeleted,
    PodFailed,
    PodGroupCreated,
    PodGroupPhaseChanged,
    PodRequested,
    PodStarted,
    PodSucceeded,
    QueueCreated,
    QueueStateChanged,
)
from schemas.loaders import decode_manifest
from schemas.resources import ObjectMeta, Pod, PodGroup, PodGroupSpec
from tests.kube.conftest import eventually
from tests.kube.support import api_version, job_manifest, queue_manifest, running

JOB = "default/demo"


def request(index: int, task: str = "worker") -> PodRequested:
    name = f"demo-{task}-{index}"
    return PodRequested(pod=f"default/{name}", job=JOB, podgroup="default/demo", task=task, index=index, manifest=Pod(metadata=ObjectMeta(name=name)))


async def test_job_podgroup_and_queue_status(crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    job = await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", job_manifest(replicas=3))
    queue = await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["Queue"], "queues", queue_manifest())
    group = {"apiVersion": api_version("PodGroup"), "kind": "PodGroup", "metadata": {"name": "demo", "namespace": "default"}, "spec": {"minMember": 3, "queue": "q1"}}
    await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["PodGroup"], "default", "podgroups", group)
    pods = [request(i) for i in range(3)]
    events = [
        QueueCreated(queue="q1", manifest=decode_manifest({k: v for k, v in queue.items() if k != "status"}, strict=False)),
        QueueStateChanged(queue="q1", state="Open"),
        JobCreated(job=JOB, manifest=decode_manifest(job, strict=False)),
        PodGroupCreated(podgroup="default/demo", job=JOB, manifest=PodGroup(metadata=ObjectMeta(name="demo"), spec=PodGroupSpec(min_member=3, queue="q1"))),
        *pods,
        PodGroupPhaseChanged(podgroup="default/demo", job=JOB, phase="Running"),
        JobPhaseChanged(job=JOB, phase="Running", previous="Pending", reason="Running"),
        PodStarted(pod=pods[0].pod, job=JOB, node="n1"),
        PodStarted(pod=pods[1].pod, job=JOB, node="n1"),
        PodSucceeded(pod=pods[0].pod, job=JOB),
        PodFailed(pod=pods[1].pod, job=JOB, exit_code=3),
        PodDeleted(pod=pods[2].pod, job=JOB),
    ]
    await log.append([Envelope.wrap(e, recorded_at=1_700_000_000_000) for e in events])
    writer = KubeStatusWriter(log=log, clock=SystemClock(), connection=connection)

    async def status(kind: str, name: str) -> dict:
        if kind == "Queue":
            obj = await kube.call(kube.custom.get_cluster_custom_object, *GROUPS[kind], "queues", name)
        else:
            plural = {"Job": "jobs", "PodGroup": "podgroups"}[kind]
            obj = await kube.call(kube.custom.get_namespaced_custom_object, *GROUPS[kind], "default", plural, name)
        return obj.get("status") or {}

    async with running(writer):
        await eventually(lambda: _written(status), what="every status")
    job_status = await status("Job", "demo")
    assert job_status["state"]["phase"] == "Running"
    assert job_status["state"]["lastTransitionTime"] == "2023-11-14T22:13:20Z"
    # counts of 0 are left out, as Volcano's omitempty int32s are
    assert [job_status.get(k, 0) for k in ("pending", "running", "succeeded", "failed")] == [0, 0, 1, 1]
    assert job_status["taskStatusCount"] == {"worker": {"phase": {"Succeeded": 1, "Failed": 1}}}
    assert job_status["minAvailable"] == 3
    assert job_status["conditions"] == [{"status": "Running", "lastTransitionTime": "2023-11-14T22:13:20Z"}]
    assert job_status["runningDuration"] == "0s"
    assert await status("PodGroup", "demo") == {"phase": "Running", "conditions": [{
        "type": "Scheduled", "status": "True", "transitionID": "7", "lastTransitionTime": "2023-11-14T22:13:20Z",
        "reason": "tasks in gang are ready to be scheduled", "message": ""}], "running": 0, "succeeded": 1, "failed": 1}
    assert await status("Queue", "q1") == {"state": "Open", "pending": 0, "inqueue": 0, "running": 1, "completed": 0,
                                           "unknown": 0, "allocated": {}, "reservation": {}}


async def _written(status) -> bool:
    return all([await status("Job", "demo"), await status("PodGroup", "demo"), await status("Queue", "q1")])
