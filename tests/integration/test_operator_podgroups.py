"""PodGroups and plain pods from other operators, through the whole simulated pipeline.

The example scenario ``examples/operator-podgroups.yaml`` holds what Kubeflow's
training operator and the Spark operator create for Volcano (a PodGroup and
pods with ``schedulerName: volcano`` and ``scheduling.k8s.io/group-name``) and a
ReplicaSet's pod that names no PodGroup. It runs with ``eventbatch.sim`` on a
real SQLite log (every handler, the scheduler, the simulated kubelet); the
tests read the log as ``eventbatch events tail`` shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from eventbatch.app import cluster_handlers, default_handlers
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from eventbatch.verify import verify
from schemas.envelope import Envelope
from schemas.scenario import load_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "operator-podgroups.yaml"
QUEUE = {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": "default"}, "spec": {"weight": 1}}


async def _run(tmp_path: Path, scenario: Path) -> list[Envelope]:
    """The scenario's whole log, after ``replay --verify``'s check found every decision reproduced."""
    async with open_log(f"sqlite:///{tmp_path}/log.db") as log:
        await run_scenario(load_scenario(str(scenario)), log=log, settings=Settings())
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
        report = await verify(log, cluster_handlers("sim", default_handlers(Settings())))
        assert report.ok and report.clean, [d.describe() for d in report.divergences]
        assert report.checks["podgroup-controller"].decisions_matched > 0
    return events


async def _run_raw(tmp_path: Path, raw: dict[str, Any]) -> list[Envelope]:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return await _run(tmp_path, path)


def _bound_at(events: list[Envelope]) -> dict[str, int]:
    return {e.payload.pod.split("/")[1]: e.recorded_at for e in events if e.type == "PodBound"}


def _of(events: list[Envelope], kind: str) -> list[Any]:
    return [e.payload for e in events if e.type == kind]


async def test_the_pytorchjob_gang_waits_for_its_last_worker_and_the_spark_executors_join_later(tmp_path: Path) -> None:
    events = await _run(tmp_path, EXAMPLE)
    bound = _bound_at(events)
    # The PyTorchJob's PodGroup has minMember 3: its worker-1 comes at 30s, and no pod of the
    # gang is bound before it, then all three at once.
    assert {bound["mnist-master-0"], bound["mnist-worker-0"], bound["mnist-worker-1"]} == {30_000}
    # The Spark driver runs alone (minMember 1); its executors join the same PodGroup at 1m.
    assert bound["spark-pi-driver"] == 0
    assert bound["spark-pi-exec-1"] == bound["spark-pi-exec-2"] == 60_000
    requested = {p.pod: p.podgroup for p in _of(events, "PodRequested")}
    assert requested["default/spark-pi-exec-1"] == requested["default/spark-pi-driver"] == "default/spark-pi-pg"
    # Every pod ran to the end and every PodGroup closed as Completed, as the scheduler closes a Job's.
    assert sorted(p.pod for p in _of(events, "PodSucceeded")) == sorted(f"default/{n}" for n in bound)
    completed = {p.podgroup for p in _of(events, "PodGroupPhaseChanged") if p.phase == "Completed"}
    assert completed == {
        "default/mnist", "default/spark-pi-pg", "default/podgroup-0b5e0c7a-0000-4000-8000-0000000000aa",
        "default/vcjob",  # the Volcano Job beside them, whose PodGroup the job controller keeps
    }
    assert _of(events, "JobPhaseChanged")[-1].phase == "Completed"


async def test_a_pod_naming_no_podgroup_gets_one_per_owner_as_volcanos_controller_makes_it(tmp_path: Path) -> None:
    events = await _run(tmp_path, EXAMPLE)
    by_position = {e.position: e for e in events}
    made = [e for e in events if e.type == "PodGroupCreated" and "podgroup-" in e.payload.podgroup]
    assert len(made) == 1
    group = made[0].payload
    assert group.podgroup == "default/podgroup-0b5e0c7a-0000-4000-8000-0000000000aa"  # podgroup-<ReplicaSet uid>
    assert group.manifest.spec.min_member == 1
    assert group.manifest.spec.min_resources == {"cpu": "500m", "memory": "256Mi"}
    assert [r.kind for r in group.manifest.metadata.owner_references] == ["ReplicaSet"]
    # A decision like any other: the podgroup controller made it, in answer to the pod's request.
    cause = made[0].causation
    assert cause is not None and cause.handler == "podgroup-controller"
    assert by_position[cause.position].type == "PodSubmitRequested"
    pod = next(p for p in _of(events, "PodRequested") if p.pod == "default/web-7c9f-abcde")
    assert pod.podgroup == group.podgroup
    assert pod.manifest.metadata.annotations["scheduling.k8s.io/group-name"] == "podgroup-0b5e0c7a-0000-4000-8000-0000000000aa"


def _pod(name: str, *, group: str = "", scheduler: str = "volcano", cpu: str = "1", owner_uid: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "annotations": {"eventbatch.io/sim-duration": "1m"}}
    if group:
        meta["annotations"]["scheduling.k8s.io/group-name"] = group
    if owner_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": owner_uid, "controller": True}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"schedulerName": scheduler, "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}]},
    }


async def test_a_pod_that_comes_before_its_podgroup_waits_for_it_and_refused_ones_change_nothing(tmp_path: Path) -> None:
    job = {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "metadata": {"name": "vj", "namespace": "default"},
        "spec": {"minAvailable": 1, "tasks": [{"name": "t", "replicas": 1, "template": {"metadata": {"annotations": {"eventbatch.io/sim-duration": "1m"}}, "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}}]}}}]},
    }
    group = {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup", "metadata": {"name": "late", "namespace": "default"}, "spec": {"minMember": 2}}
    raw = {
        "nodes": [{"prefix": "n", "count": 1, "allocatable": {"cpu": 8, "memory": "8Gi"}}],
        "queues": [QUEUE],
        "workload": [
            {"at": "0s", "apply": job},
            {"at": "0s", "apply": _pod("a", group="late")},
            {"at": "0s", "apply": _pod("b", group="late")},
            {"at": "0s", "apply": _pod("other", scheduler="default-scheduler")},  # not ours
            {"at": "5s", "apply": _pod("stranger", group="vj")},  # the Job's own PodGroup
            # Two replicas of one StatefulSet share podgroup-<its uid>.
            {"at": "0s", "apply": _pod("db-0", owner_uid="5e7a")},
            {"at": "0s", "apply": _pod("db-1", owner_uid="5e7a")},
            {"at": "10s", "apply": group},
            {"at": "20s", "apply": {**group, "metadata": {"name": "vj", "namespace": "default"}}},  # the Job's: refused
        ],
        "until": "10m",
    }
    events = await _run_raw(tmp_path, raw)
    assert [p.pod for p in _of(events, "PodAwaitingPodGroup")] == ["default/a", "default/b"]
    bound = _bound_at(events)
    assert bound["a"] == bound["b"] == 10_000  # they joined when their PodGroup came
    refused = {p.pod: p.reason for p in _of(events, "PodRefused")}
    assert set(refused) == {"default/other", "default/stranger"}
    assert "scheduler default-scheduler" in refused["default/other"]
    assert "belongs to job default/vj" in refused["default/stranger"]
    assert [p.reason for p in _of(events, "PodGroupRefused")] == ["podgroup default/vj belongs to job default/vj"]
    assert "other" not in bound and "stranger" not in bound
    made = [p.podgroup for p in _of(events, "PodGroupCreated") if p.podgroup.startswith("default/podgroup-")]
    assert made == ["default/podgroup-5e7a"]
    assert {p.pod: p.podgroup for p in _of(events, "PodRequested") if p.pod.startswith("default/db-")} == {
        "default/db-0": "default/podgroup-5e7a",
        "default/db-1": "default/podgroup-5e7a",
    }
    # The Job ran as before: its PodGroup was never changed by the refused request.
    assert [p.podgroup for p in _of(events, "PodGroupUpdated")] == []
    assert _of(events, "JobPhaseChanged")[-1].phase == "Completed"


async def test_a_podgroup_whose_queue_comes_later_waits_pending_for_it(tmp_path: Path) -> None:
    group = {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup", "metadata": {"name": "g", "namespace": "default"},
             "spec": {"minMember": 1, "queue": "later"}}
    raw = {
        "nodes": [{"prefix": "n", "count": 1, "allocatable": {"cpu": 4, "memory": "8Gi"}}],
        "queues": [QUEUE],
        "workload": [
            {"at": "0s", "apply": group},
            {"at": "0s", "apply": _pod("p", group="g")},
            {"at": "2m", "apply": {**QUEUE, "metadata": {"name": "later"}}},
        ],
        "until": "10m",
    }
    events = await _run_raw(tmp_path, raw)
    assert [p.podgroup for p in _of(events, "PodGroupCreated")] == ["default/g"]  # accepted: the object exists
    assert _bound_at(events) == {"p": 120_000}  # bound once its queue exists
