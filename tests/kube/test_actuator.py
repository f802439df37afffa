"""The actuator carries out each decision once, idempotently, and records what it did.

Pods get their deterministic name, owner reference, scheduler name and the
position of the decision; a restart creates nothing twice (also when it
crashed between the create and recording it); "already exists" and "already
bound there" count as done; deletions of pods that never existed are
reported; the ssh key pair exists only in the Secret.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess

import msgspec
import pytest

from eventbatch.clock import SystemClock
from eventbatch.kube.actuator import KubeActuator
from eventbatch.kube.client import Connection, Kube
from eventbatch.kube.crds import GROUPS, groups
from eventbatch.kube.translate import REQUESTED_AT
from eventbatch.log.codec import encode
from eventbatch.log.memory import MemoryLog, MemoryStore
from eventbatch.settings import DEFAULT_API_GROUPS
from schemas.envelope import Envelope
from schemas.events import (
    ConfigMapRequested,
    JobCreated,
    PodBound,
    PodDeletionRequested,
    PodEvictionRequested,
    PodGroupCreated,
    PodRequested,
    SecretRequested,
    ServiceRequested,
)
from schemas.resources import Container, Job, ObjectMeta, Pod, PodGroup, PodGroupSpec, PodSpec
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import eventually
from tests.kube.support import envelopes, idle, running, types

JOB = "default/demo"
POD = "default/demo-worker-0"


def actuator(log: MemoryLog, connection: Connection, api_groups: str = DEFAULT_API_GROUPS) -> KubeActuator:
    return KubeActuator(log=log, clock=SystemClock(), connection=connection, api_groups=groups(api_groups))


def submitted(uid: str = "job-uid-1") -> JobCreated:
    return JobCreated(job=JOB, manifest=Job(metadata=ObjectMeta(name="demo", namespace="default", uid=uid)))


def requested(name: str = "demo-worker-0", scheduler: str = "volcano") -> PodRequested:
    pod = Pod(
        metadata=ObjectMeta(name=name, namespace="default", labels={"volcano.sh/job-name": "demo"}),
        spec=PodSpec(scheduler_name=scheduler, priority_class_name="high", priority=1000, containers=[Container(name="main", image="busybox", env=[{"name": "VC_TASK_INDEX", "value": "0"}])]),
    )
    return PodRequested(pod=f"default/{name}", job=JOB, podgroup="default/demo", task="worker", index=0, manifest=pod)


async def append(log: MemoryLog, *events) -> list[int]:
    return await log.append([Envelope.wrap(e, recorded_at=0) for e in events])


def creates(apiserver: ApiServer, resource: str = "pods") -> int:
    return sum(1 for c in apiserver.audit if c.verb == "create" and c.resource == resource and c.code == 201)


@pytest.fixture(autouse=True)
async def priority_class(kube: Kube) -> None:
    await kube.call(kube.scheduling.create_priority_class, {"metadata": {"name": "high"}, "value": 500})


@pytest.mark.parametrize("api_groups, owner_api_version", [
    ("volcano", "batch.volcano.sh/v1alpha1"), ("eventbatch", "batch.eventbatch.io/v1alpha1"),
])
async def test_a_requested_pod_is_created_once_and_recorded(
    apiserver: ApiServer, kube: Kube, connection: Connection, api_groups: str, owner_api_version: str
) -> None:
    log = MemoryLog()
    _, position = await append(log, submitted(), requested())
    async with running(actuator(log, connection, api_groups)):
        await eventually(lambda: _type_in(log, "PodCreated"))
    pod = await kube.call(kube.core.read_namespaced_pod, "demo-worker-0", "default")
    assert pod["spec"]["schedulerName"] == "volcano"
    assert (pod["spec"]["priorityClassName"], pod["spec"]["priority"]) == ("high", 500)  # the server's to fill in
    assert pod["spec"]["containers"][0]["env"] == [{"name": "VC_TASK_INDEX", "value": "0"}]
    assert pod["metadata"]["annotations"][REQUESTED_AT] == str(position)
    assert pod["metadata"]["ownerReferences"] == [
        {"apiVersion": owner_api_version, "kind": "Job", "name": "demo", "uid": "job-uid-1", "controller": True, "blockOwnerDeletion": True}
    ]
    created = (await envelopes(log))[-1]
    assert created.payload.uid == pod["metadata"]["uid"]
    assert (created.causation.position, created.causation.handler) == (position, "kube-actuator")


async def _type_in(log: MemoryLog, name: str, count: int = 1) -> bool:
    return (await types(log)).count(name) >= count


@pytest.mark.parametrize("crashed_before_recording", [False, True], ids=["after-recording", "between-create-and-record"])
async def test_a_restart_creates_no_pod_twice(apiserver: ApiServer, kube: Kube, connection: Connection, crashed_before_recording: bool) -> None:
    store = MemoryStore()
    log = MemoryLog(store=store)
    _, position = await append(log, submitted(), requested())
    if crashed_before_recording:
        # the pod was created, then the process died before PodCreated reached the log
        body = {"metadata": {"name": "demo-worker-0", "annotations": {REQUESTED_AT: str(position)}}, "spec": {"containers": [{"name": "m", "image": "x"}]}}
        await kube.call(kube.core.create_namespaced_pod, "default", body)
    else:
        async with running(actuator(log, connection)):
            await eventually(lambda: _type_in(log, "PodCreated"))
    restarted = actuator(MemoryLog(store=store), connection)
    async with running(restarted):
        await eventually(lambda: _type_in(log, "PodCreated"))
        await eventually(lambda: idle(restarted), what="nothing pending")
    assert creates(apiserver) == 1
    assert (await types(log)).count("PodCreated") == 1


async def test_an_older_pod_of_the_same_name_is_waited_for(apiserver: ApiServer, kube: Kube, connection: Connection) -> None:
    body = {"metadata": {"name": "demo-worker-0", "annotations": {REQUESTED_AT: "999"}}, "spec": {"nodeName": "n1", "containers": [{"name": "m", "image": "x"}]}}
    await kube.call(kube.core.create_namespaced_pod, "default", body)
    await kube.call(kube.core.delete_namespaced_pod, "demo-worker-0", "default")  # terminating, grace period
    log = MemoryLog()
    await append(log, submitted(), requested())
    runner = actuator(log, connection)
    async with running(runner):
        await eventually(lambda: runner.stats.retried > 0, what="a retry")
        assert "PodCreated" not in await types(log)
        await kube.call(kube.core.delete_namespaced_pod, "demo-worker-0", "default", grace_period_seconds=0)
        await eventually(lambda: _type_in(log, "PodCreated"), timeout=15)
    assert creates(apiserver) == 2


@pytest.mark.parametrize(
    "bound_before, expected",
    [(None, []), ("n1", []), ("n2", ["PodBindFailed"])],
    ids=["binds", "already-bound-there-is-done", "bound-elsewhere-fails"],
)
async def test_binding(kube: Kube, connection: Connection, bound_before: str | None, expected: list[str]) -> None:
    log = MemoryLog()
    await append(log, submitted(), requested())
    runner = actuator(log, connection)
    async with running(runner):
        await eventually(lambda: _type_in(log, "PodCreated"))
        if bound_before:
            body = {"metadata": {"name": "demo-worker-0"}, "target": {"kind": "Node", "name": bound_before}}
            await kube.call(kube.core.create_namespaced_pod_binding, "demo-worker-0", "default", body)
        await append(log, PodBound(pod=POD, job=JOB, node="n1"))
        await eventually(lambda: idle(runner), what="the bind to be done")
    pod = await kube.call(kube.core.read_namespaced_pod, "demo-worker-0", "default")
    assert pod["spec"]["nodeName"] == (bound_before or "n1")
    assert (await types(log))[4:] == expected


async def test_deleting_a_pod_that_never_existed_reports_it_deleted(kube: Kube, connection: Connection) -> None:
    log = MemoryLog()
    await append(log, submitted(), requested())
    # the deletion is decided before the actuator ever ran: the create is superseded
    await append(log, PodDeletionRequested(pod=POD, job=JOB, reason="Restart"))
    runner = actuator(log, connection)
    async with running(runner):
        await eventually(lambda: _type_in(log, "PodDeleted"))
    assert "PodCreated" not in await types(log)


@pytest.mark.parametrize("decision", ["delete", "evict"])
async def test_deleting_and_evicting_a_pod(kube: Kube, connection: Connection, decision: str) -> None:
    log = MemoryLog()
    await append(log, submitted(), requested())
    runner = actuator(log, connection)
    async with running(runner):
        await eventually(lambda: _type_in(log, "PodCreated"))
        if decision == "delete":
            await append(log, PodDeletionRequested(pod=POD, job=JOB, reason="Killed"))
        else:
            await append(log, PodEvictionRequested(pod=POD, job=JOB, reason="Preempted"))
        await eventually(lambda: idle(runner))
    listed = await kube.call(kube.core.list_namespaced_pod, "default")
    assert listed["items"] == []
    tail = (await types(log))[4:]
    assert tail == (["PodEvicted"] if decision == "evict" else [])  # PodDeleted comes from the watch


async def test_the_ssh_key_pair_is_only_in_the_secret(kube: Kube, connection: Connection, tmp_path) -> None:
    log = MemoryLog()
    await append(log, submitted(), SecretRequested(name="default/demo-ssh", job=JOB, key_bits=1024, config="StrictHostKeyChecking no\n"))
    runner = actuator(log, connection)
    async with running(runner):
        await eventually(lambda: idle(runner))
    secret = await kube.call(kube.core.read_namespaced_secret, "demo-ssh", "default")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert sorted(data) == ["authorized_keys", "config", "id_rsa", "id_rsa.pub"]
    key = tmp_path / "id_rsa"
    key.write_text(data["id_rsa"])
    key.chmod(0o600)
    derived = (
        await asyncio.to_thread(subprocess.run, ["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True)
    ).stdout
    assert derived.split()[:2] == data["authorized_keys"].split()[:2] == data["id_rsa.pub"].split()[:2]
    everything = b"".join(encode(e) for e in await envelopes(log))
    assert b"PRIVATE KEY" not in everything


async def test_podgroup_service_and_config_map(crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    group = PodGroup(metadata=ObjectMeta(name="demo-pg", namespace="default"), spec=PodGroupSpec(min_member=2, queue="q1"))
    await append(
        log,
        submitted(),
        PodGroupCreated(podgroup="default/demo-pg", job=JOB, manifest=group),
        ServiceRequested(name="default/demo", job=JOB, manifest={"metadata": {"name": "demo"}, "spec": {"clusterIP": "None", "selector": {"volcano.sh/job-name": "demo"}}}),
        ConfigMapRequested(name="default/demo-svc", job=JOB, data={"worker.host": "demo-worker-0.demo"}),
        ConfigMapRequested(name="default/demo-svc", job=JOB, data={"worker.host": "demo-worker-0.demo\ndemo-worker-1.demo"}),
    )
    runner = actuator(log, connection)
    async with running(runner):
        await eventually(lambda: idle(runner))
    pg = await kube.call(kube.custom.get_namespaced_custom_object, *GROUPS["PodGroup"], "default", "podgroups", "demo-pg")
    assert pg["apiVersion"] == "scheduling.volcano.sh/v1beta1" and pg["spec"]["minMember"] == 2  # the default groups
    assert pg["metadata"]["ownerReferences"][0]["uid"] == "job-uid-1"
    svc = await kube.call(kube.core.read_namespaced_service, "demo", "default")
    assert svc["spec"]["clusterIP"] == "None"
    cm = await kube.call(kube.core.read_namespaced_config_map, "demo-svc", "default")
    assert cm["data"] == {"worker.host": "demo-worker-0.demo\ndemo-worker-1.demo"}


async def test_server_errors_are_retried_with_backoff(apiserver: ApiServer, kube: Kube, connection: Connection) -> None:
    log = MemoryLog()
    await append(log, submitted(), requested())
    apiserver.fail_next(3, code=503, path_contains="/pods")
    async with running(actuator(log, connection)):
        await eventually(lambda: _type_in(log, "PodCreated"), timeout=15)
    assert creates(apiserver) == 1
    assert sum(1 for c in apiserver.audit if c.code == 503) == 3


def test_decisions_round_trip_through_the_codec() -> None:
    # the actuator's input is what the log stores: a manifest survives encode/decode unchanged
    event = requested()
    assert msgspec.json.decode(msgspec.json.encode(event), type=PodRequested) == event


@pytest.mark.parametrize("reason, kept", [("TTLExpired", False), ("Deleted", True)], ids=["ttl-expired", "deleted-by-the-user"])
async def test_a_job_whose_ttl_expired_is_deleted(crds: Kube, connection: Connection, reason: str, kept: bool) -> None:
    from schemas.events import JobRemoved
    from tests.kube.support import job_manifest

    kube, log = crds, MemoryLog()
    await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", job_manifest())
    await append(log, submitted(), JobRemoved(job=JOB, reason=reason))
    runner = actuator(log, connection)
    async with running(runner):
        await eventually(lambda: idle(runner))
    listed = await kube.call(kube.custom.list_namespaced_custom_object, *GROUPS["Job"], "default", "jobs")
    assert [j["metadata"]["name"] for j in listed["items"]] == (["demo"] if kept else [])
