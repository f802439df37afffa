"""The watch adapter turns what the API server holds into events, each exactly once.

Custom objects become intents, nodes and priority classes observations, and
pods their transitions; a reconnect, a relist after 410 Gone or a restart
appends only what really changed; an object refused by admission becomes a
Warning Event, never an event on the log.
"""

from __future__ import annotations

import pytest

from eventbatch.clock import SystemClock
from eventbatch.kube.client import MERGE, Connection, Kube
from eventbatch.kube.crds import GROUPS
from eventbatch.kube.observe import KubeObserver
from eventbatch.log.memory import MemoryLog, MemoryStore
from schemas.envelope import Causation, Envelope
from schemas.events import PodCreated, PodRequested
from schemas.resources import ObjectMeta, Pod
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import eventually
from tests.kube.support import envelopes, job_manifest, node_manifest, queue_manifest, running, types


def observer(log: MemoryLog, connection: Connection) -> KubeObserver:
    return KubeObserver(log=log, clock=SystemClock(), connection=connection, watch_timeout_s=2)


async def create_job(kube: Kube, manifest: dict) -> dict:
    return await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", manifest)


async def test_custom_objects_nodes_and_priority_classes_become_events(crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    await kube.call(kube.core.create_node, node_manifest("n1"))
    await kube.call(kube.scheduling.create_priority_class, {"metadata": {"name": "high"}, "value": 1000})
    async with running(observer(log, connection)):
        await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["Queue"], "queues", queue_manifest())
        job = await create_job(kube, job_manifest())
        await eventually(lambda: types(log), what="events")
        await eventually(
            lambda: _has(log, ["NodeAdded", "PriorityClassAdded", "QueueCreateRequested", "JobSubmitRequested"]), what="all four"
        )
    submitted = next(e for e in await envelopes(log) if e.type == "JobSubmitRequested")
    assert submitted.key == "default/demo"
    assert submitted.payload.manifest.metadata.uid == job["metadata"]["uid"]
    assert submitted.payload.manifest.spec.tasks[0].replicas == 2


