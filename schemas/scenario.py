"""The scenario file of ``eventbatch simulate``: a cluster, its queues and a workload.

Where it sits: the edge of the simulated cluster. ``load_scenario`` turns one
YAML file into typed entries; nodes and embedded manifests are validated
like everything else at the edge, and any error names the entry and the
field (``scenario.yaml: workload[3].apply.spec.tasks[0].replicas: ...``).
The simulation driver (``eventbatch.sim``) turns the entries into events.

```yaml
nodes:                          # one by one, or in bulk with a prefix and count
  - {name: gpu-1, allocatable: {cpu: 32, memory: 256Gi, nvidia.com/gpu: 8}, labels: {...}, taints: [...]}
  - {prefix: cpu-, count: 100, allocatable: {cpu: 16, memory: 64Gi}}
  # every node also has, unless given: labels kubernetes.io/{hostname,os,arch}
  # (its name, linux, amd64), allocatable pods 110 and ephemeral-storage 100Gi
queues: [<Volcano Queue manifests>]
priorityClasses: {high: 1000, low: 10}
runtimeClasses: [<node.k8s.io/v1 RuntimeClass objects>]   # handler, overhead.podFixed, scheduling
scheduler: {actions: "enqueue, allocate, backfill", tiers: [...]}   # or a file path
running:                        # pods already bound and running at time 0
  - {job: ml/old, queue: default, task: worker, node: cpu-1, requests: {cpu: 4}, count: 2,
     priority: 10, labels: {volcano.sh/preemptable: "true"}, duration: 2h}
podgroupPhases: {ml/old: Running}
workload:
  - {at: 10s, apply: <Volcano Job or Queue manifest, or a file path>}
  - {at: 5m, command: {action: AbortJob, job: ml/train}}
  - {at: 1h, fail: {node: cpu-3}}
until: all-finished             # or a duration such as 2h
```

A file ending in ``.json`` is read as JSON with the same structure (fast for
large generated scenarios such as imported traces).

The file is bounded like every other input (``schemas.limits``,
``docs/limits.md``): at most ``MAX_SCENARIO_BYTES``, YAML aliases, nesting,
strings and integers as in a manifest, at most ``MAX_SCENARIO_NODES`` nodes,
names that are Kubernetes names, ``count`` of running pods and ``replicas``
within ``MAX_PODS_PER_JOB``, and priorities within int32 (a priority class at
most ``MAX_PRIORITY``, Kubernetes' highest user-definable one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import yaml

from schemas import limits
from schemas.admission_rules import JOB_ACTIONS, QUEUE_ACTIONS, Checker, check_labels, check_name
from schemas.decode import DecodeError, decode, format_path
from schemas.loaders import Manifest, ManifestError, decode_manifest, load_file, parse_yaml, read_text
from schemas.quantity import QuantityError, duration_ms, parse_quantity
from schemas.resources import Taint
from schemas.runtimeclass import RuntimeClass, RuntimeClassError, load_runtime_class

ALL_FINISHED = "all-finished"


class NodeEntry(msgspec.Struct, frozen=True, rename="camel"):
    allocatable: dict[str, str | int | float]
    name: str = ""
    prefix: str = ""
    count: int = 1
    labels: dict[str, str] = {}
    taints: list[Taint] = []
    unschedulable: bool = False


class RunningEntry(msgspec.Struct, frozen=True, rename="camel"):
    job: str
    node: str
    requests: dict[str, str | int | float] = {}
    podgroup: str = ""
    queue: str = "default"
    task: str = "main"
    count: int = 1
    priority: int = 0
    priority_class_name: str = ""
    labels: dict[str, str] = {}
    duration: str | None = None


class CommandEntry(msgspec.Struct, frozen=True):
    action: str
    job: str = ""
    queue: str = ""


class FailEntry(msgspec.Struct, frozen=True):
    node: str


class WorkloadEntry(msgspec.Struct, frozen=True):
    at: str
    apply: Any = None
    command: CommandEntry | None = None
    fail: FailEntry | None = None


class ScenarioFile(msgspec.Struct, frozen=True, rename="camel"):
    nodes: list[NodeEntry] = []
    queues: list[Any] = []
    priority_classes: dict[str, int] = {}
    runtime_classes: list[Any] = []
    scheduler: Any = None
    running: list[RunningEntry] = []
    podgroup_phases: dict[str, str] = {}
    workload: list[WorkloadEntry] = []
    until: str = ALL_FINISHED


class ScenarioError(ValueError):
    """A scenario that cannot run; ``str()`` names the file, the entry and the field."""


class Step(msgspec.Struct, frozen=True):
    """One workload entry, resolved: at ``at_ms`` apply manifests, a command or a failure."""

    at_ms: int
    index: int
    manifests: list[Manifest] = []
    command: CommandEntry | None = None
    fail: FailEntry | None = None


class Scenario(msgspec.Struct, frozen=True):
    source: str
    nodes: list[NodeEntry]
    queues: list[Manifest]
    priority_classes: dict[str, int]
    scheduler_conf: str | None  # Volcano scheduler conf text, None = default
    running: list[RunningEntry]
    podgroup_phases: dict[str, str]
    steps: list[Step]
    until_ms: int | None  # None = until every job has finished
    runtime_classes: list[RuntimeClass] = []


def _fail(source: str, path: tuple[str | int, ...], reason: str) -> ScenarioError:
    where = format_path(path)
    return ScenarioError(f"{source}: {where}: {reason}" if where else f"{source}: {reason}")


def _duration(source: str, path: tuple[str | int, ...], text: str) -> int:
    if len(str(text)) > limits.MAX_QUANTITY_CHARS:
        raise _fail(source, path, f"a duration of {len(str(text))} characters, more than the {limits.MAX_QUANTITY_CHARS} allowed")
    try:
        value = duration_ms(str(text))
    except QuantityError as exc:
        raise _fail(source, path, str(exc)) from None
    if value < 0:
        raise _fail(source, path, "must not be negative")
    return value


def _manifests(raw: Any, base: Path, source: str, path: tuple[str | int, ...]) -> list[Manifest]:
    try:
        if isinstance(raw, str):
            target = Path(raw) if Path(raw).is_absolute() else base / raw
            if not target.exists():
                raise _fail(source, path, f"file {raw} not found")
            return list(load_file(target))
        return [decode_manifest(raw, source=source, path=path)]
    except ManifestError as exc:
        raise ScenarioError(str(exc)) from None


def _quantity(source: str, path: tuple[str | int, ...], amount: str | int | float, resource: str) -> None:
    if isinstance(amount, str) and len(amount) > limits.MAX_QUANTITY_CHARS:
        raise _fail(
            source, path, f"a quantity of {len(amount)} characters, more than the {limits.MAX_QUANTITY_CHARS} allowed"
        )
    try:
        parse_quantity(amount, resource)
    except QuantityError as exc:
        raise _fail(source, path, str(exc)) from None


def _names(source: str, checks: list[tuple[tuple[str | int, ...], str, bool, str]]) -> None:
    """Each ``(path, name, subdomain, what)`` is a Kubernetes name, or the first that is not fails."""
    c = Checker()
    for path, name, subdomain, what in checks:
        check_name(c, path, name, subdomain=subdomain, what=what)
        if c.violations:
            raise _fail(source, (), f"{c.violations[0].path}: {c.violations[0].reason}")


def _labels(source: str, path: tuple[str | int, ...], labels: dict[str, str]) -> None:
    c = Checker()
    check_labels(c, path, labels)
    if c.violations:
        raise _fail(source, (), f"{c.violations[0].path}: {c.violations[0].reason}")


def _job_key(source: str, path: tuple[str | int, ...], key: str) -> None:
    """``NAMESPACE/NAME`` or ``NAME``: a namespace and a job name."""
    namespace, slash, name = key.rpartition("/")
    checks = [(path, name, True, "job name")]
    if slash:
        checks.insert(0, (path, namespace, False, "namespace"))
    _names(source, checks)


def _check_nodes(source: str, nodes: list[NodeEntry]) -> None:
    seen: set[str] = set()
    total = sum(max(node.count, 0) if node.prefix else 1 for node in nodes)
    if total > limits.MAX_SCENARIO_NODES:
        raise _fail(
            source, ("nodes",), f"{total} nodes, more than the {limits.MAX_SCENARIO_NODES} a simulated cluster may have"
        )
    for i, node in enumerate(nodes):
        if bool(node.name) == bool(node.prefix):
            raise _fail(source, ("nodes", i), "give either name or prefix (with count)")
        if node.count < 1:
            raise _fail(source, ("nodes", i, "count"), "must be >= 1")
        for resource, amount in node.allocatable.items():
            _quantity(source, ("nodes", i, "allocatable", resource), amount, resource)
        _labels(source, ("nodes", i, "labels"), node.labels)
        names = [node.name] if node.name else [f"{node.prefix}{k}" for k in range(node.count)]
        # The longest name stands for all of a prefix's: the same characters, more digits.
        _names(source, [(("nodes", i, "name" if node.name else "prefix"), names[-1], True, "node name")])
        for name in names:
            if name in seen:
                raise _fail(source, ("nodes", i), f"node {name} is declared twice")
            seen.add(name)


def _steps(source: str, base: Path, workload: list[WorkloadEntry]) -> list[Step]:
    steps = []
    for i, entry in enumerate(workload):
        at = _duration(source, ("workload", i, "at"), entry.at)
        chosen = [k for k in ("apply", "command", "fail") if getattr(entry, k) is not None]
        if len(chosen) != 1:
            raise _fail(source, ("workload", i), "give exactly one of apply, command, fail")
        if entry.fail is not None:
            _names(source, [(("workload", i, "fail", "node"), entry.fail.node, True, "node name")])
        if entry.command is not None:
            action = entry.command.action
            if entry.command.job:
                _job_key(source, ("workload", i, "command", "job"), entry.command.job)
            if entry.command.queue:
                _names(source, [(("workload", i, "command", "queue"), entry.command.queue, True, "queue name")])
            if action not in JOB_ACTIONS + QUEUE_ACTIONS:
                raise _fail(source, ("workload", i, "command", "action"), f"unknown action {action!r}")
            if action in JOB_ACTIONS and not entry.command.job:
                raise _fail(source, ("workload", i, "command", "job"), f"{action} needs a job")
            if action in QUEUE_ACTIONS and not entry.command.queue:
                raise _fail(source, ("workload", i, "command", "queue"), f"{action} needs a queue")
        manifests = (
            _manifests(entry.apply, base, source, ("workload", i, "apply")) if entry.apply is not None else []
        )
        steps.append(Step(at, i, manifests, entry.command, entry.fail))
    return sorted(steps, key=lambda s: (s.at_ms, s.index))


def _single_yaml(text: str) -> Any:
    """The one YAML document of a scenario, built within the limits of ``schemas.limits``."""
    documents = [doc for _, doc in parse_yaml(text) if doc is not None]
    if len(documents) > 1:
        raise limits.LimitError("", "expected a single YAML document")
    return documents[0] if documents else None


def _check_priorities(source: str, classes: dict[str, int]) -> None:
    for name, value in classes.items():
        _names(source, [(("priorityClasses", name), name, True, "priority class name")])
        if not limits.INT32[0] <= value <= limits.MAX_PRIORITY:
            raise _fail(
                source,
                ("priorityClasses", name),
                f"{limits.describe_int(value)} is out of range: a priority class value is "
                f"{limits.INT32[0]}..{limits.MAX_PRIORITY} (Kubernetes' highest user-definable priority)",
            )


def _runtime_class(source: str, index: int, raw: Any) -> RuntimeClass:
    try:
        return load_runtime_class(raw)
    except RuntimeClassError as exc:
        raise _fail(source, ("runtimeClasses", index), str(exc)) from None


def _check_running(source: str, at: tuple[str | int, ...], entry: RunningEntry) -> None:
    for resource, amount in entry.requests.items():
        _quantity(source, (*at, "requests", resource), amount, resource)
    _job_key(source, (*at, "job"), entry.job)
    checks = [((*at, "node"), entry.node, True, "node name"), ((*at, "queue"), entry.queue, True, "queue name"),
              ((*at, "task"), entry.task, False, "task name")]
    if entry.podgroup:
        checks.append(((*at, "podgroup"), entry.podgroup, True, "podgroup name"))
    if entry.priority_class_name:
        checks.append(((*at, "priorityClassName"), entry.priority_class_name, True, "priority class name"))
    _names(source, checks)
    _labels(source, (*at, "labels"), entry.labels)
    if not 1 <= entry.count <= limits.MAX_PODS_PER_JOB:
        raise _fail(source, (*at, "count"), f"{limits.describe_int(entry.count)} is out of range 1..{limits.MAX_PODS_PER_JOB}")
    if not limits.INT32[0] <= entry.priority <= limits.INT32[1]:
        raise _fail(
            source, (*at, "priority"),
            f"{limits.describe_int(entry.priority)} is out of range for an int32 field ({limits.INT32[0]}..{limits.INT32[1]})",
        )
    if entry.duration is not None and len(entry.duration) > limits.MAX_QUANTITY_CHARS:
        raise _fail(source, (*at, "duration"), f"a duration of {len(entry.duration)} characters, more than the {limits.MAX_QUANTITY_CHARS} allowed")


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    source = str(path)
    try:
        text = read_text(p, limits.MAX_SCENARIO_BYTES, source=source)
        raw = msgspec.json.decode(text) if p.suffix == ".json" else _single_yaml(text)
        limits.check_tree(raw)
    except OSError as exc:
        raise ScenarioError(f"{source}: {exc.strerror}") from None
    except ManifestError as exc:
        raise ScenarioError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ScenarioError(f"{source}: not valid JSON: {exc}") from None
    except RecursionError:
        raise _fail(source, (), f"nested more than {limits.MAX_DEPTH} levels deep") from None
    except limits.LimitError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: expected a mapping with nodes, queues, workload, ...")
    try:
        scenario = decode(raw, ScenarioFile)
    except DecodeError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    _check_nodes(source, scenario.nodes)
    _check_priorities(source, scenario.priority_classes)
    queues = [m for i, q in enumerate(scenario.queues) for m in _manifests(q, p.parent, source, ("queues", i))]
    conf: str | None = None
    if isinstance(scenario.scheduler, str):
        conf_path = p.parent / scenario.scheduler
        if not conf_path.exists():
            raise _fail(source, ("scheduler",), f"file {scenario.scheduler} not found")
        conf = conf_path.read_text(encoding="utf-8")
    elif scenario.scheduler is not None:
        conf = yaml.safe_dump(scenario.scheduler, sort_keys=False)
    for i, entry in enumerate(scenario.running):
        _check_running(source, ("running", i), entry)
        if entry.duration is not None:
            _duration(source, ("running", i, "duration"), entry.duration)
    until = None if scenario.until == ALL_FINISHED else _duration(source, ("until",), scenario.until)
    return Scenario(
        source=source,
        nodes=list(scenario.nodes),
        queues=queues,
        priority_classes=dict(scenario.priority_classes),
        scheduler_conf=conf,
        running=list(scenario.running),
        podgroup_phases=dict(scenario.podgroup_phases),
        steps=_steps(source, p.parent, scenario.workload),
        until_ms=until,
        runtime_classes=[_runtime_class(source, i, raw) for i, raw in enumerate(scenario.runtime_classes)],
    )
