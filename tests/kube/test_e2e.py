"""End to end: ``kubectl apply`` a Queue and a Volcano-style Job, and watch it run to Completed.

A real ``eventbatch serve --cluster kube`` subprocess on a SQLite log (and
on a Kafka topic) and a real ``eventbatch kubelet-sim`` run against the API-server fake. The first
test kills eventbatch with SIGKILL while pods run and starts it again: no pod
is created twice and every pod transition is on the log exactly once. The
second runs two replicas: only the Lease holder acts, and the standby takes
over when the leader dies. Both check that every API call eventbatch made is
granted by deploy/base/rbac.yaml, and that the RBAC grants nothing unused.
"""

from __future__ import annotations

import collections
import re
import uuid
from pathlib import Path

import aiohttp
import pytest

from eventbatch.kube.client import Kube
from eventbatch.kube.crds import GROUPS
from eventbatch.log.factory import open_log
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import ROOT, eventually
from tests.kube.processes import Process, kubelet_sim, serve
from tests.kube.support import api_version, envelopes, granted, job_manifest, node_manifest, queue_manifest

pytestmark = pytest.mark.slow

WORKERS = 4
# Calls the RBAC grants that these scenarios do not make, and why they are needed.
UNEXERCISED = {
    ("batch.volcano.sh", "jobs", "delete"): "deleting a Job when ttlSecondsAfterFinished expires",
    ("batch.volcano.sh", "jobs", "create"): "creating the Job of a CronJob's run (tests/kube/test_cronjob_e2e.py)",
    ("batch.volcano.sh", "cronjobs/status", "patch"): "writing a CronJob's status (tests/kube/test_cronjob_e2e.py)",
    ("", "configmaps", "get"): "replacing the svc hosts ConfigMap when a job scales",
    ("", "configmaps", "update"): "replacing the svc hosts ConfigMap when a job scales",
    ("", "pods", "get"): "checking who holds a pod name after a 409",
    ("", "events", "create"): "reporting an object refused by admission",
    ("", "pods/status", "patch"): "PodScheduled=False on the pods of a gang that waits (tests/kube/test_status_e2e.py)",
    ("scheduling.volcano.sh", "podgroups", "patch"): "updating a PodGroup when its job scales",
    ("flow.volcano.sh", "jobflows/status", "patch"): "writing a JobFlow's status (tests/kube/test_jobflow_e2e.py)",
}


def mpi_job(name: str) -> dict:
    return job_manifest(name, replicas=WORKERS, duration="2s", plugins={"ssh": [], "svc": []})


async def setup_cluster(kube: Kube) -> None:
    for name in ("n1", "n2"):
        await kube.call(kube.core.create_node, node_manifest(name))
    await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["Queue"], "queues", queue_manifest())


