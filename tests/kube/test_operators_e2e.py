"""End to end: other operators' PodGroups and plain pods, gang-scheduled by ``eventbatch serve``.

A real ``eventbatch serve --cluster kube`` subprocess on a SQLite log and a
real ``eventbatch kubelet-sim`` run against the API-server fake. The test
creates, through the API, what those operators create for Volcano (the
fixtures are written from their documented output, not from eventbatch):

- Kubeflow's training operator, for a PyTorchJob ``mnist`` with one master and
  two workers and gang scheduling on Volcano: a ``scheduling.volcano.sh``
  PodGroup ``mnist`` with ``minMember`` 3 (master + workers) and
  ``minResources``, then pods ``mnist-master-0``, ``mnist-worker-0`` and
  ``mnist-worker-1`` with ``schedulerName: volcano``, the annotations
  ``scheduling.k8s.io/group-name: mnist`` and ``volcano.sh/task-spec`` (the
  replica type), the operator's labels and an owner reference to the
  PyTorchJob. The last worker comes after the others: none is bound before it.
- The Spark operator with its Volcano batch scheduler: a PodGroup
  ``spark-pi-pg`` (``minMember`` 1) and the driver pod in it; the executors,
  which the driver creates once it runs (owned by the driver pod), join the
  same PodGroup later.
- A plain pod for ``volcano`` naming no PodGroup: it gets
  ``podgroup-<its uid>``, created in the API as Volcano's pod-group
  controller creates it.

All run to completion; the operators' PodGroups get their phase written
back (``Completed``); every API call eventbatch made is granted by the RBAC
of the deployment. It runs with Volcano's API groups (``scheduling.volcano.sh``
PodGroups, where eventbatch replaces Volcano) and with the project's
(``--api-groups=eventbatch``: the watch follows the configured group).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventbatch.kube.client import Kube
from eventbatch.kube.crds import Groups, groups
from eventbatch.log.factory import open_log
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import ROOT, apply_crds, eventually
from tests.kube.processes import FAST, Process, kubelet_sim, start
from tests.kube.support import envelopes, granted, node_manifest
from tests.kube.test_e2e import scrape

pytestmark = pytest.mark.slow

PYTORCHJOB_UID = "5d0e7f3a-1c2b-4d5e-8f90-0a1b2c3d4e5f"


def podgroup(
    api: Groups, name: str, *, min_member: int, min_resources: dict[str, str], owner: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {
        "apiVersion": "/".join(api["PodGroup"]),
        "kind": "PodGroup",
        "metadata": meta,
        "spec": {"minMember": min_member, "queue": "default", "minResources": min_resources},
    }


def pytorch_owner() -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "name": "mnist",
        "uid": PYTORCHJOB_UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pytorch_pod(replica_type: str, index: int) -> dict[str, Any]:
    """A pod as the training operator creates it for a PyTorchJob with Volcano gang scheduling."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"mnist-{replica_type}-{index}",
            "namespace": "default",
            "labels": {
                "training.kubeflow.org/job-name": "mnist",
                "training.kubeflow.org/operator-name": "pytorchjob-controller",
                "training.kubeflow.org/replica-type": replica_type,
                "training.kubeflow.org/replica-index": str(index),
            },
            "annotations": {
                "scheduling.k8s.io/group-name": "mnist",
                "volcano.sh/task-spec": replica_type,
                "eventbatch.io/sim-duration": "2s",
            },
            "ownerReferences": [pytorch_owner()],
        },
        "spec": {
            "schedulerName": "volcano",
            "restartPolicy": "OnFailure",
            "containers": [
                {
                    "name": "pytorch",
                    "image": "kubeflow/pytorch-dist-mnist:latest",
                    "ports": [{"name": "pytorchjob-port", "containerPort": 23456}],
                    "env": [{"name": "MASTER_ADDR", "value": "mnist-master-0"}, {"name": "WORLD_SIZE", "value": "3"}],
                    "resources": {"requests": {"cpu": "2", "memory": "4Gi"}},
                }
            ],
        },
    }


