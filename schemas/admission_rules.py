"""The individual admission checks that ``schemas.admission`` combines per kind.

Where it sits: inside the edge's admission step. Each ``check_*`` function
appends ``Violation``s to a ``Checker`` and never raises, so one pass reports
everything wrong with a manifest, each with its exact field path.

Names: object names follow Kubernetes' RFC 1123 rules (a *label* is at most 63
lowercase letters, digits and ``-``; a *subdomain* is dot-separated labels, at
most 253 characters); label keys, label values and annotations follow
Kubernetes' rules too (``check_metadata``: a value at most 63 characters, all
annotations together at most 256 KiB; ``schemas.limits``). Policies: the events and actions a lifecycle policy may
name are those Volcano lets users write; the internal ones (``OutOfSync``,
``SyncJob``...) are refused with a message saying so.
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from schemas.decode import format_path
from schemas.limits import MAX_ANNOTATIONS_BYTES, MAX_LABEL, MAX_QUANTITY_CHARS, size
from schemas.quantity import QuantityError, format_quantity, parse_duration, parse_quantity
from schemas.resources import Container, LifecyclePolicy, ObjectMeta, PodTemplateSpec, TaskSpec

Path = tuple[str | int, ...]

POLICY_EVENTS = ("*", "PodFailed", "PodEvicted", "PodPending", "Unknown", "TaskCompleted", "TaskFailed", "JobUpdated")
INTERNAL_EVENTS = ("PodRunning", "OutOfSync", "CommandIssued")
POLICY_ACTIONS = ("AbortJob", "RestartJob", "RestartTask", "RestartPod", "TerminateJob", "CompleteJob", "ResumeJob")
INTERNAL_ACTIONS = ("SyncJob", "EnqueueJob", "SyncQueue", "OpenQueue", "CloseQueue")
JOB_ACTIONS: tuple[str, ...] = ("AbortJob", "ResumeJob", "RestartJob", "TerminateJob", "CompleteJob")
QUEUE_ACTIONS: tuple[str, ...] = ("OpenQueue", "CloseQueue")
PLUGINS = ("env", "svc", "ssh", "pytorch", "mpi", "tensorflow", "ray", "hcclrank")
TOPOLOGY_POLICIES = ("none", "best-effort", "restricted", "single-numa-node")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
ITERATIONS = ("any", "all")


class Violation(NamedTuple):
    """One broken rule: where (``spec.tasks[1].replicas``) and why."""

    path: str
    reason: str


class Checker:
    """Collects violations in the order the checks find them."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def add(self, at: Path, reason: str) -> None:
        self.violations.append(Violation(format_path(at), reason))

    def at_least(self, at: Path, value: int, low: int) -> None:
        if value < low:
            self.add(at, f"must be >= {low}")


# --- names -------------------------------------------------------------------

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def check_name(
    c: Checker,
    at: Path,
    name: str,
    *,
    subdomain: bool = False,
    max_length: int | None = None,
    what: str = "name",
) -> bool:
    """Check an RFC 1123 label (or subdomain) name; whether it is valid."""
    if not name:
        c.add(at, "required field is missing")
        return False
    limit = 253 if subdomain else 63
    if max_length is not None:
        limit = min(limit, max_length)
    pattern, kind = (_SUBDOMAIN, "RFC 1123 subdomain") if subdomain else (_LABEL, "RFC 1123 label")
    if len(name) > limit:
        c.add(at, f"{_shown(name)} is {len(name)} characters long, more than the {limit} allowed for a {what}")
        return False
    if not pattern.fullmatch(name):
        allowed = "lowercase letters, digits, '-' and '.'" if subdomain else "lowercase letters, digits and '-'"
        c.add(
            at,
            f"{name!r} is not a valid {what}: a {kind} has only {allowed}, "
            "and starts and ends with a letter or digit",
        )
        return False
    return True


def _shown(text: str) -> str:
    """``text`` quoted, or its start when it is long."""
    return repr(text) if len(text) <= 80 else f"{text[:40]!r}..."


def name_problem(name: str, *, subdomain: bool = False, max_length: int | None = None, what: str = "name") -> str:
    """Why ``name`` is no RFC 1123 label (or subdomain), or ""."""
    c = Checker()
    check_name(c, (), name, subdomain=subdomain, max_length=max_length, what=what)
    return c.violations[0].reason if c.violations else ""


# --- labels and annotations ---------------------------------------------------------

