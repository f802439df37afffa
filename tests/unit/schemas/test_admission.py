"""Volcano's admission rules: every rule, with the exact path of the offending field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from schemas.admission import validate
from schemas.loaders import ManifestError, load_manifests
from schemas.resources import Job
from tests.unit.schemas import examples


def _container(name: str = "main", **extra: Any) -> dict:
    return {"name": name, "image": "busybox:1.36", **extra}


def base_job() -> dict:
    """A valid three-task job to break one rule at a time."""
    return {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "metadata": {"name": "train"},
        "spec": {
            "tasks": [
                {"name": "ps", "replicas": 1, "template": {"spec": {"containers": [_container()]}}},
                {"name": "worker", "replicas": 3, "template": {"spec": {"containers": [_container()]}}},
                {"name": "eval", "replicas": 1, "template": {"spec": {"containers": [_container()]}}},
            ],
        },
    }


def base_queue() -> dict:
    return yaml.safe_load(examples.QUEUE)


def base_command() -> dict:
    return yaml.safe_load(examples.COMMAND)


def base_pod_group() -> dict:
    return yaml.safe_load(examples.POD_GROUP)


def put(path: str, value: Any) -> Callable[[dict], None]:
    """A patch setting ``a.b.0.c`` (list indexes as numbers) to ``value``."""

    def patch(doc: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = doc
        for part in parents:
            node = node[part] if isinstance(part, int) or part in node else node.setdefault(part, {})
        node[last] = copy.deepcopy(value)

    return patch


def drop(path: str) -> Callable[[dict], None]:
    def patch(doc: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = doc
        for part in parents:
            node = node[part]
        del node[last]

    return patch


def both(*patches: Callable[[dict], None]) -> Callable[[dict], None]:
    def patch(doc: dict) -> None:
        for p in patches:
            p(doc)

    return patch


def rejected(doc: dict) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        load_manifests(json.dumps(doc), source="t.yaml")
    return info.value


def test_base_manifests_are_admitted():
    for doc in (base_job(), base_queue(), base_command(), base_pod_group()):
        assert len(load_manifests(json.dumps(doc))) == 1
    for text in (examples.MPI_JOB, examples.PYTORCH_JOB, examples.SPARK_JOB):
        assert len(load_manifests(text)) == 1


LONG = "a" * 64
T = "spec.tasks"
C0 = "template.spec.containers.0"

JOB_RULES = [
    # names
    ("name-missing", drop("metadata.name"), "metadata.name", "required field is missing"),
    ("name-uppercase", put("metadata.name", "Train"), "metadata.name", "not a valid name: a RFC 1123 subdomain"),
    ("name-underscore", put("metadata.name", "my_job"), "metadata.name", "not a valid name"),
    ("name-too-long", put("metadata.name", LONG), "metadata.name", "64 characters long, more than the 63"),
    ("namespace-invalid", put("metadata.namespace", "Team.A"), "metadata.namespace", "RFC 1123 label"),
    ("task-name-invalid", put(f"{T}.1.name", "Worker"), "spec.tasks[1].name", "not a valid task name"),
    ("task-name-dot", put(f"{T}.1.name", "w.1"), "spec.tasks[1].name", "RFC 1123 label"),
    ("task-name-duplicate", put(f"{T}.2.name", "ps"), "spec.tasks[2].name",
     "duplicate task name 'ps' (also spec.tasks[0])"),
    # tasks and counts
    ("no-tasks", put(f"{T}", []), "spec.tasks", "at least one task"),
    ("replicas-negative", put(f"{T}.1.replicas", -1), "spec.tasks[1].replicas", "must be >= 0"),
    ("task-min-available-negative", put(f"{T}.1.minAvailable", -1), "spec.tasks[1].minAvailable", "must be >= 0"),
    ("task-min-available-over-replicas", put(f"{T}.1.minAvailable", 4), "spec.tasks[1].minAvailable",
     "must not exceed replicas (3)"),
    ("task-max-retry-negative", put(f"{T}.0.maxRetry", -1), "spec.tasks[0].maxRetry", "must be >= 0"),
    ("min-available-negative", put("spec.minAvailable", -1), "spec.minAvailable", "must be >= 0"),
    ("min-available-over-total", put("spec.minAvailable", 6), "spec.minAvailable",
     "must not exceed the total replicas of all tasks (5)"),
    ("min-success-zero", put("spec.minSuccess", 0), "spec.minSuccess", "must be >= 1"),
    ("min-success-over-total", put("spec.minSuccess", 6), "spec.minSuccess", "must not exceed the total replicas"),
    ("max-retry-negative", put("spec.maxRetry", -1), "spec.maxRetry", "must be >= 0"),
    ("ttl-negative", put("spec.ttlSecondsAfterFinished", -1), "spec.ttlSecondsAfterFinished", "must be >= 0"),
    ("queue-invalid", put("spec.queue", "Research"), "spec.queue", "not a valid name"),
    # policies: shape
    ("policy-event-and-exit-code", put("spec.policies", [{"event": "PodFailed", "exitCode": 1, "action": "AbortJob"}]),
     "spec.policies[0]", "set either event/events or exitCode, not both"),
    ("policy-events-and-exit-code", put("spec.policies", [{"events": ["PodFailed"], "exitCode": 1, "action": "AbortJob"}]),
     "spec.policies[0]", "not both"),
    ("policy-without-trigger", put("spec.policies", [{"action": "AbortJob"}]), "spec.policies[0]",
     "needs event, events or exitCode"),
    ("policy-exit-code-zero", put("spec.policies", [{"exitCode": 0, "action": "AbortJob"}]),
     "spec.policies[0].exitCode", "must not be 0"),
    ("policy-duplicate-exit-code", put("spec.policies", [{"exitCode": 1, "action": "AbortJob"},
                                                        {"exitCode": 1, "action": "RestartJob"}]),
     "spec.policies[1].exitCode", "duplicate exitCode 1, already handled by spec.policies[0].exitCode"),
    ("policy-duplicate-event", put("spec.policies", [{"event": "PodFailed", "action": "AbortJob"},
                                                    {"events": ["PodEvicted", "PodFailed"], "action": "RestartJob"}]),
     "spec.policies[1].events[1]", "duplicate event 'PodFailed', already handled by spec.policies[0].event"),
    ("task-policy-duplicate-event", put(f"{T}.1.policies", [{"event": "TaskCompleted", "action": "CompleteJob"},
                                                           {"event": "TaskCompleted", "action": "AbortJob"}]),
     "spec.tasks[1].policies[1].event", "duplicate event 'TaskCompleted'"),
    ("any-event-not-alone", put("spec.policies", [{"event": "*", "action": "AbortJob"},
                                                 {"event": "PodFailed", "action": "RestartJob"}]),
     "spec.policies[0].event", "'*' (any event) must be the only event in the list, but PodFailed also appear"),
    ("any-event-with-others-in-events", put("spec.policies", [{"events": ["PodEvicted", "*"], "action": "AbortJob"}]),
     "spec.policies[0].events[1]", "'*' (any event) must be the only event"),
    # policies: names
    ("unknown-event", put("spec.policies", [{"event": "PodCrashed", "action": "AbortJob"}]),
     "spec.policies[0].event", "unknown event 'PodCrashed' (valid: *, PodFailed, PodEvicted, PodPending"),
    ("internal-event", put("spec.policies", [{"event": "OutOfSync", "action": "AbortJob"}]),
     "spec.policies[0].event", "event 'OutOfSync' is internal"),
    ("pod-running-event-internal", put("spec.policies", [{"events": ["PodRunning"], "action": "AbortJob"}]),
     "spec.policies[0].events[0]", "event 'PodRunning' is internal"),
    ("unknown-action", put("spec.policies", [{"event": "PodFailed", "action": "Retry"}]),
     "spec.policies[0].action", "unknown action 'Retry' (valid: AbortJob, RestartJob, RestartTask, RestartPod"),
    ("internal-action", put("spec.policies", [{"event": "PodFailed", "action": "SyncJob"}]),
     "spec.policies[0].action", "action 'SyncJob' is internal"),
    ("queue-action-in-policy", put("spec.policies", [{"exitCode": 2, "action": "CloseQueue"}]),
     "spec.policies[0].action", "action 'CloseQueue' is internal"),
    ("missing-action", put("spec.policies", [{"event": "PodFailed"}]), "spec.policies[0].action",
     "required field is missing"),
    ("timeout-not-duration", put("spec.policies", [{"event": "PodPending", "action": "AbortJob", "timeout": "10"}]),
     "spec.policies[0].timeout", "'10' is not a duration"),
    ("timeout-unit", put("spec.policies", [{"event": "PodPending", "action": "AbortJob", "timeout": "5 min"}]),
     "spec.policies[0].timeout", "not a duration"),
    ("timeout-negative", put("spec.policies", [{"event": "PodPending", "action": "AbortJob", "timeout": "-5m"}]),
     "spec.policies[0].timeout", "must not be negative"),
    # dependsOn
    ("depends-on-unknown", put(f"{T}.1.dependsOn", {"name": ["driver"]}), "spec.tasks[1].dependsOn.name[0]",
     "no task named 'driver' in this job"),
    ("depends-on-self", put(f"{T}.1.dependsOn", {"name": ["ps", "worker"]}), "spec.tasks[1].dependsOn.name[1]",
     "task 'worker' cannot depend on itself"),
    ("depends-on-empty", put(f"{T}.1.dependsOn", {"name": []}), "spec.tasks[1].dependsOn.name",
     "must name at least one task"),
    ("depends-on-iteration", put(f"{T}.1.dependsOn", {"name": ["ps"], "iteration": "some"}),
     "spec.tasks[1].dependsOn.iteration", "must be one of any, all, got 'some'"),
    ("depends-on-cycle", both(put(f"{T}.0.dependsOn", {"name": ["eval"]}), put(f"{T}.1.dependsOn", {"name": ["ps"]}),
                              put(f"{T}.2.dependsOn", {"name": ["worker"]})),
     "spec.tasks[0].dependsOn", "tasks depend on each other in a cycle: ps -> eval -> worker -> ps"),
    ("depends-on-two-cycle", both(put(f"{T}.1.dependsOn", {"name": ["eval"]}), put(f"{T}.2.dependsOn", {"name": ["worker"]})),
     "spec.tasks[1].dependsOn", "cycle: worker -> eval -> worker"),
    # plugins
    ("unknown-plugin", put("spec.plugins", {"svc": [], "horovod": []}), 'spec.plugins.horovod',
     "unknown job plugin 'horovod' (known: env, svc, ssh, pytorch, mpi, tensorflow, ray, hcclrank)"),
    ("mpi-master-missing", put("spec.plugins", {"mpi": ["--master=launcher", "--worker=worker"]}), "spec.plugins.mpi",
     "the mpi master task 'launcher' is not one of the job's tasks"),
    ("mpi-default-names", put("spec.plugins", {"mpi": []}), "spec.plugins.mpi", "the mpi master task 'master'"),
    # network topology
    ("topology-mode", put("spec.networkTopology", {"mode": "strict"}), "spec.networkTopology.mode",
     "must be one of hard, soft, got 'strict'"),
    ("topology-tier", put("spec.networkTopology", {"mode": "hard", "highestTierAllowed": 0}),
     "spec.networkTopology.highestTierAllowed", "must be >= 1"),
    # pod templates
    ("no-containers", put(f"{T}.0.template.spec.containers", []), "spec.tasks[0].template.spec.containers",
     "needs at least one container"),
    ("no-template", drop(f"{T}.0.template"), "spec.tasks[0].template.spec.containers", "needs at least one container"),
    ("container-name-missing", drop(f"{T}.0.{C0}.name"), "spec.tasks[0].template.spec.containers[0].name",
     "required field is missing"),
    ("container-name-invalid", put(f"{T}.0.{C0}.name", "Main"), "spec.tasks[0].template.spec.containers[0].name",
     "not a valid container name"),
    ("container-name-duplicate", put(f"{T}.0.template.spec.initContainers", [_container()]),
     "spec.tasks[0].template.spec.initContainers[0].name",
     "duplicate container name 'main', also spec.tasks[0].template.spec.containers[0].name"),
    ("image-missing", drop(f"{T}.2.{C0}.image"), "spec.tasks[2].template.spec.containers[0].image",
     "required field is missing"),
    ("quantity-malformed", put(f"{T}.1.{C0}.resources", {"requests": {"memory": "4GB"}}),
     "spec.tasks[1].template.spec.containers[0].resources.requests.memory", "'4GB' has unknown unit 'GB'"),
    ("quantity-malformed-gpu", put(f"{T}.1.{C0}.resources", {"limits": {"nvidia.com/gpu": "one"}}),
     'spec.tasks[1].template.spec.containers[0].resources.limits["nvidia.com/gpu"]', "not a quantity"),
    ("quantity-negative", put(f"{T}.1.{C0}.resources", {"requests": {"cpu": "-1"}}),
     "spec.tasks[1].template.spec.containers[0].resources.requests.cpu", "must not be negative"),
    ("resource-name-unqualified", put(f"{T}.1.{C0}.resources", {"limits": {"gpu": "1"}}),
     "spec.tasks[1].template.spec.containers[0].resources.limits.gpu", "unknown resource 'gpu'"),
    ("resource-name-case", put(f"{T}.1.{C0}.resources", {"requests": {"CPU": "1"}}),
     "spec.tasks[1].template.spec.containers[0].resources.requests.CPU", "unknown resource 'CPU'"),
    ("resource-name-two-slashes", put(f"{T}.1.{C0}.resources", {"requests": {"a/b/c": "1"}}),
     'spec.tasks[1].template.spec.containers[0].resources.requests["a/b/c"]', "unknown resource"),
    ("request-over-limit", put(f"{T}.1.{C0}.resources", {"requests": {"cpu": "2", "memory": "1Gi"},
                                                          "limits": {"cpu": "1500m"}}),
     "spec.tasks[1].template.spec.containers[0].resources.requests.cpu", "request 2 exceeds limit 1500m"),
    ("init-request-over-limit", put(f"{T}.1.template.spec.initContainers",
                                    [_container("init", resources={"requests": {"memory": "2Gi"},
                                                                   "limits": {"memory": "1Gi"}})]),
     "spec.tasks[1].template.spec.initContainers[0].resources.requests.memory", "request 2Gi exceeds limit 1Gi"),
    ("restart-policy", put(f"{T}.0.template.spec.restartPolicy", "Sometimes"), "spec.tasks[0].template.spec.restartPolicy",
     "must be one of Always, OnFailure, Never"),
    ("topology-policy-unknown", put(f"{T}.0.topologyPolicy", "numa"), "spec.tasks[0].topologyPolicy",
     "must be one of none, best-effort, restricted, single-numa-node"),
    ("topology-policy-not-guaranteed", both(put(f"{T}.0.topologyPolicy", "single-numa-node"),
                                            put(f"{T}.0.{C0}.resources", {"requests": {"cpu": "2"}})),
     "spec.tasks[0].template.spec.containers[0].resources", "needs a Guaranteed pod"),
    ("topology-policy-fractional-cpu", both(put(f"{T}.0.topologyPolicy", "restricted"),
                                            put(f"{T}.0.{C0}.resources", {"limits": {"cpu": "1500m", "memory": "1Gi"}})),
     "spec.tasks[0].template.spec.containers[0].resources.requests.cpu", "needs a whole number of CPUs"),
]


@pytest.mark.parametrize(("patch", "path", "reason"), [r[1:] for r in JOB_RULES], ids=[r[0] for r in JOB_RULES])
def test_job_rule(patch, path, reason):
    doc = base_job()
    patch(doc)
    err = rejected(doc)
    assert err.path == path, str(err)
    assert reason in err.reason
    assert str(err).startswith("t.yaml document 1 (Job")


def test_pod_name_length_names_the_longest_pod():
    doc = base_job()
    doc["metadata"]["name"] = "a" * 55
    err = rejected(doc)
    assert err.path == "spec.tasks[1].name"
    assert err.reason.startswith(f"pod name '{'a' * 55}-worker-2' would be 64 characters, more than 63")


@pytest.mark.parametrize(
    "patch",
    [
        put("spec.policies", [{"event": "*", "action": "AbortJob"}]),
        put("spec.policies", [{"events": ["PodFailed", "PodFailed"], "action": "RestartJob"}]),
        put("spec.policies", [{"event": "PodFailed", "events": ["PodFailed"], "action": "RestartJob"}]),
        put("spec.policies", [{"event": "PodFailed", "action": "RestartPod"}, {"exitCode": 1, "action": "RestartJob"},
                              {"exitCode": 2, "action": "AbortJob"}]),
        put("spec.policies", [{"event": "PodPending", "action": "AbortJob", "timeout": "1h30m"}]),
        both(put(f"{T}.1.policies", [{"event": "PodFailed", "action": "RestartTask"}]),
             put("spec.policies", [{"event": "PodFailed", "action": "AbortJob"}])),
        put(f"{T}.1.dependsOn", {"name": ["ps"], "iteration": "any"}),
        put(f"{T}.1.replicas", 0),
        put("spec.minSuccess", 5),
        put("spec.ttlSecondsAfterFinished", 0),
        put("spec.networkTopology", {"mode": "soft", "highestTierAllowed": 2}),
        both(put(f"{T}.0.topologyPolicy", "single-numa-node"),
             put(f"{T}.0.{C0}.resources", {"limits": {"cpu": "2", "memory": "4Gi"}})),
        put(f"{T}.0.{C0}.resources", {"requests": {"cpu": "1"}, "limits": {"cpu": "1", "memory": "1Gi"}}),
        put("spec.plugins", {"env": [], "svc": ["--publish-not-ready-addresses=false"], "ssh": []}),
        put("metadata.name", "a" * 53),
        put(f"{T}.0.{C0}.resources", {"requests": {"ephemeral-storage": "1Gi", "hugepages-2Mi": "64Mi",
                                                    "volcano.sh/gpu-memory": "1024", "nvidia.com/gpu": "500m"}}),
    ],
    ids=[
        "any-event-alone",
        "same-event-twice-in-one-policy",
        "event-and-events-overlap-in-one-policy",
        "events-and-exit-codes-mixed",
        "pending-timeout",
        "same-event-at-job-and-task-level",
        "depends-on-any",
        "zero-replicas",
        "min-success-total",
        "ttl-zero",
        "soft-topology",
        "numa-guaranteed-from-limits",
        "request-equal-limit",
        "known-plugins",
        "longest-allowed-name",
        "standard-hugepages-and-extended-resources",
    ],
)
def test_job_rule_admits(patch):
    doc = base_job()
    patch(doc)
    (job,) = load_manifests(json.dumps(doc))
    assert isinstance(job, Job)


QUEUE_RULES = [
    ("name-missing", drop("metadata.name"), "metadata.name", "required field is missing"),
    ("name-invalid", put("metadata.name", "Research"), "metadata.name", "not a valid name"),
    ("weight-negative", put("spec.weight", -1), "spec.weight", "must be a positive integer, got -1"),
    ("capability-malformed", put("spec.capability.cpu", "lots"), "spec.capability.cpu", "not a quantity"),
    ("deserved-malformed", put("spec.deserved.memory", "1GB"), "spec.deserved.memory", "unknown unit 'GB'"),
    ("guarantee-malformed", put("spec.guarantee.resource.cpu", "1.2.3"), "spec.guarantee.resource.cpu",
     "not a quantity"),
    ("capability-negative", put("spec.capability.cpu", "-1"), "spec.capability.cpu", "must not be negative"),
    ("guarantee-over-capability", put("spec.guarantee.resource.memory", "512Gi"), "spec.guarantee.resource.memory",
     "guarantee 512Gi exceeds capability 256Gi"),
    ("deserved-over-capability", put("spec.deserved.cpu", "64500m"), "spec.deserved.cpu",
     "deserved 64500m exceeds capability 64"),
    ("guarantee-over-deserved", both(put("spec.guarantee.resource.cpu", 40)), "spec.guarantee.resource.cpu",
     "guarantee 40 exceeds deserved 32"),
    ("parent-itself", put("spec.parent", "research"), "spec.parent", "cannot be its own parent"),
    ("parent-invalid", put("spec.parent", "Root"), "spec.parent", "not a valid name"),
    ("state-unknown", put("status", {"state": "Paused"}), "status.state", "must be one of Open, Closed"),
    ("hierarchy-length", put("metadata.annotations", {"volcano.sh/hierarchy": "root/sci/dev",
                                                      "volcano.sh/hierarchy-weights": "1/2"}),
     'metadata.annotations["volcano.sh/hierarchy-weights"]', "as many '/'-separated weights"),
    ("hierarchy-weight", put("metadata.annotations", {"volcano.sh/hierarchy": "root/sci",
                                                      "volcano.sh/hierarchy-weights": "1/0"}),
     'metadata.annotations["volcano.sh/hierarchy-weights"]', "weight '0' must be a number > 0"),
]


@pytest.mark.parametrize(("patch", "path", "reason"), [r[1:] for r in QUEUE_RULES], ids=[r[0] for r in QUEUE_RULES])
def test_queue_rule(patch, path, reason):
    doc = base_queue()
    patch(doc)
    err = rejected(doc)
    assert err.path == path, str(err)
    assert reason in err.reason


def test_queue_error_label_has_no_namespace():
    doc = base_queue()
    doc["spec"]["weight"] = -3
    assert str(rejected(doc)) == "t.yaml document 1 (Queue research): spec.weight: must be a positive integer, got -3"


def test_queue_capability_without_guarantee_resource_is_fine():
    doc = base_queue()
    doc["spec"]["guarantee"]["resource"]["nvidia.com/gpu"] = "2"  # capability has 8
    doc["spec"]["guarantee"]["resource"]["ephemeral-storage"] = "100Gi"  # no capability given
    (queue,) = load_manifests(json.dumps(doc))
    assert queue.spec.guarantee.resource["ephemeral-storage"] == "100Gi"


COMMAND_RULES = [
    ("action-missing", drop("action"), "action", "required field is missing"),
    ("action-unknown", put("action", "PauseJob"), "action", "unknown action 'PauseJob' for Job"),
    ("queue-action-on-job", put("action", "CloseQueue"), "action", "unknown action 'CloseQueue' for Job"),
    ("job-action-on-queue", put("target", {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "name": "q"}),
     "action", "unknown action 'AbortJob' for Queue"),
    ("target-missing", drop("target"), "target", "required field is missing"),
    ("target-kind", put("target.kind", "Deployment"), "target.kind", "must be Job or Queue"),
    ("target-name", drop("target.name"), "target.name", "required field is missing"),
    ("target-api-version-missing", drop("target.apiVersion"), "target.apiVersion", "required field is missing"),
    ("target-api-version-of-queue", put("target.apiVersion", "scheduling.volcano.sh/v1beta1"), "target.apiVersion",
     "a Job is batch.volcano.sh/v1alpha1 or batch.eventbatch.io/v1alpha1, got 'scheduling.volcano.sh/v1beta1'"),
    ("target-namespace", put("target.namespace", "ml"), "target.namespace", "unknown field"),
    ("eventbatch-only-targetObject", put("targetObject", {"kind": "Job", "name": "x"}), "targetObject", "unknown field"),
    ("name-missing", drop("metadata.name"), "metadata.name", "required field is missing"),
]


@pytest.mark.parametrize(("patch", "path", "reason"), [r[1:] for r in COMMAND_RULES], ids=[r[0] for r in COMMAND_RULES])
def test_command_rule(patch, path, reason):
    doc = base_command()
    patch(doc)
    err = rejected(doc)
    assert err.path == path, str(err)
    assert reason in err.reason


@pytest.mark.parametrize(
    ("action", "kind"),
    [(a, "Job") for a in ("AbortJob", "ResumeJob", "RestartJob", "TerminateJob", "CompleteJob")]
    + [(a, "Queue") for a in ("OpenQueue", "CloseQueue")],
)
def test_command_actions_admitted(action, kind):
    doc = base_command()
    doc["action"] = action
    api_version = "batch.volcano.sh/v1alpha1" if kind == "Job" else "scheduling.volcano.sh/v1beta1"
    doc["target"] = {"apiVersion": api_version, "kind": kind, "name": "research"}
    (command,) = load_manifests(json.dumps(doc))
    assert command.action == action


def test_command_with_generate_name_only():
    doc = base_command()
    del doc["metadata"]["name"]
    doc["metadata"]["generateName"] = "abort-"
    (command,) = load_manifests(json.dumps(doc))
    assert command.metadata.generate_name == "abort-"


POD_GROUP_RULES = [
    ("min-member", put("spec.minMember", -1), "spec.minMember", "must be >= 0"),
    ("min-task-member", put("spec.minTaskMember.mpiworker", -2), "spec.minTaskMember.mpiworker", "must be >= 0"),
    ("min-resources", put("spec.minResources.cpu", "two"), "spec.minResources.cpu", "not a quantity"),
    ("name", put("metadata.name", "PG"), "metadata.name", "not a valid name"),
]


@pytest.mark.parametrize(("patch", "path", "reason"), [r[1:] for r in POD_GROUP_RULES],
                         ids=[r[0] for r in POD_GROUP_RULES])
def test_pod_group_rule(patch, path, reason):
    doc = base_pod_group()
    patch(doc)
    err = rejected(doc)
    assert err.path == path, str(err)
    assert reason in err.reason


def test_validate_reports_every_violation_in_field_order():
    doc = base_job()
    put("spec.maxRetry", -1)(doc)
    put(f"{T}.1.replicas", -1)(doc)
    put("spec.policies", [{"event": "Nope", "action": "AbortJob"}])(doc)
    (job,) = load_manifests(json.dumps(doc), admission=False)
    assert [v.path for v in validate(job)] == ["spec.maxRetry", "spec.tasks[1].replicas", "spec.policies[0].event"]


def test_validate_unknown_type():
    with pytest.raises(TypeError):
        validate(object())