async def _has(log: MemoryLog, wanted: list[str]) -> bool:
    seen = await types(log)
    return all(w in seen for w in wanted)


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"spec": {"minAvailable": 1}}, ["JobSubmitRequested", "JobUpdateRequested"]),
        ({"metadata": {"labels": {"team": "a"}}}, ["JobSubmitRequested"]),
    ],
    ids=["spec-change-is-an-update", "label-change-is-not"],
)
async def test_only_a_spec_change_is_a_job_update(crds: Kube, connection: Connection, change: dict, expected: list[str]) -> None:
    kube, log = crds, MemoryLog()
    await create_job(kube, job_manifest())
    watcher = observer(log, connection)
    async with running(watcher):
        await eventually(lambda: _has(log, ["JobSubmitRequested"]))
        await kube.call(kube.custom.patch_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", "demo", change, _content_type=MERGE)
        await eventually(lambda: watcher.cache["jobs"]["default/demo"]["metadata"]["resourceVersion"] != "", what="the change")
        await _settled(watcher)
    assert await types(log) == expected


async def _settled(watcher: KubeObserver) -> None:
    """Wait until the adapter has seen everything the server has and acted on it."""
    server_rv = None

    async def caught_up() -> bool:
        nonlocal server_rv
        kube = await watcher.connection.get()
        listed = await kube.call(kube.core.list_namespace)
        server_rv = int(listed["metadata"]["resourceVersion"])
        return all(int(i.resource_version or 0) >= server_rv - 0 for i in watcher.informers) and not watcher.dirty

    await eventually(caught_up, what="the adapter to catch up")


@pytest.mark.parametrize(
    "change, expected",
    [
        ("heartbeat", []),
        ("allocatable", ["NodeUpdated"]),
        ("delete", ["NodeRemoved"]),
    ],
    ids=["heartbeat-is-not-an-update", "allocatable-is", "deleted-is-removed"],
)
async def test_node_changes(crds: Kube, connection: Connection, change: str, expected: list[str]) -> None:
    kube, log = crds, MemoryLog()
    await kube.call(kube.core.create_node, node_manifest("n1"))
    watcher = observer(log, connection)
    async with running(watcher):
        await eventually(lambda: _has(log, ["NodeAdded"]))
        if change == "heartbeat":
            await kube.call(kube.core.replace_node_status, "n1", node_manifest("n1", heartbeat="t1"))
        elif change == "allocatable":
            await kube.call(kube.core.replace_node_status, "n1", node_manifest("n1", cpu="4"))
        else:
            await kube.call(kube.core.delete_node, "n1")
        await _settled(watcher)
    assert (await types(log))[1:] == expected


async def test_a_job_refused_by_admission_is_a_warning_event_not_an_intent(crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    bad = job_manifest("bad", replicas=2)
    # one event with two actions: refused by admission, which the CRD's CEL rules leave to the handler
    bad["spec"]["policies"] = [{"event": "PodFailed", "action": "RestartJob"}, {"event": "PodFailed", "action": "AbortJob"}]
    await create_job(kube, bad)
    await create_job(kube, job_manifest("good"))
    watcher = observer(log, connection)
    async with running(watcher):
        await eventually(lambda: _has(log, ["JobSubmitRequested"]))

        async def warned() -> bool:
            listed = await kube.call(kube.core.list_namespaced_event, "default")
            return any(e["reason"] == "FailedAdmission" and e["involvedObject"]["name"] == "bad" for e in listed["items"])

        await eventually(warned, what="a FailedAdmission event")
        await _settled(watcher)
    assert [e.key for e in await envelopes(log)] == ["default/good"]


async def test_commands_become_intents_and_are_deleted(crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    await create_job(kube, job_manifest())
    group, version = GROUPS["Command"]
    command = {
        "apiVersion": f"{group}/{version}",
        "kind": "Command",
        "metadata": {"name": "suspend-demo", "namespace": "default"},
        "action": "AbortJob",
        "target": {"apiVersion": "batch.eventbatch.io/v1alpha1", "kind": "Job", "name": "demo"},
    }
    close = {
        "apiVersion": f"{group}/{version}",
        "kind": "Command",
        "metadata": {"name": "close-q1", "namespace": "default"},
        "action": "CloseQueue",
        "target": {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "name": "q1"},
    }
    async with running(observer(log, connection)):
        await kube.call(kube.custom.create_namespaced_custom_object, group, version, "default", "commands", command)
        await kube.call(kube.custom.create_namespaced_custom_object, group, version, "default", "commands", close)

        async def deleted() -> bool:
            listed = await kube.call(kube.custom.list_namespaced_custom_object, group, version, "default", "commands")
            return listed["items"] == []

        await eventually(deleted, what="the commands to be deleted")
    issued = [e for e in await envelopes(log) if e.type.endswith("CommandRequested")]
    assert [(e.type, e.key) for e in issued] == [("JobCommandRequested", "default/demo"), ("QueueCommandRequested", "q1")]
    assert issued[0].payload.command.action == "AbortJob" and issued[1].payload.action == "close"


async def test_a_restart_after_compaction_appends_only_real_changes(apiserver: ApiServer, crds: Kube, connection: Connection) -> None:
    kube, store = crds, MemoryStore()
    for name in ("n1", "n2"):
        await kube.call(kube.core.create_node, node_manifest(name))
    await create_job(kube, job_manifest())
    first = observer(MemoryLog(store=store), connection)
    async with running(first):
        await eventually(lambda: _has(first.log, ["JobSubmitRequested", "NodeAdded"]))
        await _settled(first)
    before = len(await envelopes(first.log))
    # while no adapter runs: one node leaves, one joins, one heartbeats, the job changes
    await kube.call(kube.core.delete_node, "n1")
    await kube.call(kube.core.create_node, node_manifest("n3"))
    await kube.call(kube.core.replace_node_status, "n2", node_manifest("n2", heartbeat="t9"))
    await kube.call(kube.custom.patch_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", "demo", {"spec": {"minAvailable": 1}}, _content_type=MERGE)
    apiserver.compact()
    second = observer(MemoryLog(store=store), connection)
    async with running(second):
        await _settled(second)
    after = (await envelopes(second.log))[before:]
    assert sorted((e.type, e.key) for e in after) == [("JobUpdateRequested", "default/demo"), ("NodeAdded", "n3"), ("NodeRemoved", "n1")]


async def test_a_410_inside_a_watch_relists_without_duplicates(apiserver: ApiServer, crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    await kube.call(kube.core.create_node, node_manifest("n1"))
    watcher = observer(log, connection)
    async with running(watcher):
        await eventually(lambda: _has(log, ["NodeAdded"]))
        await _settled(watcher)
        await apiserver.expire_watches()
        await kube.call(kube.core.create_node, node_manifest("n2"))
        await eventually(lambda: sum(i.stats.expired for i in watcher.informers) > 0, what="a 410")
        await eventually(lambda: len(watcher.known.nodes) == 2, what="n2 after the relist")
        await apiserver.drop_watches()
        await kube.call(kube.core.create_node, node_manifest("n3"))
        await eventually(lambda: len(watcher.known.nodes) == 3, what="n3 after a dropped connection")
        await _settled(watcher)
    assert [(e.type, e.key) for e in await envelopes(log)] == [("NodeAdded", "n1"), ("NodeAdded", "n2"), ("NodeAdded", "n3")]


async def test_pod_transitions_with_exit_codes(crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    body = {"metadata": {"name": "demo-worker-0"}, "spec": {"schedulerName": "eventbatch", "nodeName": "n1", "containers": [{"name": "main", "image": "x"}]}}
    created = await kube.call(kube.core.create_namespaced_pod, "default", body)
    request = PodRequested(pod="default/demo-worker-0", job="default/demo", podgroup="default/demo", task="worker", index=0, manifest=Pod(metadata=ObjectMeta(name="demo-worker-0")))
    [position] = await log.append([Envelope.wrap(request, recorded_at=0)])
    await log.append([Envelope.wrap(PodCreated(pod=request.pod, job=request.job, uid=created["metadata"]["uid"]), recorded_at=0, causation=Causation(position, "kube-actuator"))])
    watcher = observer(log, connection)
    status = kube.core.patch_namespaced_pod_status
    async with running(watcher):
        await _settled(watcher)
        running_status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [{"name": "main", "restartCount": 0, "state": {"running": {}}}]}
        await kube.call(status, "demo-worker-0", "default", {"status": running_status}, _content_type=MERGE)
        await eventually(lambda: _has(log, ["PodStarted", "PodReady"]))
        restarted = {"containerStatuses": [{"name": "main", "restartCount": 1, "lastState": {"terminated": {"exitCode": 2}}, "state": {"running": {}}}]}
        await kube.call(status, "demo-worker-0", "default", {"status": restarted}, _content_type=MERGE)
        await eventually(lambda: _has(log, ["PodRestarted"]))
        failed = {"phase": "Failed", "containerStatuses": [{"name": "main", "restartCount": 1, "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}
        await kube.call(status, "demo-worker-0", "default", {"status": failed}, _content_type=MERGE)
        await eventually(lambda: _has(log, ["PodFailed"]))
        await kube.call(kube.core.delete_namespaced_pod, "demo-worker-0", "default", grace_period_seconds=0)
        await eventually(lambda: _has(log, ["PodDeleted"]))
        await _settled(watcher)
    events = (await envelopes(log))[2:]
    assert [e.type for e in events] == ["PodStarted", "PodReady", "PodRestarted", "PodFailed", "PodDeleted"]
    assert events[0].payload.node == "n1"
    assert (events[2].payload.restart_count, events[2].payload.exit_code) == (1, 2)
    assert events[3].payload.exit_code == 3


@pytest.mark.parametrize(
    "status, expected",
    [
        ({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}, ["PodStarted", "PodEvicted"]),
        ({"phase": "Unknown", "reason": "NodeLost"}, ["PodUnknown"]),
        ({"phase": "Failed", "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}, ["PodStarted", "PodFailed"]),
    ],
    ids=["kubelet-eviction", "node-lost", "oom-killed"],
)
async def test_how_a_pod_ended(crds: Kube, connection: Connection, status: dict, expected: list[str]) -> None:
    kube, log = crds, MemoryLog()
    body = {"metadata": {"name": "demo-worker-0"}, "spec": {"schedulerName": "eventbatch", "nodeName": "n1", "containers": [{"name": "main", "image": "x"}]}}
    created = await kube.call(kube.core.create_namespaced_pod, "default", body)
    request = PodRequested(pod="default/demo-worker-0", job="default/demo", podgroup="default/demo", task="worker", index=0, manifest=Pod(metadata=ObjectMeta(name="demo-worker-0")))
    [position] = await log.append([Envelope.wrap(request, recorded_at=0)])
    await log.append([Envelope.wrap(PodCreated(pod=request.pod, job=request.job, uid=created["metadata"]["uid"]), recorded_at=0, causation=Causation(position, "kube-actuator"))])
    watcher = observer(log, connection)
    async with running(watcher):
        await _settled(watcher)
        await kube.call(kube.core.patch_namespaced_pod_status, "demo-worker-0", "default", {"status": status}, _content_type=MERGE)
        await eventually(lambda: _has(log, expected))
        await _settled(watcher)
    events = (await envelopes(log))[2:]
    assert [e.type for e in events] == expected
    if expected[-1] == "PodFailed":
        assert (events[-1].payload.exit_code, events[-1].payload.reason) == (137, "OOMKilled")
