"""Test helper: a compact table of nodes, queues, podgroups and pods, turned into real events.

``Cluster`` keeps a log of envelopes (positions and ``recorded_at`` counting
up), folds it with the scheduler's own fold, and runs a session with
``schedule(now=...)``: it appends a ``SchedulingRequested``, calls
``decide``, and appends the decisions right after it, as the runtime does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from handlers.scheduler import SchedulerHandler
from handlers.scheduler.conf import DEFAULT_CONF_TEXT
from schemas import events as ev
from schemas.envelope import Causation, Envelope
from schemas.quantity import to_resources
from schemas.resources import (
    Affinity,
    Guarantee,
    Node,
    NodeSpec,
    NodeStatus,
    ObjectMeta,
    Pod,
    PodGroup,
    PodGroupSpec,
    PodSpec,
    Queue,
    QueueSpec,
    Taint,
    Toleration,
)


def node_event(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: int = 110,
    gpu: int | None = None,
    labels: dict[str, str] | None = None,
    taints: Iterable[tuple[str, str, str]] = (),
    unschedulable: bool = False,
    update: bool = False,
) -> ev.Event:
    allocatable = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    if gpu is not None:
        allocatable["nvidia.com/gpu"] = str(gpu)
    manifest = Node(
        metadata=ObjectMeta(name=name, labels=labels or {}),
        spec=NodeSpec(
            unschedulable=unschedulable,
            taints=[Taint(key=k, value=v, effect=e) for k, v, e in taints],
        ),
        status=NodeStatus(allocatable=allocatable, capacity=allocatable),
    )
    cls = ev.NodeUpdated if update else ev.NodeAdded
    return cls(node=name, manifest=manifest)


class Cluster:
    def __init__(self, conf: Any = None) -> None:
        self.handler = SchedulerHandler(conf)
        self.log: list[Envelope] = []
        self.clock = 0

    # --- log -----------------------------------------------------------------

    def add(self, *events: ev.Event, at: int | None = None) -> Cluster:
        for event in events:
            if at is not None:
                self.clock = max(self.clock, at)
            else:
                self.clock += 1
            self.log.append(Envelope.wrap(event, recorded_at=self.clock).at(len(self.log)))
        return self

    def state(self, log: list[Envelope] | None = None):
        state = self.handler.initial()
        for envelope in self.log if log is None else log:
            state = self.handler.fold(state, envelope)
        return state

    def schedule(self, now: int | None = None) -> list[ev.Event]:
        now = self.clock + 1 if now is None else now
        self.clock = max(self.clock, now)
        trigger = Envelope.wrap(ev.SchedulingRequested(now=now), recorded_at=now).at(len(self.log))
        self.log.append(trigger)
        decisions = self.handler.decide(self.state(), trigger)
        for index, event in enumerate(decisions):
            envelope = Envelope.wrap(
                event, recorded_at=now, causation=Causation(trigger.position, self.handler.name, index)
            )
            self.log.append(envelope.at(len(self.log)))
        return decisions

    # --- the table's rows ------------------------------------------------------

    def node(self, name: str, **kwargs: Any) -> Cluster:
        return self.add(node_event(name, **kwargs))

    def nodes(self, count: int, prefix: str = "n", **kwargs: Any) -> Cluster:
        for i in range(count):
            self.node(f"{prefix}{i}", **kwargs)
        return self

    def queue(
        self,
        name: str,
        *,
        weight: int = 1,
        capability: dict[str, str] | None = None,
        guarantee: dict[str, str] | None = None,
        priority: int = 0,
        state: str = "Open",
        parent: str = "",
        deserved: dict[str, str] | None = None,
    ) -> Cluster:
        manifest = Queue(
            metadata=ObjectMeta(name=name),
            spec=QueueSpec(
                weight=weight,
                capability=capability or {},
                guarantee=Guarantee(resource=guarantee or {}),
                priority=priority,
                parent=parent,
                deserved=deserved or {},
            ),
        )
        self.add(ev.QueueCreated(queue=name, manifest=manifest))
        return self.add(ev.QueueStateChanged(queue=name, state=state))

    def priority_class(self, name: str, value: int) -> Cluster:
        return self.add(ev.PriorityClassAdded(name=name, value=value))

    def job(
        self,
        name: str,
        tasks: dict[str, tuple[int, dict[str, str]]],
        *,
        queue: str = "default",
        min_member: int | None = None,
        min_task_member: dict[str, int] | None = None,
        priority_class: str = "",
        node_selector: dict[str, str] | None = None,
        affinity: dict | None = None,
        tolerations: list[dict] | None = None,
        runtime_class: str = "",
        annotations: dict[str, str] | None = None,
        min_resources: bool = True,
        pods: bool = True,
        inqueue: bool = False,
        at: int | None = None,
    ) -> Cluster:
        """A podgroup and (unless ``pods=False``) its pods; ``tasks``: role -> (replicas, requests).

        ``inqueue=True``: the podgroup was admitted already (``PodGroupEnqueued`` by enqueue), as
        Volcano's action tests build their podgroups in phase Inqueue: preempt and reclaim take
        no Pending podgroup (Volcano's ``job.IsPending()`` skip), enqueue alone admits."""
        key = f"default/{name}"
        total = sum(replicas for replicas, _ in tasks.values())
        members = total if min_member is None else min_member
        need: dict[str, int] = {}
        left = members
        for _, (replicas, requests) in tasks.items():
            for _ in range(min(replicas, left)):
                for r, v in to_resources(requests).items():
                    need[r] = need.get(r, 0) + v
            left -= min(replicas, left)
        group = PodGroup(
            metadata=ObjectMeta(name=name, namespace="default", annotations=annotations or {}),
            spec=PodGroupSpec(
                min_member=members,
                min_task_member=min_task_member or {},
                queue=queue,
                priority_class_name=priority_class,
            ),
        )
        self.add(
            ev.PodGroupCreated(podgroup=key, job=key, manifest=group, min_resources=need if min_resources else {}),
            at=at,
        )
        if inqueue:
            self.add(ev.PodGroupEnqueued(podgroup=key, job=key, queue=queue, rule="enqueue"))
        if pods:
            self.pods(name, tasks, node_selector=node_selector, affinity=affinity, tolerations=tolerations,
                      runtime_class=runtime_class, priority_class=priority_class)
        return self

    def pods(
        self,
        name: str,
        tasks: dict[str, tuple[int, dict[str, str]]],
        *,
        node_selector: dict[str, str] | None = None,
        affinity: dict | None = None,
        tolerations: list[dict] | None = None,
        runtime_class: str = "",
        priority_class: str = "",
        priority: int = 0,
    ) -> Cluster:
        key = f"default/{name}"
        spec = PodSpec(
            node_selector=node_selector or {},
            affinity=msgspec.convert(affinity, Affinity) if affinity else None,
            tolerations=[msgspec.convert(t, Toleration) for t in tolerations or []],
            runtime_class_name=runtime_class,
            priority_class_name=priority_class,
        )
        for role, (replicas, requests) in tasks.items():
            parsed = to_resources(requests)
            parsed["pods"] = 1
            for i in range(replicas):
                pod = f"default/{name}-{role}-{i}"
                self.add(
                    ev.PodRequested(
                        pod=pod,
                        job=key,
                        podgroup=key,
                        task=role,
                        index=i,
                        manifest=Pod(metadata=ObjectMeta(name=pod.split("/")[1], namespace="default"), spec=spec),
                        requests=parsed,
                        priority=priority,
                    )
                )
        return self


def of(decisions: list[ev.Event], cls: type) -> list:
    return [d for d in decisions if isinstance(d, cls)]


def bound(decisions: list[ev.Event]) -> dict[str, str]:
    """pod -> node of every PodBound."""
    return {d.pod: d.node for d in decisions if isinstance(d, ev.PodBound)}


def per_node(decisions: list[ev.Event]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in decisions:
        if isinstance(d, ev.PodBound):
            counts[d.node] = counts.get(d.node, 0) + 1
    return dict(sorted(counts.items()))


def default_conf_with(actions: str) -> str:
    """Volcano's default scheduler conf (the default tiers of plugins) with other actions."""
    default_actions = 'actions: "enqueue, allocate, backfill"'
    if default_actions not in DEFAULT_CONF_TEXT:
        raise AssertionError("the default conf no longer names its actions as expected")
    return DEFAULT_CONF_TEXT.replace(default_actions, f'actions: "{actions}"')