def spark_pod(name: str, role: str, *, owner_uid: str = "", duration: str = "2s") -> dict[str, Any]:
    """A Spark driver or executor pod as the Spark operator (Volcano batch scheduler) sets it up."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "labels": {"spark-app-selector": "spark-a1b2", "spark-role": role, "sparkoperator.k8s.io/app-name": "spark-pi"},
        "annotations": {"scheduling.k8s.io/group-name": "spark-pi-pg", "eventbatch.io/sim-duration": duration},
    }
    if owner_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "spark-pi-driver", "uid": owner_uid, "controller": True}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "schedulerName": "volcano",
            "restartPolicy": "Never",
            "containers": [
                {"name": f"spark-kubernetes-{role}", "image": "apache/spark:3.5.1", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}
            ],
        },
    }


async def pods(kube: Kube) -> dict[str, dict[str, Any]]:
    listed = await kube.call(kube.core.list_namespaced_pod, "default")
    return {p["metadata"]["name"]: p for p in listed["items"]}


async def phase_of(kube: Kube, name: str) -> str:
    pod = (await pods(kube)).get(name)
    return ((pod or {}).get("status") or {}).get("phase", "")


async def group_phase(kube: Kube, api: Groups, name: str) -> str:
    try:
        obj = await kube.call(kube.custom.get_namespaced_custom_object, *api["PodGroup"], "default", "podgroups", name)
    except Exception:
        return ""
    return (obj.get("status") or {}).get("phase", "")


async def read_log(url: str):
    log = open_log(url)
    await log.start()
    try:
        return await envelopes(log)
    finally:
        await log.stop()


async def create_pod(kube: Kube, body: dict[str, Any]) -> dict[str, Any]:
    return await kube.call(kube.core.create_namespaced_pod, "default", body)


@pytest.mark.parametrize("api_groups", ["volcano", "eventbatch"])
async def test_operator_podgroups_and_plain_pods_are_gang_scheduled_and_run(
    apiserver: ApiServer, kube: Kube, tmp_path: Path, api_groups: str
) -> None:
    await apply_crds(kube, api_groups)
    api = groups(api_groups)
    for name in ("n1", "n2"):
        await kube.call(kube.core.create_node, node_manifest(name, cpu="5"))
    queue = {"apiVersion": "/".join(api["Queue"]), "kind": "Queue", "metadata": {"name": "default"}, "spec": {"weight": 1}}
    await kube.call(kube.custom.create_cluster_custom_object, *api["Queue"], "queues", queue)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    sim = await kubelet_sim(apiserver=apiserver, workdir=tmp_path)
    server: Process = await start(
        "serve",
        ["--log", url, "serve", "--cluster=kube", f"--api-groups={api_groups}", *FAST, "--leader-elect-identity=eventbatch"],
        apiserver=apiserver, workdir=tmp_path, user="eventbatch",
    )
    try:
        # Kubeflow: the PodGroup, then the master and one worker; the gang needs three pods.
        await kube.call(
            kube.custom.create_namespaced_custom_object, *api["PodGroup"], "default", "podgroups",
            podgroup(api, "mnist", min_member=3, min_resources={"cpu": "6", "memory": "12Gi"}, owner=pytorch_owner()),
        )
        await create_pod(kube, pytorch_pod("master", 0))
        await create_pod(kube, pytorch_pod("worker", 0))

        async def two_in_the_gang() -> bool:
            return sum(1 for e in await read_log(url) if e.type == "PodRequested" and e.payload.podgroup == "default/mnist") == 2

        await eventually(two_in_the_gang, timeout=30, what="the master and a worker in PodGroup mnist")
        await eventually(lambda: _scheduled(url, server, "default/mnist"), timeout=30, what="a session over the incomplete gang")
        assert [n for n, p in (await pods(kube)).items() if p["spec"].get("nodeName")] == []  # nothing bound: 2 < minMember
        await create_pod(kube, pytorch_pod("worker", 1))
        for name in ("mnist-master-0", "mnist-worker-0", "mnist-worker-1"):
            await eventually(lambda n=name: _phase_is(kube, n, "Succeeded"), timeout=40, what=f"{name} to succeed")
        await eventually(lambda: _group_phase_is(kube, api, "mnist", "Completed"), timeout=20, what="PodGroup mnist Completed")

        # Spark: the driver runs alone in its PodGroup; the executors it creates join later.
        await kube.call(
            kube.custom.create_namespaced_custom_object, *api["PodGroup"], "default", "podgroups",
            podgroup(api, "spark-pi-pg", min_member=1, min_resources={"cpu": "1", "memory": "2Gi"}),
        )
        driver = await create_pod(kube, spark_pod("spark-pi-driver", "driver", duration="6s"))
        await eventually(lambda: _phase_is(kube, "spark-pi-driver", "Running"), timeout=30, what="the driver to run")
        for i in (1, 2):
            await create_pod(kube, spark_pod(f"spark-pi-exec-{i}", "executor", owner_uid=driver["metadata"]["uid"]))
        for name in ("spark-pi-exec-1", "spark-pi-exec-2", "spark-pi-driver"):
            await eventually(lambda n=name: _phase_is(kube, n, "Succeeded"), timeout=40, what=f"{name} to succeed")

        # A plain pod naming no PodGroup: podgroup-<its uid>, made as Volcano's controller makes it.
        plain = await create_pod(kube, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lonely", "namespace": "default", "annotations": {"eventbatch.io/sim-duration": "1s"}},
            "spec": {"schedulerName": "volcano", "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "1"}}}]},
        })
        made = f"podgroup-{plain['metadata']['uid']}"
        await eventually(lambda: _phase_is(kube, "lonely", "Succeeded"), timeout=30, what="the plain pod to succeed")
        await eventually(lambda: _group_phase_is(kube, api, made, "Completed"), timeout=20, what=f"PodGroup {made} Completed")
    except BaseException:
        print(server.log_text()[-6000:], sim.log_text()[-2000:])
        raise
    finally:
        await server.stop()
        await sim.stop()

    events = await read_log(url)
    bound = {e.payload.pod: e.recorded_at for e in events if e.type == "PodBound"}
    # the gang was bound together, after its last pod came
    last_worker = next(e.recorded_at for e in events if e.type == "PodSubmitRequested" and e.payload.pod == "default/mnist-worker-1")
    assert all(bound[f"default/mnist-{p}"] >= last_worker for p in ("master-0", "worker-0", "worker-1"))
    # eventbatch created none of the operators' pods, and each is on the log once, with its uid
    created = [c.name for c in apiserver.audit if c.resource == "pods" and c.verb == "create" and c.user == "eventbatch"]
    assert created == []
    submitted = [e.payload.pod for e in events if e.type == "PodSubmitRequested"]
    assert sorted(submitted) == sorted(set(submitted)) and len(submitted) == 7
    assert all(e.payload.uid for e in events if e.type == "PodRequested")
    made_groups = [e.payload for e in events if e.type == "PodGroupCreated"]
    assert {g.podgroup for g in made_groups} == {"default/mnist", "default/spark-pi-pg", f"default/{made}"}
    assert [r.kind for r in next(g for g in made_groups if g.podgroup == f"default/{made}").manifest.metadata.owner_references] == ["Pod"]
    rules = granted(ROOT / "deploy" / "base" / "rbac.yaml")
    if api_groups == "eventbatch":  # the overlay's ClusterRole replaces the base's
        rules = {r for r in rules if not r[0].endswith(".volcano.sh")} | granted(ROOT / "deploy" / "overlays" / "eventbatch" / "rbac.yaml")
    assert apiserver.calls(user="eventbatch") - rules == set(), "calls the ClusterRole/Role does not grant"
    assert (api["PodGroup"][0], "podgroups", "watch") in apiserver.calls(user="eventbatch")


async def _scheduled(url: str, server: Process, group: str) -> bool:
    """The scheduler has answered a session requested after every pod now in ``group`` was."""
    events = await read_log(url)
    last = max(e.position for e in events if e.type == "PodRequested" and e.payload.podgroup == group)
    sessions = [e.position for e in events if e.type == "SchedulingRequested" and e.position > last]
    if not sessions:
        return False
    metrics = await scrape(server)
    return metrics.get('eventbatch_handler_position{handler="scheduler"}', 0) > sessions[0]


async def _phase_is(kube: Kube, name: str, phase: str) -> bool:
    return await phase_of(kube, name) == phase


async def _group_phase_is(kube: Kube, api: Groups, name: str, phase: str) -> bool:
    return await group_phase(kube, api, name) == phase
