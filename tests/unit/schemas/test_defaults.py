"""Volcano's defaulting, applied by the loader between decoding and admission."""

from __future__ import annotations

import json

import msgspec
import pytest
import yaml

from schemas.defaults import SCHEDULER_NAME, apply_defaults
from schemas.loaders import load_manifests
from schemas.resources import Job, Queue
from tests.unit.schemas import examples


def job_doc(**spec) -> dict:
    tasks = spec.pop(
        "tasks",
        [
            {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
            {"name": "worker", "replicas": 3, "minAvailable": 1,
             "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
        ],
    )
    return {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"tasks": tasks, **spec},
    }


def load_job(doc: dict) -> Job:
    (job,) = load_manifests(json.dumps(doc))
    return job


def test_job_defaults_fill_what_volcano_fills():
    job = load_job(job_doc())
    assert job.metadata.namespace == "default"
    assert job.spec.queue == "default"
    assert job.spec.max_retry == 3
    assert job.spec.scheduler_name == SCHEDULER_NAME == "eventbatch"
    assert [t.name for t in job.spec.tasks] == ["default0", "worker"]
    assert [t.min_available for t in job.spec.tasks] == [2, 1]
    assert [t.max_retry for t in job.spec.tasks] == [3, 3]
    assert job.spec.min_available == 3, "sum of the tasks' minAvailable"


@pytest.mark.parametrize(
    ("spec", "field", "expected"),
    [
        ({"queue": "research"}, "queue", "research"),
        ({"maxRetry": 7}, "max_retry", 7),
        ({"maxRetry": 0}, "max_retry", 3),
        ({"schedulerName": "volcano"}, "scheduler_name", "volcano"),
        ({"minAvailable": 4}, "min_available", 4),
        ({"minAvailable": 0}, "min_available", 3),
    ],
    ids=["queue-kept", "max-retry-kept", "max-retry-zero-defaulted", "volcano-scheduler-kept",
         "min-available-kept", "min-available-zero-defaulted"],
)
def test_job_values_written_by_the_user(spec, field, expected):
    job = load_job(job_doc(**spec))
    assert getattr(job.spec, field) == expected


def test_task_min_available_zero_is_kept_and_counts_as_zero():
    doc = job_doc()
    doc["spec"]["tasks"][0]["minAvailable"] = 0
    job = load_job(doc)
    assert job.spec.tasks[0].min_available == 0
    assert job.spec.min_available == 1


def test_namespace_kept():
    doc = job_doc()
    doc["metadata"]["namespace"] = "team-a"
    assert load_job(doc).metadata.namespace == "team-a"


@pytest.mark.parametrize(
    ("plugins", "expected"),
    [
        ({"mpi": []}, {"mpi": [], "svc": [], "ssh": []}),
        ({"tensorflow": []}, {"tensorflow": [], "svc": []}),
        ({"pytorch": ["--port=1234"]}, {"pytorch": ["--port=1234"], "svc": []}),
        ({"svc": ["--disable-network-policy=true"], "mpi": []},
         {"svc": ["--disable-network-policy=true"], "mpi": [], "ssh": []}),
        ({"env": []}, {"env": []}),
        ({}, {}),
    ],
    ids=["mpi-adds-svc-ssh", "tensorflow-adds-svc", "pytorch-adds-svc", "svc-args-kept", "env-alone", "none"],
)
def test_framework_plugins_bring_their_dependencies(plugins, expected):
    doc = job_doc(plugins=plugins)
    if "mpi" in plugins:
        doc["spec"]["tasks"][0]["name"] = "master"
    assert load_job(doc).spec.plugins == expected


def test_host_network_gets_cluster_first_with_host_net():
    doc = job_doc()
    doc["spec"]["tasks"][0]["template"]["spec"]["hostNetwork"] = True
    doc["spec"]["tasks"][1]["template"]["spec"].update(hostNetwork=True, dnsPolicy="Default")
    job = load_job(doc)
    assert job.spec.tasks[0].template.spec.extra["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert job.spec.tasks[1].template.spec.extra["dnsPolicy"] == "Default"


def test_defaults_come_before_admission():
    # Unset task minAvailable becomes replicas, then the job minAvailable
    # check sees the defaulted sum and admits it.
    doc = job_doc(tasks=[{"name": "t", "replicas": 4, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}])
    assert load_job(doc).spec.min_available == 4


def test_admission_false_returns_what_was_written():
    (job,) = load_manifests(json.dumps(job_doc()), admission=False)
    assert job.spec.queue == "" and job.spec.tasks[0].name == "" and job.spec.tasks[0].min_available is None


def test_apply_defaults_is_pure_and_idempotent():
    (raw,) = load_manifests(examples.SPARK_JOB, admission=False)
    once = apply_defaults(raw)
    assert raw.spec.max_retry == 0, "the argument is untouched"
    assert apply_defaults(once) == once


@pytest.mark.parametrize(
    ("spec", "weight", "reclaimable"),
    [({}, 1, True), ({"weight": 0}, 1, True), ({"weight": 5, "reclaimable": False}, 5, False),
     ({"reclaimable": True}, 1, True)],
    ids=["empty", "weight-zero", "both-kept", "reclaimable-kept"],
)
def test_queue_defaults(spec, weight, reclaimable):
    doc = {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": "q"}, "spec": spec}
    (queue,) = load_manifests(json.dumps(doc))
    assert isinstance(queue, Queue)
    assert (queue.spec.weight, queue.spec.reclaimable) == (weight, reclaimable)
    assert queue.metadata.namespace == "", "queues are cluster-scoped"


def test_command_and_pod_group_defaults():
    doc = yaml.safe_load(examples.COMMAND)
    del doc["metadata"]["namespace"]
    (command,) = load_manifests(json.dumps(doc))
    assert command.metadata.namespace == "default"
    doc = yaml.safe_load(examples.POD_GROUP)
    del doc["spec"]["queue"]
    (group,) = load_manifests(json.dumps(doc))
    assert (group.metadata.namespace, group.spec.queue) == ("default", "default")


def test_command_target_is_kept_as_volcano_writes_it():
    """The owner reference vcctl writes (uid, controller, blockOwnerDeletion) is accepted and kept whole."""
    doc = yaml.safe_load(examples.COMMAND)
    target = {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "name": "research",
              "uid": "0b7b5a1e-5f0c-4e0b-9a59-4c1f7f4f3a10", "controller": True, "blockOwnerDeletion": True}
    doc.update(action="CloseQueue", target=target)
    (command,) = load_manifests(json.dumps(doc))
    assert msgspec.to_builtins(command)["target"] == target