async def job_phase(kube: Kube, name: str) -> str:
    job = await kube.call(kube.custom.get_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", name)
    return ((job.get("status") or {}).get("state") or {}).get("phase", "")


async def pods_in(kube: Kube, phase: str | None = None) -> list[dict]:
    listed = await kube.call(kube.core.list_namespaced_pod, "default")
    return [p for p in listed["items"] if phase is None or (p.get("status") or {}).get("phase") == phase]


async def read_log(url: str):
    log = open_log(url)
    await log.start()
    try:
        return await envelopes(log)
    finally:
        await log.stop()


def pod_creations(apiserver: ApiServer) -> collections.Counter:
    return collections.Counter(c.name or "" for c in apiserver.audit if c.resource == "pods" and c.verb == "create" and c.code == 201)


def assert_rbac(apiserver: ApiServer, users: tuple[str, ...]) -> None:
    made = set()
    for user in users:
        made |= apiserver.calls(user=user)
    rules = granted(ROOT / "deploy" / "base" / "rbac.yaml")
    assert made - rules == set(), "calls the ClusterRole/Role does not grant"
    unused = rules - made
    assert unused <= set(UNEXERCISED), f"granted but never used: {sorted(unused - set(UNEXERCISED))}"
    # ... and where: the tests run eventbatch in `default`, the Deployment in eventbatch-system
    from tests.kube.test_rbac import grants, ungranted

    calls = [c for c in apiserver.audit if (c.code < 400 or c.code in (404, 409)) and c.user in users]
    assert ungranted(calls, grants(rename={"eventbatch-system": "default"})) == set(), "calls outside the bound namespaces"


async def stop_all(*processes: Process) -> None:
    for p in processes:
        await p.stop()


def transitions(events, job: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = collections.defaultdict(list)
    for e in events:
        if e.type.startswith("Pod") and getattr(e.payload, "job", "") == job and hasattr(e.payload, "pod"):
            out[e.payload.pod].append(e.type)
    return out


@pytest.mark.parametrize("kill_when", ["a-pod-exists", "a-pod-runs"], ids=["while-creating", "while-running"])
async def test_a_job_runs_to_completed_across_a_sigkill(apiserver: ApiServer, crds: Kube, tmp_path: Path, kill_when: str) -> None:
    await run_across_a_sigkill(apiserver, crds, tmp_path, f"sqlite:///{tmp_path / 'events.db'}", kill_when)


@pytest.mark.kafka
async def test_a_job_runs_to_completed_across_a_sigkill_on_kafka(
    apiserver: ApiServer, crds: Kube, tmp_path: Path, kafka_bootstrap: str
) -> None:
    url = f"kafka://{kafka_bootstrap}/kube-e2e-{uuid.uuid4().hex[:8]}"
    await run_across_a_sigkill(apiserver, crds, tmp_path, url, "a-pod-runs")


async def run_across_a_sigkill(apiserver: ApiServer, crds: Kube, tmp_path: Path, url: str, kill_when: str) -> None:
    kube = crds
    await setup_cluster(kube)
    sim = await kubelet_sim(apiserver=apiserver, workdir=tmp_path)
    first = await serve("serve-1", apiserver=apiserver, workdir=tmp_path, log_url=url, user="eventbatch")
    second: Process | None = None
    try:
        await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", mpi_job("mpi"))
        if kill_when == "a-pod-exists":
            await eventually(lambda: _pods_at_least(kube, 1), timeout=30, what="a pod")
        else:
            await eventually(lambda: _running_at_least(kube, 1), timeout=30, what="a running pod")
        first.kill()
        await first.proc.wait()
        second = await serve("serve-2", apiserver=apiserver, workdir=tmp_path, log_url=url, user="eventbatch")
        await eventually(lambda: _phase_is(kube, "mpi", "Completed"), timeout=40, what="the job to complete")
        # a Command is taken off the API once on the log (refused: the job is finished)
        await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Command"], "default", "commands", abort("mpi"))
        await eventually(lambda: _logged(url, "JobCommandRefused", 1), timeout=20, what="the command to be answered")
        await eventually(lambda: _no_commands(kube), timeout=20, what="the command to be deleted")
        # the user deletes the finished job: eventbatch cleans up what it created
        await kube.call(kube.custom.delete_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", "mpi")
        await eventually(lambda: _all_gone(kube), timeout=20, what="pods, service, secret to be cleaned up")
        await eventually(lambda: _logged(url, "PodDeleted", WORKERS), timeout=20, what="the deletions on the log")
        metrics = await scrape(second)
        assert metrics["eventbatch_leader"] == 1
        assert metrics["eventbatch_actuator_pending"] == 0
        assert metrics["eventbatch_status_writes_total"] > 0
    except BaseException:
        print(first.log_text()[-4000:], second.log_text()[-4000:] if second else "", sim.log_text()[-2000:])
        raise
    finally:
        await stop_all(*(p for p in (first, second, sim) if p is not None))
    assert pod_creations(apiserver) == {f"mpi-worker-{i}": 1 for i in range(WORKERS)}
    events = await read_log(url)
    by_pod = transitions(events, "default/mpi")
    for i in range(WORKERS):
        seen = by_pod[f"default/mpi-worker-{i}"]
        for kind in ("PodRequested", "PodCreated", "PodBound", "PodStarted", "PodReady", "PodSucceeded", "PodDeleted"):
            assert seen.count(kind) == 1, (i, kind, seen)
    phases = [e.payload.phase for e in events if e.type == "JobPhaseChanged" and e.key == "default/mpi"]
    # each phase once, in order (Running may pass unseen if the pods ran while eventbatch was down)
    assert phases[0] == "Pending" and phases[-1] == "Completed" and len(phases) == len(set(phases)), phases
    assert [p for p in ["Pending", "Running", "Completing", "Completed"] if p in phases] == phases
    assert [e.type for e in events].count("JobSubmitRequested") == 1
    assert_rbac(apiserver, ("eventbatch",))


async def scrape(process: Process) -> dict[str, float]:
    """The /metrics of a serve process, by the port it logged."""
    match = re.search(r"probes listening port=(\d+)", process.log_text())
    assert match, "the probe port is logged"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{match[1]}/metrics") as response:
            text = await response.text()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and not line.startswith("#")}


async def holder_of_lease(kube: Kube) -> str:
    lease = await kube.call(kube.coordination.read_namespaced_lease, "eventbatch", "default")
    return lease["spec"].get("holderIdentity") or ""


async def _logged(url: str, kind: str, count: int) -> bool:
    return [e.type for e in await read_log(url)].count(kind) >= count


def abort(job: str) -> dict:
    return {
        "apiVersion": api_version("Command"),
        "kind": "Command",
        "metadata": {"name": f"abort-{job}", "namespace": "default"},
        "action": "AbortJob",
        "target": {"apiVersion": "batch.eventbatch.io/v1alpha1", "kind": "Job", "name": job},
    }


async def _no_commands(kube: Kube) -> bool:
    listed = await kube.call(kube.custom.list_namespaced_custom_object, *GROUPS["Command"], "default", "commands")
    return listed["items"] == []


async def _pods_at_least(kube: Kube, n: int) -> bool:
    return len(await pods_in(kube)) >= n


async def _running_at_least(kube: Kube, n: int) -> bool:
    return len(await pods_in(kube, "Running")) >= n


async def _phase_is(kube: Kube, name: str, phase: str) -> bool:
    return await job_phase(kube, name) == phase


async def _all_gone(kube: Kube) -> bool:
    services = await kube.call(kube.core.list_namespaced_service, "default")
    secrets = await kube.call(kube.core.list_namespaced_secret, "default")
    return not await pods_in(kube) and not services["items"] and not secrets["items"]


async def test_two_replicas_only_the_leader_acts(apiserver: ApiServer, crds: Kube, tmp_path: Path) -> None:
    kube = crds
    url = f"sqlite:///{tmp_path / 'events.db'}"
    await setup_cluster(kube)
    sim = await kubelet_sim(apiserver=apiserver, workdir=tmp_path)
    a = await serve("serve-a", apiserver=apiserver, workdir=tmp_path, log_url=url, user="replica-a")
    b = await serve("serve-b", apiserver=apiserver, workdir=tmp_path, log_url=url, user="replica-b")
    try:
        await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", mpi_job("first"))
        await eventually(lambda: _phase_is(kube, "first", "Completed"), timeout=40, what="the first job")
        lease = await kube.call(kube.coordination.read_namespaced_lease, "eventbatch", "default")
        leader = lease["spec"]["holderIdentity"]
        replicas = [c for c in apiserver.audit if c.user.startswith("replica-")]
        actors = {c.user for c in replicas if c.verb in ("create", "patch", "delete", "update") and c.resource != "leases"}
        assert actors == {leader}, "only the Lease holder writes"
        assert {c.resource for c in replicas if c.user != leader} == {"leases"}, "the standby only campaigns"
        (a if leader == "replica-a" else b).kill()
        await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", mpi_job("second"))
        await eventually(lambda: _phase_is(kube, "second", "Completed"), timeout=40, what="the standby to run the second job")
        # SIGTERM, as the kubelet sends it: a clean exit that hands the Lease back
        survivor = b if leader == "replica-a" else a
        assert await survivor.stop() == 0
        assert await holder_of_lease(kube) == ""
    except BaseException:
        print(a.log_text()[-4000:], b.log_text()[-4000:], sim.log_text()[-2000:])
        raise
    finally:
        await stop_all(a, b, sim)
    standby = "replica-b" if leader == "replica-a" else "replica-a"
    second_creators = {c.user for c in apiserver.audit if c.resource == "pods" and c.verb == "create" and (c.name or "").startswith("second")}
    assert second_creators == {standby}
    events = await read_log(url)
    assert [e.type for e in events].count("PodRequested") == 2 * WORKERS
    assert max(collections.Counter((e.causation.position, e.causation.handler, e.causation.index) for e in events if e.causation).values()) == 1
