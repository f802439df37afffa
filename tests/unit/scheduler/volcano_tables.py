"""Test helper: Volcano's test sessions (``uthelper.TestCommonStruct``) as eventbatch scenario rows.

Volcano's scheduler tests build a session from podgroups (``util.BuildPodGroup``:
name, namespace, queue, minMember, minTaskMember, phase), pods
(``util.BuildPod``: namespace, name, node, phase, requests, podgroup, labels,
node selector), nodes (``util.BuildNode``: allocatable, labels), queues
(``util.BuildQueue``: weight, capability) and priority classes; run one or
more actions; and check binds, evictions, pipelined tasks and podgroup phases.
``VCase`` holds the same facts; ``run`` turns them into events on a
``tables.Cluster`` log (a pod with a node runs there), runs one session and
returns what a Volcano test checks, as ``Outcome``.

``vconf`` writes a Volcano test's tiers as a conf: a Go test leaves every
``Enabled...`` switch it does not name nil, which Volcano's session reads as
*disabled* (``isEnabled`` in framework/session_plugins.go), whereas a conf
file's unnamed switch is enabled (``ApplyPluginConfDefaults``); so every
switch not named is written ``false`` here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import msgspec

from handlers.scheduler.conf import ENABLE_FLAGS, SchedulerConf, load_conf
from schemas import events as ev
from schemas.quantity import to_resources
from schemas.resources import Affinity, ObjectMeta, Pod, PodGroup, PodGroupSpec, PodSpec
from tests.unit.scheduler.tables import Cluster, node_event

# The family names a Go test uses (EnabledJobOrder -> "JobOrder") to eventbatch's conf keys.
_FLAGS = {key.removeprefix("enabled").removeprefix("enable"): key for key in ENABLE_FLAGS}


def vconf(actions: str, *tiers: list[tuple[str, str]], arguments: dict[str, dict[str, object]] | None = None) -> SchedulerConf:
    """A conf from Go tiers: each tier a list of (plugin, "JobOrder JobReady ..." switched on)."""
    lines = [f'actions: "{actions}"', "tiers:"]
    for tier in tiers:
        lines.append("- plugins:")
        for plugin, switched_on in tier:
            on = set(switched_on.split())
            unknown = on - set(_FLAGS)
            if unknown:
                raise AssertionError(f"no such switch: {sorted(unknown)}")
            lines.append(f"  - name: {plugin}")
            for family, key in _FLAGS.items():
                lines.append(f"    {key}: {'true' if family in on else 'false'}")
            args = (arguments or {}).get(plugin)
            if args:
                lines.append(f"    arguments: {json.dumps(args)}")
    return load_conf("\n".join(lines))


@dataclass(frozen=True)
class VGroup:
    name: str
    namespace: str
    queue: str
    min_member: int
    phase: str  # Pending, Inqueue or Running, as BuildPodGroup sets it
    min_task_member: dict[str, int] = field(default_factory=dict)
    priority_class: str = ""
    min_resources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VPod:
    namespace: str
    name: str
    group: str
    cpu: str  # "" with memory "": no requests (a BestEffort pod)
    memory: str
    node: str = ""  # set: the pod runs on this node
    task: str = ""  # the volcano.sh/task-spec label: the pod's role
    labels: dict[str, str] = field(default_factory=dict)
    selector: dict[str, str] = field(default_factory=dict)
    priority: int | None = None  # BuildPodWithPriority
    gpu: str = ""
    # "" (Running on ``node``, or Pending without one), "Releasing" (being deleted: on ``node``, or never
    # placed), "Pipelined" (promised ``node`` by an earlier session)
    status: str = ""
    preemption_policy: str = ""  # BuildPodWithPreemptionPolicy: "Never" or "PreemptLowerPriority"
    priority_class: str = ""  # spec.priorityClassName
    scalars: dict[str, str] = field(default_factory=dict)  # other requests: {"nvidia.com/A100": "10"}
    pod_anti_affinity: dict[str, object] = field(default_factory=dict)  # spec.affinity.podAntiAffinity


@dataclass(frozen=True)
class VNode:
    name: str
    cpu: str
    memory: str
    pods: int = 10
    labels: dict[str, str] = field(default_factory=dict)
    gpu: int | None = None
    scalars: dict[str, str] = field(default_factory=dict)  # other allocatable: {"nvidia.com/A100": "10"}


@dataclass(frozen=True)
class VQueue:
    name: str
    weight: int = 1
    capability: dict[str, str] = field(default_factory=dict)
    state: str = "Open"
    priority: int = 0
    guarantee: dict[str, str] = field(default_factory=dict)
    parent: str = ""
    deserved: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What Volcano's ``CheckAll`` looks at; ``None`` fields are not checked."""

    binds: dict[str, str] | None = None  # pod -> node (ExpectBindMap; exact)
    evicted: tuple[str, ...] | None = None  # ExpectEvicted (exact, order not checked)
    pipelined: dict[str, tuple[str, ...]] | None = None  # podgroup -> nodes (ExpectPipeLined)
    phases: dict[str, str] | None = None  # podgroup -> phase (ExpectStatus)
    unschedulable: tuple[str, ...] | None = None  # podgroups given an Unschedulable condition (verdict)
    placed: dict[str, int] | None = None  # podgroup -> pods bound in the session