_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def check_label_key(c: Checker, at: Path, key: str, what: str = "label key") -> bool:
    """A Kubernetes qualified name: ``[prefix/]name``, the prefix a subdomain, the name at most 63 characters."""
    prefix, slash, name = key.rpartition("/")
    if slash and not check_name(c, at, prefix, subdomain=True, what=f"{what} prefix"):
        return False
    if not name or len(name) > MAX_LABEL or not _QUALIFIED.fullmatch(name):
        c.add(
            at,
            f"{_shown(key)} is not a valid {what}: the name part has at most {MAX_LABEL} letters, digits, "
            "'-', '_' or '.', and starts and ends with a letter or digit",
        )
        return False
    return True


def check_label_value(c: Checker, at: Path, value: str) -> bool:
    if len(value) > MAX_LABEL:
        c.add(at, f"a label value of {len(value)} characters, more than the {MAX_LABEL} allowed")
        return False
    if value and not _QUALIFIED.fullmatch(value):
        c.add(
            at,
            f"{_shown(value)} is not a valid label value: letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit",
        )
        return False
    return True


def check_labels(c: Checker, at: Path, labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        if check_label_key(c, (*at, key), key):
            check_label_value(c, (*at, key), value)


def check_metadata(c: Checker, meta: ObjectMeta, at: Path = ("metadata",)) -> None:
    """Labels and annotations as Kubernetes' API server checks them."""
    check_labels(c, (*at, "labels"), meta.labels)
    total = 0
    for key, value in meta.annotations.items():
        check_label_key(c, (*at, "annotations", key), key, what="annotation key")
        total += len(key.encode("utf-8", "replace")) + len(value.encode("utf-8", "replace"))
    if total > MAX_ANNOTATIONS_BYTES:
        c.add(
            (*at, "annotations"),
            f"annotations are {total} bytes in all, more than the {size(MAX_ANNOTATIONS_BYTES)} allowed",
        )


# --- quantities --------------------------------------------------------------


_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _container_resource_name(name: str) -> bool:
    """What a container may request: the standard names, hugepages, or a domain-qualified extended resource."""
    if name in _CONTAINER_RESOURCES or name.startswith("hugepages-"):
        return True
    domain, slash, short = name.partition("/")
    return bool(slash and domain and short and "/" not in short)


def check_quantities(
    c: Checker, at: Path, quantities: Mapping[str, str], *, container: bool = False
) -> dict[str, int]:
    """Parse ``{resource: quantity}``; the amounts that parsed and are not negative.

    ``container=True`` also checks the names a container may request, so a
    ``gpu: 1`` meant as ``nvidia.com/gpu`` is caught here, not left pending.
    """
    out: dict[str, int] = {}
    for name, text in quantities.items():
        if len(text) > MAX_QUANTITY_CHARS:
            c.add(
                (*at, name),
                f"a quantity of {len(text)} characters, more than the {MAX_QUANTITY_CHARS} allowed",
            )
            continue
        if container and not _container_resource_name(name):
            c.add(
                (*at, name),
                f"unknown resource {name!r}: use cpu, memory, ephemeral-storage, hugepages-<size>, "
                "or a domain-qualified name such as nvidia.com/gpu",
            )
            continue
        try:
            amount = parse_quantity(text, name)
        except QuantityError as exc:
            c.add((*at, name), str(exc))
            continue
        if amount < 0:
            c.add((*at, name), f"must not be negative, got {text!r}")
            continue
        out[name] = amount
    return out


# --- lifecycle policies ---------------------------------------------------------


def _check_action(c: Checker, at: Path, action: str) -> None:
    if not action:
        c.add(at, "required field is missing")
    elif action in INTERNAL_ACTIONS:
        c.add(at, f"action {action!r} is internal and cannot be used in a policy (valid: {', '.join(POLICY_ACTIONS)})")
    elif action not in POLICY_ACTIONS:
        c.add(at, f"unknown action {action!r} (valid: {', '.join(POLICY_ACTIONS)})")


def check_policies(c: Checker, at: Path, policies: Sequence[LifecyclePolicy]) -> None:
    """Volcano's rules for one list of lifecycle policies (job level or one task)."""
    events_at: dict[str, Path] = {}
    codes_at: dict[int, Path] = {}
    for j, policy in enumerate(policies):
        here = (*at, j)
        has_events = bool(policy.event or policy.events)
        if has_events and policy.exit_code is not None:
            c.add(here, "set either event/events or exitCode, not both")
            continue
        if not has_events and policy.exit_code is None:
            c.add(here, "needs event, events or exitCode")
            continue
        _check_action(c, (*here, "action"), policy.action)
        if has_events:
            named = [(e, (*here, "events", k)) for k, e in enumerate(policy.events)]
            if policy.event:
                named.append((policy.event, (*here, "event")))
            in_this_policy: set[str] = set()
            for event, where in named:
                if event in in_this_policy:
                    continue  # repeated inside one policy: harmless, as in Volcano
                in_this_policy.add(event)
                if event in INTERNAL_EVENTS:
                    c.add(
                        where,
                        f"event {event!r} is internal and cannot be used in a policy "
                        f"(valid: {', '.join(POLICY_EVENTS)})",
                    )
                elif event not in POLICY_EVENTS:
                    c.add(where, f"unknown event {event!r} (valid: {', '.join(POLICY_EVENTS)})")
                elif event in events_at:
                    c.add(where, f"duplicate event {event!r}, already handled by {format_path(events_at[event])}")
                else:
                    events_at[event] = where
        elif policy.exit_code is not None:  # always: no events means an exit code (checked above)
            code, where = policy.exit_code, (*here, "exitCode")
            if code == 0:
                c.add(where, "must not be 0: exit code 0 means success")
            elif code in codes_at:
                c.add(where, f"duplicate exitCode {code}, already handled by {format_path(codes_at[code])}")
            else:
                codes_at[code] = where
        if policy.timeout is not None and len(policy.timeout) > MAX_QUANTITY_CHARS:
            c.add(
                (*here, "timeout"),
                f"a duration of {len(policy.timeout)} characters, more than the {MAX_QUANTITY_CHARS} allowed",
            )
        elif policy.timeout is not None:
            try:
                if parse_duration(policy.timeout) < 0:
                    c.add((*here, "timeout"), "must not be negative")
            except QuantityError as exc:
                c.add((*here, "timeout"), str(exc))
    if "*" in events_at and len(events_at) > 1:
        others = ", ".join(sorted(e for e in events_at if e != "*"))
        c.add(events_at["*"], f"'*' (any event) must be the only event in the list, but {others} also appear")


# --- plugins and task dependencies -------------------------------------------------


def _plugin_arg(args: Sequence[str], flag: str, default: str) -> str:
    value = default
    for arg in args:
        if arg.startswith(f"--{flag}="):
            value = arg.split("=", 1)[1]
    return value


def check_plugins(c: Checker, at: Path, plugins: Mapping[str, Sequence[str]], task_names: Sequence[str]) -> None:
    for name in plugins:
        if name not in PLUGINS:
            c.add((*at, name), f"unknown job plugin {name!r} (known: {', '.join(PLUGINS)})")
    if "mpi" in plugins:
        for role in ("master", "worker"):
            task = _plugin_arg(plugins["mpi"], role, role)
            if task not in task_names:
                c.add((*at, "mpi"), f"the mpi {role} task {task!r} is not one of the job's tasks")
    if "ray" in plugins:  # Volcano fails every pod of such a job; refused here instead
        head = _plugin_arg(plugins["ray"], "head", "head")
        if head not in task_names:
            c.add((*at, "ray"), f"the ray head task {head!r} is not one of the job's tasks")
        for flag in ("port", "dashboardPort", "clientPort"):
            value = _plugin_arg(plugins["ray"], flag, "1")
            if not value.isdigit() or not 0 < int(value) < 65536:
                c.add((*at, "ray"), f"--{flag} must be a port number (1-65535), got {value!r}")


def check_dependencies(c: Checker, tasks: Sequence[TaskSpec]) -> None:
    """dependsOn names other existing tasks, and the tasks form no cycle."""
    index = {t.name: i for i, t in enumerate(tasks)}
    edges: dict[str, list[str]] = {}
    for i, task in enumerate(tasks):
        if task.depends_on is None:
            continue
        at: Path = ("spec", "tasks", i, "dependsOn")
        if task.depends_on.iteration not in ITERATIONS:
            c.add((*at, "iteration"), f"must be one of {', '.join(ITERATIONS)}, got {task.depends_on.iteration!r}")
        if not task.depends_on.name:
            c.add((*at, "name"), "must name at least one task")
        for k, dep in enumerate(task.depends_on.name):
            if dep == task.name:
                c.add((*at, "name", k), f"task {dep!r} cannot depend on itself")
            elif dep not in index:
                c.add((*at, "name", k), f"no task named {dep!r} in this job")
            else:
                edges.setdefault(task.name, []).append(dep)
    cycle = _find_cycle(edges, [t.name for t in tasks])
    if cycle:
        c.add(
            ("spec", "tasks", index[cycle[0]], "dependsOn"),
            f"tasks depend on each other in a cycle: {' -> '.join(cycle)}",
        )


def _find_cycle(edges: Mapping[str, Sequence[str]], order: Sequence[str]) -> list[str]:
    """The first dependency cycle ``[a, b, ..., a]`` (each task depends on the next), or ``[]``.

    ``graphlib`` finds it. It is given each edge pointing from a task to what
    it depends on (the reverse of a build order, with the same cycles) and the
    tasks in their written order, so its depth-first search walks from the
    first task written, along ``dependsOn`` in the order written, and reports
    the same cycle, in the same direction, for the same manifest.
    """
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for task in order:
        sorter.add(task)
    for task in order:
        for dep in edges.get(task, ()):
            sorter.add(dep, task)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


# --- pod templates -----------------------------------------------------------------


def _check_container(c: Checker, at: Path, container: Container, names: dict[str, Path]) -> tuple[dict[str, int], dict[str, int]]:
    if check_name(c, (*at, "name"), container.name, what="container name"):
        if container.name in names:
            also = format_path(names[container.name])
            c.add((*at, "name"), f"duplicate container name {container.name!r}, also {also}")
        else:
            names[container.name] = (*at, "name")
    if not container.image:
        c.add((*at, "image"), "required field is missing")
    res = (*at, "resources")
    requests = check_quantities(c, (*res, "requests"), container.resources.requests, container=True)
    limits = check_quantities(c, (*res, "limits"), container.resources.limits, container=True)
    for name, amount in requests.items():
        if name in limits and amount > limits[name]:
            c.add(
                (*res, "requests", name),
                f"request {format_quantity(amount, name)} exceeds limit {format_quantity(limits[name], name)}",
            )
    return requests, limits


def check_template(c: Checker, at: Path, template: PodTemplateSpec, *, topology_policy: str, task_at: Path) -> None:
    spec, sat = template.spec, (*at, "spec")
    check_metadata(c, template.metadata, (*at, "metadata"))
    if spec.priority_class_name:
        check_name(c, (*sat, "priorityClassName"), spec.priority_class_name, subdomain=True)
    if spec.node_name:
        check_name(c, (*sat, "nodeName"), spec.node_name, subdomain=True)
    check_labels(c, (*sat, "nodeSelector"), spec.node_selector)
    if not spec.containers:
        c.add((*sat, "containers"), "a pod template needs at least one container")
    if spec.restart_policy and spec.restart_policy not in RESTART_POLICIES:
        c.add((*sat, "restartPolicy"), f"must be one of {', '.join(RESTART_POLICIES)}, got {spec.restart_policy!r}")
    if topology_policy and topology_policy not in TOPOLOGY_POLICIES:
        c.add((*task_at, "topologyPolicy"), f"must be one of {', '.join(TOPOLOGY_POLICIES)}, got {topology_policy!r}")
    pinned = topology_policy not in ("", "none") and topology_policy in TOPOLOGY_POLICIES
    names: dict[str, Path] = {}
    for field, containers in (("containers", spec.containers), ("initContainers", spec.init_containers)):
        for k, container in enumerate(containers):
            cat = (*sat, field, k)
            requests, limits = _check_container(c, cat, container, names)
            if pinned:
                _check_pinned(c, (*cat, "resources"), {**limits, **requests}, limits, topology_policy)


def _check_pinned(c: Checker, at: Path, requests: dict[str, int], limits: dict[str, int], policy: str) -> None:
    """A NUMA topology policy needs a Guaranteed pod with whole CPUs."""
    for name in ("cpu", "memory"):
        if name not in limits or requests.get(name) != limits[name]:
            c.add(
                at,
                f"topologyPolicy {policy!r} needs a Guaranteed pod: "
                "cpu and memory limits set and requests equal to them",
            )
            return
    if requests["cpu"] % 1000:
        c.add((*at, "requests", "cpu"), f"topologyPolicy {policy!r} needs a whole number of CPUs")
