"""What the controller asks the actuator and the scheduler for: PodGroup, pods, plugin resources."""

from __future__ import annotations

import json

from schemas.events import (
    PodGroupCreated,
    PodGroupPhaseChanged,
    PodRequested,
    PriorityClassAdded,
)
from tests.unit.job.driver import Loop, job_from_yaml, of, requested
from tests.unit.job.manifests import job, task

PRIORITISED = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: job, namespace: team-a, uid: 3f1c}
spec:
  minAvailable: 3
  queue: research
  priorityClassName: high
  volumes:
  - {mountPath: /data, volumeClaimName: dataset}
  tasks:
  - name: small
    replicas: 2
    minAvailable: 1
    template:
      spec:
        containers: [{name: c, image: x, resources: {requests: {cpu: 500m, memory: 1Gi}}}]
  - name: big
    replicas: 2
    minAvailable: 1
    template:
      metadata: {labels: {team: a}}
      spec:
        priorityClassName: urgent
        containers: [{name: c, image: x, resources: {requests: {cpu: "4", memory: 8Gi}}}]
"""


def _prioritised() -> tuple[Loop, list]:
    loop = Loop()
    loop.feed(PriorityClassAdded(name="high", value=100))
    loop.feed(PriorityClassAdded(name="urgent", value=1000))
    return loop, loop.submit(job_from_yaml(PRIORITISED))


def test_podgroup_carries_the_gang_queue_priority_and_minimum_resources():
    _, out = _prioritised()
    (group,) = of(out, PodGroupCreated)
    spec = group.manifest.spec
    assert group.podgroup == "team-a/job-3f1c"
    assert (spec.min_member, spec.min_task_member, spec.queue, spec.priority_class_name) == (
        3, {"small": 1, "big": 1}, "research", "high")
    # one of each task's own minimum, then the higher-priority task fills the rest: big x2 + small x1
    assert group.min_resources == {"cpu": 8500, "memory": 17 * 2**30, "pods": 3}
    assert spec.min_resources == {"cpu": "8500m", "memory": "17Gi", "pods": "3"}


def test_pod_manifest_names_labels_owner_priority_and_volumes():
    loop, _ = _prioritised()
    pods = {p.pod: p for p in of(loop.enqueue("team-a/job"), PodRequested)}
    assert list(pods) == ["team-a/job-small-0", "team-a/job-small-1", "team-a/job-big-0", "team-a/job-big-1"]
    big = pods["team-a/job-big-1"]
    meta, spec = big.manifest.metadata, big.manifest.spec
    assert (meta.name, meta.namespace) == ("job-big-1", "team-a")
    assert meta.labels == {
        "team": "a",
        "volcano.sh/job-name": "job",
        "volcano.sh/job-namespace": "team-a",
        "volcano.sh/task-spec": "big",
        "volcano.sh/queue-name": "research",
        "volcano.sh/task-index": "1",
        "volcano.sh/job-version": "0",
    }
    assert meta.annotations["scheduling.k8s.io/group-name"] == "job-3f1c"
    (owner,) = meta.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Job", "job", "3f1c", True)
    assert spec.scheduler_name == "eventbatch"
    assert (spec.priority_class_name, spec.priority, big.priority) == ("urgent", 1000, 1000)
    assert pods["team-a/job-small-0"].priority == 100  # inherits the job's class
    assert big.requests == {"cpu": 4000, "memory": 8 * 2**30, "pods": 1}
    assert {"name": "dataset", "persistentVolumeClaim": {"claimName": "dataset"}} in spec.volumes
    assert {"name": "dataset", "mountPath": "/data"} in spec.containers[0].volume_mounts


def test_no_pod_before_the_podgroup_is_inqueue_and_none_after_it_falls_back_to_pending():
    loop = Loop()
    assert requested(loop.submit(job(minAvailable=2))) == []
    podgroup = loop.job().podgroup
    assert requested(loop.feed(PodGroupPhaseChanged(podgroup=podgroup, phase="Pending"))) == []
    assert requested(loop.feed(PodGroupPhaseChanged(podgroup=podgroup, phase="Inqueue"))) == [
        "default/job-worker-0", "default/job-worker-1"]


def test_depends_on_any_is_released_by_either_task():
    tasks = [task("a", 1), task("b", 1), task("c", 1, dependsOn={"name": ["a", "b"], "iteration": "any"})]
    loop = Loop()
    loop.submit(job(tasks=tasks, minAvailable=1))
    assert requested(loop.enqueue()) == ["default/job-a-0", "default/job-b-0"]
    assert requested(loop.run("default/job-b-0")) == ["default/job-c-0"]


def test_depends_on_all_waits_for_every_task():
    tasks = [task("a", 1), task("b", 1), task("c", 1, dependsOn={"name": ["a", "b"]})]
    loop = Loop()
    loop.submit(job(tasks=tasks, minAvailable=1))
    loop.enqueue()
    assert requested(loop.run("default/job-b-0")) == []
    loop.run("default/job-a-0", ready=False)
    assert requested(loop.succeed("default/job-a-0")) == ["default/job-c-0"]  # Succeeded counts too


TENSORFLOW = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: tf}
spec:
  plugins: {tensorflow: ["--port=2222"]}
  tasks:
  - name: ps
    replicas: 1
    template: {spec: {containers: [{name: c, image: tf}]}}
  - name: worker
    replicas: 2
    template: {spec: {containers: [{name: c, image: tf}]}}
"""


def test_tensorflow_plugin_writes_tf_config_and_implies_svc():
    loop = Loop()
    loop.submit(job_from_yaml(TENSORFLOW))
    pods = {p.pod: p for p in of(loop.enqueue("default/tf"), PodRequested)}
    env = {e["name"]: e["value"] for e in pods["default/tf-worker-1"].manifest.spec.containers[0].env}
    assert json.loads(env["TF_CONFIG"]) == {
        "cluster": {"ps": ["tf-ps-0.tf:2222"], "worker": ["tf-worker-0.tf:2222", "tf-worker-1.tf:2222"]},
        "task": {"type": "worker", "index": 1},
    }
    assert env["VC_WORKER_NUM"] == "2"
    assert pods["default/tf-worker-1"].manifest.spec.subdomain == "tf"


def test_the_jobs_annotations_travel_to_its_podgroup() -> None:
    loop = Loop()
    manifest = job_from_yaml(
        """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata:
  name: job
  annotations: {eventbatch.io/data-locality: "labels=dataset=imagenet", volcano.sh/task-topology-affinity: "ps,worker"}
spec:
  tasks:
  - name: ps
    replicas: 1
    template: {spec: {containers: [{name: c, image: x}]}}
  - name: worker
    replicas: 2
    dependsOn: {name: [ps]}
    template: {spec: {containers: [{name: c, image: x}]}}
"""
    )
    (group,) = of(loop.submit(manifest), PodGroupCreated)
    assert group.manifest.metadata.annotations == {
        "eventbatch.io/data-locality": "labels=dataset=imagenet",
        "volcano.sh/task-topology-affinity": "ps,worker",
        "eventbatch.io/dependent-tasks": "worker",
    }