@dataclass(frozen=True)
class VCase:
    volcano: str  # the Volcano case name
    line: int  # where the case starts in Volcano's _test.go
    groups: tuple[VGroup, ...]
    pods: tuple[VPod, ...]
    nodes: tuple[VNode, ...]
    queues: tuple[VQueue, ...]
    expect: Outcome  # what Volcano's test expects
    priority_classes: tuple[tuple[str, int], ...] = ()
    never_preempting: tuple[str, ...] = ()  # priority classes whose preemptionPolicy is Never
    differs: str = ""  # set: eventbatch decides differently on purpose, for this reason
    eventbatch: Outcome | None = None  # eventbatch's outcome when it differs


def build(case: VCase, conf: SchedulerConf) -> Cluster:
    c = Cluster(conf)
    for name, value in case.priority_classes:
        policy = "Never" if name in case.never_preempting else "PreemptLowerPriority"
        c.add(ev.PriorityClassAdded(name=name, value=value, preemption_policy=policy))
    for n in case.nodes:
        event = node_event(n.name, cpu=n.cpu, memory=n.memory, pods=n.pods, labels=dict(n.labels), gpu=n.gpu)
        if n.scalars:
            assert isinstance(event, ev.NodeAdded)
            allocatable = event.manifest.status.allocatable | n.scalars
            status = msgspec.structs.replace(event.manifest.status, allocatable=allocatable, capacity=allocatable)
            event = ev.NodeAdded(node=n.name, manifest=msgspec.structs.replace(event.manifest, status=status))
        c.add(event)
    for q in case.queues:
        c.queue(q.name, weight=q.weight, capability=dict(q.capability) or None, guarantee=dict(q.guarantee) or None,
                priority=q.priority, state=q.state, parent=q.parent, deserved=dict(q.deserved) or None)
    # Volcano's test objects all have the same (zero) creation time: orders fall to the name (UID).
    t = c.clock + 1
    index: dict[str, int] = {}
    for g in case.groups:
        key = f"{g.namespace}/{g.name}"
        manifest = PodGroup(
            metadata=ObjectMeta(name=g.name, namespace=g.namespace),
            spec=PodGroupSpec(
                min_member=g.min_member,
                min_task_member=dict(g.min_task_member),
                queue=g.queue,
                priority_class_name=g.priority_class,
            ),
        )
        c.add(ev.PodGroupCreated(podgroup=key, job=key, manifest=manifest, min_resources=to_resources(g.min_resources)), at=t)
        if g.phase in ("Inqueue", "Running"):
            c.add(ev.PodGroupEnqueued(podgroup=key, job=key, queue=g.queue, rule="enqueue"), at=t)
    for p in case.pods:
        key = f"{p.namespace}/{p.group}"
        name = f"{p.namespace}/{p.name}"
        requests: dict[str, str] = {}
        if p.cpu:
            requests["cpu"] = p.cpu
        if p.memory:
            requests["memory"] = p.memory
        if p.gpu:
            requests["nvidia.com/gpu"] = p.gpu
        requests.update(p.scalars)
        labels = dict(p.labels)
        if p.task:
            labels["volcano.sh/task-spec"] = p.task
        extra = {"preemptionPolicy": p.preemption_policy} if p.preemption_policy else {}
        affinity = Affinity(pod_anti_affinity=dict(p.pod_anti_affinity)) if p.pod_anti_affinity else None
        spec = PodSpec(
            node_selector=dict(p.selector), priority=p.priority, priority_class_name=p.priority_class, extra=extra,
            affinity=affinity,
        )
        pod = Pod(metadata=ObjectMeta(name=p.name, namespace=p.namespace, labels=labels), spec=spec)
        i = index[key] = index.get(key, -1) + 1
        c.add(
            ev.PodRequested(
                pod=name, job=key, podgroup=key, task=p.task, index=i, manifest=pod,
                requests=to_resources(requests) | {"pods": 1}, priority=p.priority or 0,
            ),
            at=t,
        )
        if p.status == "Pipelined":
            c.add(ev.PodPipelined(pod=name, job=key, node=p.node, rule="allocate.pipeline"), at=t)
        elif p.node:
            c.add(ev.PodBound(pod=name, job=key, node=p.node, rule="allocate"), at=t)
            c.add(ev.PodStarted(pod=name, job=key, node=p.node), at=t)
        if p.status == "Releasing":
            c.add(ev.PodDeletionRequested(pod=name, job=key, reason="deleted"), at=t)
    for g in case.groups:
        if g.phase == "Running":
            key = f"{g.namespace}/{g.name}"
            c.add(
                ev.PodGroupPhaseChanged(
                    podgroup=key, job=key, queue=g.queue, rule="session.job-status", phase="Running",
                    previous="Inqueue", reason="MinMemberAllocated",
                ),
                at=t,
            )
    return c


