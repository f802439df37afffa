"""Volcano's own table-driven scheduler cases, as scenario tables: the same facts, eventbatch's sessions.

Each row names the Volcano test and case it comes from (volcano-sh/volcano at
commit ed72c7c815a9fd547a787134676f73d42e9d049c) and carries the facts of that
case: podgroups (phase, minMember, minResources), pods, queues (weight,
capability), and what Volcano expects. A row eventbatch decides differently
on purpose keeps Volcano's expectation in ``volcano`` and eventbatch's in
``expected``, with the reason (docs/scheduler.md, "Differences from Volcano").

Ported so far: ``TestEnqueue`` (pkg/scheduler/actions/enqueue/enqueue_test.go,
5 of 5 cases). Volcano's test session for enqueue has no nodes; eventbatch's
enqueue admits nothing into a cluster without nodes (deliberate: docs/cluster.md),
so each row here has one node large enough not to matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from handlers.scheduler.conf import load_conf
from schemas import events as ev
from schemas.quantity import to_resources
from schemas.resources import ObjectMeta, Pod, PodGroup, PodGroupSpec, PodSpec
from tests.unit.scheduler.tables import Cluster

# TestEnqueue's tiers: one tier of drf, proportion, sla (sla-waiting-time 3m) and gang.
ENQUEUE_CONF = load_conf(
    """
actions: "enqueue"
tiers:
- plugins:
  - {name: drf}
  - {name: proportion}
  - {name: sla, arguments: {sla-waiting-time: 3m}}
  - {name: gang}
"""
)


@dataclass(frozen=True)
class Group:
    name: str
    namespace: str
    queue: str
    min_member: int
    phase: str  # Pending, Inqueue or Running, as Volcano's BuildPodGroup sets it
    min_resources: dict[str, str] = field(default_factory=dict)
    pods: tuple[tuple[str, str, str], ...] = ()  # (pod, cpu, memory); "Running" groups' pods run


@dataclass(frozen=True)
class EnqueueCase:
    volcano: str  # the Volcano case name
    groups: tuple[Group, ...]
    queues: tuple[tuple[str, int, str, str], ...]  # (name, weight, capability cpu, capability memory)
    expected: dict[str, str]  # podgroup -> phase after the session; a podgroup not named is not looked at


ENQUEUE_CASES = [
    EnqueueCase(
        "when podgroup status is inqueue",
        (Group("pg1", "c1", "c1", 2, "Inqueue", pods=(("p1", "1", "1G"), ("p2", "1", "1G"))),),
        (("c1", 1, "4", "4G"), ("c2", 1, "4", "4G")),
        {"c1/pg1": "Inqueue"},
    ),
    EnqueueCase(
        "when podgroup status is pending",
        (
            Group("pg1", "c1", "c1", 1, "Pending", pods=(("p1", "3", "1G"),)),
            Group("pg2", "c1", "c2", 1, "Pending", pods=(("p2", "1", "1G"),)),
        ),
        (("c1", 1, "4", "4G"), ("c2", 1, "4", "4G")),
        {"c1/pg1": "Inqueue", "c1/pg2": "Inqueue"},
    ),
    EnqueueCase(
        "when podgroup status is running",
        (Group("pg1", "c1", "c1", 2, "Running", pods=(("p1", "1", "1G"), ("p2", "1", "1G"))),),
        (("c1", 1, "4", "4G"),),
        {"c1/pg1": "Running"},
    ),
    EnqueueCase(
        # Volcano expects no status at all (the job is not even in the session); eventbatch keeps it
        # Pending and says why (queue c1 does not exist): the same decision, not admitted.
        "pggroup cannot enqueue because the specified queue is c1, but there is only c2",
        (Group("pg1", "c1", "c1", 0, "Pending"),),
        (("c2", 1, "4", "4G"),),
        {"c1/pg1": "Pending"},
    ),
    EnqueueCase(
        "pggroup cannot enqueue because queue resources are less than podgroup MinResources",
        (Group("pg1", "c1", "c1", 1, "Pending", min_resources={"cpu": "8", "memory": "8G"}),),
        (("c1", 1, "1", "1G"),),
        {"c1/pg1": "Pending"},
    ),
]


def _build(case: EnqueueCase) -> Cluster:
    c = Cluster(ENQUEUE_CONF).node("n0", cpu="64", memory="64Gi")
    for name, weight, cpu, memory in case.queues:
        c.queue(name, weight=weight, capability={"cpu": cpu, "memory": memory})
    node_of_running = "n0"
    for g in case.groups:
        key = f"{g.namespace}/{g.name}"
        manifest = PodGroup(
            metadata=ObjectMeta(name=g.name, namespace=g.namespace),
            spec=PodGroupSpec(min_member=g.min_member, queue=g.queue),
        )
        c.add(ev.PodGroupCreated(podgroup=key, job=key, manifest=manifest, min_resources=to_resources(g.min_resources)))
        if g.phase in ("Inqueue", "Running"):
            c.add(ev.PodGroupEnqueued(podgroup=key, job=key, queue=g.queue, rule="enqueue"))
        for i, (pod, cpu, memory) in enumerate(g.pods):
            name = f"{g.namespace}/{pod}"
            requests = to_resources({"cpu": cpu, "memory": memory}) | {"pods": 1}
            spec = Pod(metadata=ObjectMeta(name=pod, namespace=g.namespace), spec=PodSpec())
            c.add(ev.PodRequested(pod=name, job=key, podgroup=key, task="t", index=i, manifest=spec, requests=requests))
            if g.phase == "Running":
                c.add(ev.PodBound(pod=name, job=key, node=node_of_running, rule="allocate"))
                c.add(ev.PodStarted(pod=name, job=key, node=node_of_running))
        if g.phase == "Running":
            c.add(
                ev.PodGroupPhaseChanged(
                    podgroup=key, job=key, queue=g.queue, rule="session.job-status", phase="Running",
                    previous="Inqueue", reason="MinMemberAllocated",
                )
            )
    return c


@pytest.mark.parametrize("case", ENQUEUE_CASES, ids=[c.volcano for c in ENQUEUE_CASES])
def test_volcano_enqueue_cases(case: EnqueueCase) -> None:
    """Volcano: pkg/scheduler/actions/enqueue/enqueue_test.go, ``TestEnqueue`` (line 38), the case named."""
    c = _build(case)
    c.schedule()
    groups = c.state().podgroups
    assert {name: groups[name].phase for name in case.expected} == case.expected
