"""Volcano's admission rules for Job, Queue, Command and PodGroup objects.

Where it sits: the last gate at the edge, after decoding (``schemas.decode``)
and defaulting (``schemas.defaults``); ``schemas.loaders`` turns the first
violation into a ``ManifestError``. The rules are the ones Volcano's
validating webhooks enforce, plus the pod-template checks Kubernetes would
apply when the job's pods are created, so that a job that could never run is
refused before anything reaches the log.

Every function returns a list of ``Violation(path, reason)`` with the path in
the object's own field names (``spec.tasks[1].minAvailable``), empty when the
object is admissible. Pod-template, policy and name checks live in
``schemas.admission_rules`` so this module stays the per-kind overview.

Beyond Volcano's own rules, a job has at most ``MAX_PODS_PER_JOB`` pods
(each task's replicas and all of them together), and every name that names
another object (a Command's ``target``, a queue's parent, a priority
class, a node) is checked like that object's own name (``docs/limits.md``).
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

from schemas.admission_rules import (
    JOB_ACTIONS,
    QUEUE_ACTIONS,
    Checker,
    Path,
    check_dependencies,
    check_metadata,
    check_name,
    check_plugins,
    check_policies,
    check_quantities,
    check_template,
)
from schemas.admission_rules import Violation as Violation
from schemas.limits import MAX_PODS_PER_JOB
from schemas.quantity import format_quantity
from schemas.resources import Command, Job, Pod, PodGroup, Queue

__all__ = ["Violation", "validate", "validate_command", "validate_job", "validate_pod_group", "validate_queue"]

_TOPOLOGY_MODES = ("hard", "soft")
_QUEUE_STATES = ("Open", "Closed")
_HIERARCHY = "volcano.sh/hierarchy"
_HIERARCHY_WEIGHTS = "volcano.sh/hierarchy-weights"
# A pod is named "<job>-<task>-<index>"; Volcano keeps it a valid hostname.
_MAX_POD_NAME = 63
# The part of generateName a generated name keeps, as the API server's (63 - 5).
_MAX_GENERATED_PREFIX = 58
# The API versions a Command's ``target`` may name, by kind: Volcano's and the
# project's own group. Volcano's controllers ignore a Command whose target has
# any other apiVersion, so such a Command is refused here rather than kept for
# nothing.
TARGET_API_VERSIONS: dict[str, tuple[str, ...]] = {
    "Job": ("batch.volcano.sh/v1alpha1", "batch.eventbatch.io/v1alpha1"),
    "Queue": ("scheduling.volcano.sh/v1beta1", "scheduling.eventbatch.io/v1beta1"),
}


@singledispatch
def validate(obj: Any) -> list[Violation]:
    """Every admission rule ``obj`` breaks, in field order."""
    raise TypeError(f"no admission rules for {type(obj).__name__}")


@validate.register
def validate_job(job: Job) -> list[Violation]:
    c = Checker()
    meta, spec = job.metadata, job.spec
    if meta.name or not meta.generate_name:
        check_name(c, ("metadata", "name"), meta.name, subdomain=True, max_length=_MAX_POD_NAME)
    elif not check_name(Checker(), (), f"{meta.generate_name[:_MAX_GENERATED_PREFIX]}x", subdomain=True):
        # the job controller names the job <prefix (at most 58 characters)><5 characters>
        c.add(("metadata", "generateName"), f"{meta.generate_name!r} cannot start a job name: a name has only "
              "lowercase letters, digits, '-' and '.', and starts with a letter or digit")
    if meta.namespace:
        check_name(c, ("metadata", "namespace"), meta.namespace)
    check_metadata(c, meta)
    c.at_least(("spec", "minAvailable"), spec.min_available, 0)
    c.at_least(("spec", "maxRetry"), spec.max_retry, 0)
    if spec.ttl_seconds_after_finished is not None:
        c.at_least(("spec", "ttlSecondsAfterFinished"), spec.ttl_seconds_after_finished, 0)
    if spec.queue:
        check_name(c, ("spec", "queue"), spec.queue, subdomain=True)
    if spec.priority_class_name:
        check_name(c, ("spec", "priorityClassName"), spec.priority_class_name, subdomain=True)
    if not spec.tasks:
        c.add(("spec", "tasks"), "a job needs at least one task")
    total = _check_tasks(c, job)
    if total > MAX_PODS_PER_JOB:
        c.add(("spec", "tasks"), f"{total} replicas in all, more than the {MAX_PODS_PER_JOB} pods a job may have")
    if spec.tasks and spec.min_available > total:
        c.add(("spec", "minAvailable"), f"must not exceed the total replicas of all tasks ({total})")
    if spec.min_success is not None:
        if spec.min_success < 1:
            c.add(("spec", "minSuccess"), "must be >= 1")
        elif spec.tasks and spec.min_success > total:
            c.add(("spec", "minSuccess"), f"must not exceed the total replicas of all tasks ({total})")
    check_policies(c, ("spec", "policies"), spec.policies)
    check_plugins(c, ("spec", "plugins"), spec.plugins, [t.name for t in spec.tasks])
    check_dependencies(c, spec.tasks)
    if spec.network_topology is not None:
        _check_network_topology(c, ("spec", "networkTopology"), spec.network_topology)
    return c.violations


def _check_tasks(c: Checker, job: Job) -> int:
    """Check every task; the total number of replicas."""
    total = 0
    first_index: dict[str, int] = {}
    for i, task in enumerate(job.spec.tasks):
        at: Path = ("spec", "tasks", i)
        if check_name(c, (*at, "name"), task.name, what="task name"):
            pod = f"{job.metadata.name}-{task.name}-{max(task.replicas - 1, 0)}"
            if job.metadata.name and len(pod) > _MAX_POD_NAME:
                c.add(
                    (*at, "name"),
                    f"pod name {pod!r} would be {len(pod)} characters, more than {_MAX_POD_NAME}; "
                    "shorten the job or task name",
                )
        if task.name in first_index:
            c.add((*at, "name"), f"duplicate task name {task.name!r} (also spec.tasks[{first_index[task.name]}])")
        else:
            first_index[task.name] = i
        c.at_least((*at, "replicas"), task.replicas, 0)
        if task.replicas > MAX_PODS_PER_JOB:
            c.add((*at, "replicas"), f"{task.replicas} is more than the {MAX_PODS_PER_JOB} pods a job may have")
        if task.min_available is not None:
            if task.min_available < 0:
                c.add((*at, "minAvailable"), "must be >= 0")
            elif task.min_available > task.replicas:
                c.add((*at, "minAvailable"), f"must not exceed replicas ({task.replicas})")
        c.at_least((*at, "maxRetry"), task.max_retry, 0)
        check_policies(c, (*at, "policies"), task.policies)
        check_template(c, (*at, "template"), task.template, topology_policy=task.topology_policy, task_at=at)
        total += max(task.replicas, 0)
    return total


def _check_network_topology(c: Checker, at: Path, topology: Any) -> None:
    if topology.mode not in _TOPOLOGY_MODES:
        c.add((*at, "mode"), f"must be one of {', '.join(_TOPOLOGY_MODES)}, got {topology.mode!r}")
    if topology.highest_tier_allowed is not None and topology.highest_tier_allowed < 1:
        c.add((*at, "highestTierAllowed"), "must be >= 1")


@validate.register
def validate_queue(queue: Queue) -> list[Violation]:
    c = Checker()
    meta, spec = queue.metadata, queue.spec
    check_name(c, ("metadata", "name"), meta.name, subdomain=True)
    check_metadata(c, meta)
    if spec.weight < 1:
        c.add(("spec", "weight"), f"must be a positive integer, got {spec.weight}")
    capability = check_quantities(c, ("spec", "capability"), spec.capability)
    deserved = check_quantities(c, ("spec", "deserved"), spec.deserved)
    guarantee = check_quantities(c, ("spec", "guarantee", "resource"), spec.guarantee.resource)
    _not_above(c, ("spec", "guarantee", "resource"), guarantee, "guarantee", capability, "capability")
    _not_above(c, ("spec", "deserved"), deserved, "deserved", capability, "capability")
    _not_above(c, ("spec", "guarantee", "resource"), guarantee, "guarantee", deserved, "deserved")
    if spec.parent:
        if spec.parent == meta.name:
            c.add(("spec", "parent"), "a queue cannot be its own parent")
        else:
            check_name(c, ("spec", "parent"), spec.parent, subdomain=True)
    if queue.status is not None and queue.status.state and queue.status.state not in _QUEUE_STATES:
        c.add(("status", "state"), f"must be one of {', '.join(_QUEUE_STATES)}, got {queue.status.state!r}")
    _check_hierarchy(c, meta.annotations)
    return c.violations


def _not_above(c: Checker, at: Path, low: dict[str, int], low_name: str, high: dict[str, int], high_name: str) -> None:
    for name, amount in low.items():
        if name in high and amount > high[name]:
            c.add(
                (*at, name),
                f"{low_name} {format_quantity(amount, name)} exceeds {high_name} {format_quantity(high[name], name)}",
            )


def _check_hierarchy(c: Checker, annotations: dict[str, str]) -> None:
    hierarchy, weights = annotations.get(_HIERARCHY, ""), annotations.get(_HIERARCHY_WEIGHTS, "")
    if not hierarchy and not weights:
        return
    at: Path = ("metadata", "annotations", _HIERARCHY_WEIGHTS)
    parts, weight_parts = hierarchy.split("/"), weights.split("/")
    if len(parts) != len(weight_parts):
        c.add(at, f"must have as many '/'-separated weights as {_HIERARCHY} has levels ({len(parts)})")
        return
    for weight in weight_parts:
        try:
            ok = float(weight) > 0
        except ValueError:
            ok = False
        if not ok:
            c.add(at, f"weight {weight!r} must be a number > 0")
            return


@validate.register
def validate_command(command: Command) -> list[Violation]:
    c = Checker()
    meta = command.metadata
    if meta.name or not meta.generate_name:
        check_name(c, ("metadata", "name"), meta.name, subdomain=True)
    if meta.namespace:
        check_name(c, ("metadata", "namespace"), meta.namespace)
    check_metadata(c, meta)
    target = command.target_object
    if target is None:
        c.add(("target",), "required field is missing")
        allowed = JOB_ACTIONS + QUEUE_ACTIONS
    else:
        if target.kind not in TARGET_API_VERSIONS:
            c.add(("target", "kind"), f"must be Job or Queue, got {target.kind!r}")
        elif target.api_version not in TARGET_API_VERSIONS[target.kind]:
            c.add(("target", "apiVersion"), f"a {target.kind} is {' or '.join(TARGET_API_VERSIONS[target.kind])}, "
                  f"got {target.api_version!r}")
        if target.kind == "Queue":
            check_name(c, ("target", "name"), target.name, subdomain=True, what="queue name")
        else:
            check_name(c, ("target", "name"), target.name, subdomain=True, max_length=_MAX_POD_NAME,
                       what="job name")
        allowed = QUEUE_ACTIONS if target.kind == "Queue" else JOB_ACTIONS
    if not command.action:
        c.add(("action",), "required field is missing")
    elif command.action not in allowed:
        kind = target.kind if target is not None and target.kind in TARGET_API_VERSIONS else "a Job or Queue"
        c.add(("action",), f"unknown action {command.action!r} for {kind} (valid: {', '.join(allowed)})")
    return c.violations


@validate.register
def validate_pod_group(group: PodGroup) -> list[Violation]:
    c = Checker()
    spec = group.spec
    check_name(c, ("metadata", "name"), group.metadata.name, subdomain=True)
    if group.metadata.namespace:
        check_name(c, ("metadata", "namespace"), group.metadata.namespace)
    check_metadata(c, group.metadata)
    c.at_least(("spec", "minMember"), spec.min_member, 0)
    if spec.min_member > MAX_PODS_PER_JOB:
        c.add(("spec", "minMember"), f"{spec.min_member} is more than the {MAX_PODS_PER_JOB} pods a job may have")
    if spec.queue:
        check_name(c, ("spec", "queue"), spec.queue, subdomain=True)
    if spec.priority_class_name:
        check_name(c, ("spec", "priorityClassName"), spec.priority_class_name, subdomain=True)
    for task, count in spec.min_task_member.items():
        c.at_least(("spec", "minTaskMember", task), count, 0)
    check_quantities(c, ("spec", "minResources"), spec.min_resources)
    if spec.network_topology is not None:
        _check_network_topology(c, ("spec", "networkTopology"), spec.network_topology)
    return c.violations


@validate.register
def validate_pod(pod: Pod) -> list[Violation]:
    """A plain pod (``v1`` Pod) handed to the scheduler: its name, metadata and requests."""
    c = Checker()
    check_name(c, ("metadata", "name"), pod.metadata.name, subdomain=True)
    if pod.metadata.namespace:
        check_name(c, ("metadata", "namespace"), pod.metadata.namespace)
    check_metadata(c, pod.metadata)
    if not pod.spec.containers:
        c.add(("spec", "containers"), "a pod needs at least one container")
    for i, container in enumerate(pod.spec.containers):
        check_quantities(c, ("spec", "containers", i, "resources", "requests"), container.resources.requests)
    if pod.spec.priority_class_name:
        check_name(c, ("spec", "priorityClassName"), pod.spec.priority_class_name, subdomain=True)
    return c.violations