def run(case: VCase, conf: SchedulerConf) -> Outcome:
    """One session over the case's facts; the outcome in the fields Volcano's case checks."""
    c = build(case, conf)
    decisions = c.schedule()
    want = case.eventbatch if case.differs and case.eventbatch is not None else case.expect
    binds = {d.pod: d.node for d in decisions if isinstance(d, ev.PodBound)}
    evicted = tuple(sorted(d.pod for d in decisions if isinstance(d, ev.PodEvictionRequested)))
    pipelined: dict[str, list[str]] = {}
    for d in decisions:
        if isinstance(d, ev.PodPipelined):
            pipelined.setdefault(c.state().pods[d.pod].podgroup, []).append(d.node)
    groups = c.state().podgroups
    return Outcome(
        binds=binds if want.binds is not None else None,
        evicted=evicted if want.evicted is not None else None,
        pipelined={k: tuple(sorted(v)) for k, v in pipelined.items()} if want.pipelined is not None else None,
        phases={k: groups[k].phase for k in want.phases} if want.phases is not None else None,
        unschedulable=tuple(sorted(d.podgroup for d in decisions if isinstance(d, ev.PodGroupUnschedulable)))
        if want.unschedulable is not None
        else None,
        placed=_placed(c, binds) if want.placed is not None else None,
    )


def _placed(c: Cluster, binds: dict[str, str]) -> dict[str, int]:
    pods = c.state().pods
    counts: dict[str, int] = {}
    for pod in binds:
        counts[pods[pod].podgroup] = counts.get(pods[pod].podgroup, 0) + 1
    return dict(sorted(counts.items()))


def normalised(outcome: Outcome) -> Outcome:
    """Evictions sorted, pipelined nodes sorted: Volcano's checks ignore their order."""
    return Outcome(
        binds=outcome.binds,
        evicted=tuple(sorted(outcome.evicted)) if outcome.evicted is not None else None,
        pipelined={k: tuple(sorted(v)) for k, v in outcome.pipelined.items()} if outcome.pipelined is not None else None,
        phases=outcome.phases,
        unschedulable=tuple(sorted(outcome.unschedulable)) if outcome.unschedulable is not None else None,
        placed=dict(sorted(outcome.placed.items())) if outcome.placed is not None else None,
    )
