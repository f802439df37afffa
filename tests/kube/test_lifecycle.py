"""Job lifecycle through the API server, in one process: restarts, suspend and resume.

The whole pipeline (handlers, watch adapter, actuator, status writer) and
kubelet-sim run in the test's event loop against the API-server fake. A job
whose pods exit 1 under a ``PodFailed -> RestartJob`` policy is restarted:
every pod is deleted and created again under the same name, once per
attempt, until ``maxRetry`` makes the job Failed; the exit codes reach the
log, each pod incarnation's transitions exactly once. Command objects
(``AbortJob``, ``ResumeJob``) suspend a running job and bring it back.
"""

from __future__ import annotations

import collections

from eventbatch.app import build_pipeline, default_handlers, scheduling_relevance
from eventbatch.clock import SystemClock
from eventbatch.kube.adapter import KubeOptions
from eventbatch.kube.client import Connection, Kube
from eventbatch.kube.crds import GROUPS
from eventbatch.kube.kubelet_sim import KubeletSim
from eventbatch.log.memory import MemoryLog
from eventbatch.settings import Settings
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import eventually
from tests.kube.support import api_version, envelopes, job_manifest, node_manifest, queue_manifest, running


async def kube_pipeline(kube: Kube, log: MemoryLog, connection: Connection):
    """The whole pipeline in this process against the fake, with one node and the default queue."""
    settings = Settings(cluster="kube", debounce_ms=20)
    pipeline = build_pipeline(
        log=log,
        clock=SystemClock(),
        handlers=default_handlers(settings),
        settings=settings,
        is_relevant=scheduling_relevance(),
        cluster="kube",
        kube=KubeOptions(connection=connection, watch_timeout_s=5),
    )
    await kube.call(kube.core.create_node, node_manifest("n1", cpu="16"))
    await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["Queue"], "queues", queue_manifest())
    return pipeline


async def test_a_failing_job_restarts_until_max_retry(apiserver: ApiServer, crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    pipeline = await kube_pipeline(kube, log, connection)
    job = job_manifest("flaky", replicas=2, duration="0s", maxRetry=2, policies=[{"event": "PodFailed", "action": "RestartJob"}])
    job["spec"]["tasks"][0]["template"]["metadata"]["annotations"]["eventbatch.io/sim-exit-code"] = "1"

    async def phase() -> str:
        obj = await kube.call(kube.custom.get_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", "flaky")
        return ((obj.get("status") or {}).get("state") or {}).get("phase", "")

    async with running(pipeline, KubeletSim(kube=kube, startup_s=0.05, watch_timeout_s=5)):
        await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", job)
        await eventually(lambda: _is(phase, "Failed"), timeout=30, what="the job to fail")
        await eventually(lambda: _no_pods(kube), what="the last pods to go")
        await eventually(lambda: _count(log, "PodDeleted", 4), what="every deletion on the log")

    events = await envelopes(log)
    phases = [e.payload.phase for e in events if e.type == "JobPhaseChanged"]
    # (whether a job is seen Running before its first pod fails depends on timing)
    assert (phases[0], phases.count("Restarting"), phases[-1]) == ("Pending", 2, "Failed")
    creates = collections.Counter(c.name for c in apiserver.audit if c.resource == "pods" and c.verb == "create" and c.code == 201)
    assert creates == {"flaky-worker-0": 2, "flaky-worker-1": 2}
    for pod in ("default/flaky-worker-0", "default/flaky-worker-1"):
        kinds = [e.type for e in events if getattr(e.payload, "pod", "") == pod]
        for kind in ("PodRequested", "PodCreated", "PodDeleted"):
            assert kinds.count(kind) == 2, (pod, kind, kinds)
        # a pod the restart deleted while it still ran has no failure of its own
        assert kinds.count("PodStarted") <= 2 and kinds.count("PodFailed") <= 2, kinds
    failures = [e.payload for e in events if e.type == "PodFailed"]
    assert len(failures) >= 2 and {f.exit_code for f in failures} == {1}
    uids = [e.payload.uid for e in events if e.type == "PodCreated"]
    assert len(set(uids)) == 4  # four pods, two incarnations of each name


async def _is(phase, wanted: str) -> bool:
    return await phase() == wanted


async def _no_pods(kube: Kube) -> bool:
    return (await kube.call(kube.core.list_namespaced_pod, "default"))["items"] == []


async def _count(log: MemoryLog, kind: str, n: int) -> bool:
    return [e.type for e in await envelopes(log)].count(kind) >= n


def command(name: str, action: str, job: str) -> dict:
    return {
        "apiVersion": api_version("Command"),
        "kind": "Command",
        "metadata": {"name": name, "namespace": "default"},
        "action": action,
        "target": {"apiVersion": "batch.eventbatch.io/v1alpha1", "kind": "Job", "name": job},
    }


async def test_a_job_is_suspended_and_resumed_with_commands(crds: Kube, connection: Connection) -> None:
    kube, log = crds, MemoryLog()
    pipeline = await kube_pipeline(kube, log, connection)
    job = job_manifest("long", replicas=2)
    del job["spec"]["tasks"][0]["template"]["metadata"]["annotations"]["eventbatch.io/sim-duration"]  # runs until deleted

    async def phase() -> str:
        obj = await kube.call(kube.custom.get_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", "long")
        return ((obj.get("status") or {}).get("state") or {}).get("phase", "")

    async def running_pods() -> int:
        listed = await kube.call(kube.core.list_namespaced_pod, "default")
        return sum(1 for p in listed["items"] if (p.get("status") or {}).get("phase") == "Running")

    custom = kube.custom.create_namespaced_custom_object
    async with running(pipeline, KubeletSim(kube=kube, startup_s=0.05, watch_timeout_s=5)):
        await kube.call(custom, *GROUPS["Job"], "default", "jobs", job)
        await eventually(lambda: _is(phase, "Running"), timeout=20, what="Running")
        await eventually(lambda: _eq(running_pods, 2), what="two running pods")
        await kube.call(custom, *GROUPS["Command"], "default", "commands", command("suspend", "AbortJob", "long"))
        await eventually(lambda: _is(phase, "Aborted"), timeout=20, what="Aborted")
        await eventually(lambda: _no_pods(kube), what="the pods to be deleted")
        await kube.call(custom, *GROUPS["Command"], "default", "commands", command("resume", "ResumeJob", "long"))
        await eventually(lambda: _is(phase, "Running"), timeout=20, what="Running again")
        await eventually(lambda: _eq(running_pods, 2), what="two running pods again")
    issued = [e.payload.command.action for e in await envelopes(log) if e.type == "JobCommandRequested"]
    assert issued == ["AbortJob", "ResumeJob"]
    leftover = await kube.call(kube.custom.list_namespaced_custom_object, *GROUPS["Command"], "default", "commands")
    assert leftover["items"] == []


async def _eq(fn, value) -> bool:
    return await fn() == value
