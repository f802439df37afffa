"""Volcano's own table-driven scheduler cases, as scenario tables: the same facts, eventbatch's sessions.

Each row names the Volcano test and case it comes from (volcano-sh/volcano at
commit ed72c7c815a9fd547a787134676f73d42e9d049c) with the line the case starts
at, and carries the facts of that case: podgroups (phase, minMember,
minTaskMember, minResources, priority class), pods (node, requests, labels,
node selector, priority), nodes, queues and priority classes, the tiers of
the Go test (``volcano_tables.vconf``: switches the Go test leaves nil are
off), and what Volcano expects (binds, evictions, pipelined tasks, phases).
``volcano_tables`` turns a row into events and runs one session. A row
eventbatch decides differently on purpose keeps Volcano's expectation in
``expect`` and eventbatch's in ``eventbatch``, with the reason in ``differs``
(docs/scheduler.md, "Differences from Volcano").

Ported: ``TestEnqueue`` (5 of 5), ``TestAllocate`` (6 of 6; Volcano's 7th name,
benchmark-allocate, is ``BenchmarkAllocate``'s), ``TestFareShareAllocate`` (3 of 3),
gang's ``TestShouldSkipUnschedulableForReleasing`` (5 of 5, 4 differ),
``TestPreempt`` (13 of 13), ``TestReclaim`` (9 of 9), proportion's
``TestEnqueueAndAllocable`` (5 of 5), capacity's ``TestEnqueueAndAllocatable``
(4 of 4), priority's ``TestPreempt`` (2 of 2), ``TestHDRF`` (2 of 2).
Volcano's test session for enqueue has no nodes; eventbatch's
enqueue admits nothing into a cluster without nodes (deliberate: docs/cluster.md),
so each ``TestEnqueue`` row has one node large enough not to matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from handlers.scheduler.conf import SchedulerConf, load_conf
from schemas import events as ev
from schemas.quantity import to_resources
from schemas.resources import ObjectMeta, Pod, PodGroup, PodGroupSpec, PodSpec
from tests.unit.scheduler.tables import Cluster
from tests.unit.scheduler.volcano_tables import Outcome, VCase, VGroup, VNode, VPod, VQueue, normalised, run, vconf

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


# --- allocate: pkg/scheduler/actions/allocate/allocate_test.go -----------------------------------

# TestAllocate's tier (line 245): gang (job order, ready, pipelined, starving), drf (preemptable,
# job order), proportion (queue order, reclaimable, allocatable), predicates, nodeorder.
ALLOCATE_CONF = vconf(
    "allocate",
    [
        ("gang", "JobOrder JobReady JobPipelined JobStarving"),
        ("drf", "Preemptable JobOrder"),
        ("proportion", "QueueOrder Reclaimable Allocatable"),
        ("predicates", "Predicate"),
        ("nodeorder", "NodeOrder"),
    ],
)


def _node(name: str, cpu: str, memory: str, **labels: str) -> VNode:
    return VNode(name, cpu, memory, pods=10, labels=labels)


ALLOCATE_CASES = [
    VCase(
        "prepredicate failed: node selector does not match", 86,
        (VGroup("pg1", "c1", "c1", 1, "Inqueue"),),
        (
            VPod("c1", "p1", "pg1", "1", "1G", task="master", selector={"nodeRole": "master"}),
            VPod("c1", "p2", "pg1", "1", "1G", task="worker", selector={"nodeRole": "worker"}),
        ),
        (_node("n1", "2", "4Gi", nodeRole="worker"),),
        (VQueue("c1"),),
        Outcome(binds={"c1/p2": "n1"}),
    ),
    VCase(
        "prepredicate failed and tasks are not used up, continue on until min member meet", 106,
        (VGroup("pg1", "c1", "c1", 2, "Inqueue", {"master": 1, "worker": 1}),),
        (
            VPod("c1", "p0", "pg1", "1", "1G", task="master", selector={"nodeRole": "master"}),
            VPod("c1", "p1", "pg1", "1", "1G", task="master", selector={"nodeRole": "master"}),
            VPod("c1", "p2", "pg1", "1", "1G", task="worker", selector={"nodeRole": "worker"}),
            VPod("c1", "p3", "pg1", "1", "1G", task="worker", selector={"nodeRole": "worker"}),
        ),
        (_node("n1", "1", "2Gi", nodeRole="master"), _node("n2", "1", "2Gi", nodeRole="worker")),
        (VQueue("c1"),),
        Outcome(binds={"c1/p0": "n1", "c1/p2": "n2"}),
    ),
    VCase(
        "master's min member can not be allocated, break from allocating", 130,
        (VGroup("pg1", "c1", "c1", 2, "Inqueue", {"master": 2, "worker": 0}),),
        (
            VPod("c1", "p0", "pg1", "1", "1G", task="master", selector={"nodeRole": "master"}),
            VPod("c1", "p1", "pg1", "1", "1G", task="master", selector={"nodeRole": "master"}),
            VPod("c1", "p2", "pg1", "1", "1G", task="worker", selector={"nodeRole": "worker"}),
            VPod("c1", "p3", "pg1", "1", "1G", task="worker", selector={"nodeRole": "worker"}),
        ),
        (_node("n1", "1", "2Gi", nodeRole="master"), _node("n2", "2", "2Gi", nodeRole="worker")),
        (VQueue("c1"),),
        Outcome(binds={}),
    ),
    VCase(
        "one Job with two Pods on one node", 151,
        (VGroup("pg1", "c1", "c1", 0, "Inqueue"),),
        (VPod("c1", "p1", "pg1", "1", "1G"), VPod("c1", "p2", "pg1", "1", "1G")),
        (_node("n1", "2", "4Gi"),),
        (VQueue("c1"),),
        Outcome(binds={"c1/p1": "n1", "c1/p2": "n1"}),
    ),
    VCase(
        "two Jobs on one node", 170,
        (VGroup("pg1", "c1", "c1", 0, "Inqueue"), VGroup("pg2", "c2", "c2", 0, "Inqueue")),
        (
            VPod("c1", "pg1-p-1", "pg1", "1", "1G"),
            VPod("c1", "pg1-p-2", "pg1", "1", "1G"),
            VPod("c2", "pg2-p-1", "pg2", "1", "1G"),
            VPod("c2", "pg2-p-2", "pg2", "1", "1G"),
        ),
        (_node("n1", "2", "4G"),),
        (VQueue("c1"), VQueue("c2")),
        Outcome(binds={"c2/pg2-p-1": "n1", "c1/pg1-p-1": "n1"}),
    ),
    VCase(
        "high priority queue should not block others", 202,
        (VGroup("pg1", "c1", "c1", 0, "Inqueue"), VGroup("pg2", "c1", "c2", 0, "Inqueue")),
        (VPod("c1", "p1", "pg1", "3", "1G"), VPod("c1", "p2", "pg2", "1", "1G")),
        (_node("n1", "2", "4G"),),
        (VQueue("c1"), VQueue("c2")),
        Outcome(binds={"c1/p2": "n1"}),
    ),
]


# TestFareShareAllocate's tier (line 2519): drf (preemptable, job order), proportion (queue order,
# reclaimable; allocatable off), predicates, nodeorder; no gang.
FARE_SHARE_CONF = vconf(
    "allocate",
    [
        ("drf", "Preemptable JobOrder"),
        ("proportion", "QueueOrder Reclaimable"),
        ("predicates", "Predicate"),
        ("nodeorder", "NodeOrder"),
    ],
)

FARE_SHARE_CASES = [
    VCase(
        "queue with low DRF share value has high priority, should allocate first", 2447,
        (
            VGroup("pg-small-1", "ns-1", "q-1", 0, "Running"),
            VGroup("pg-large-1", "ns-1", "q-1", 0, "Inqueue"),
            VGroup("pg-large-2", "ns-1", "q-2", 0, "Inqueue"),
        ),
        (
            VPod("ns-1", "pod-small-1", "pg-small-1", "1", "1G", node="node-1"),
            VPod("ns-1", "pod-large-1", "pg-large-1", "2", "2G"),
            VPod("ns-1", "pod-large-2", "pg-large-2", "3", "2G"),
        ),
        (_node("node-1", "5", "5G"),),
        (VQueue("q-1"), VQueue("q-2")),
        Outcome(binds={"ns-1/pod-large-2": "node-1"}),
    ),
    VCase(
        "queue's DRF share value will be updated and its priority will change before it is put back "
        "into the priority queue", 2470,
        (
            VGroup("pg-small-1", "ns-1", "q-1", 0, "Running"),
            VGroup("pg-large-1", "ns-1", "q-1", 0, "Inqueue"),
            VGroup("pg-small-2", "ns-1", "q-2", 0, "Inqueue"),
            VGroup("pg-large-2", "ns-1", "q-2", 0, "Inqueue"),
        ),
        (
            VPod("ns-1", "pod-small-1", "pg-small-1", "1", "1G", node="node-1"),
            VPod("ns-1", "pod-large-1", "pg-large-1", "2", "2G"),
            VPod("ns-1", "pod-large-2", "pg-large-2", "2", "2G"),
            VPod("ns-1", "pod-small-2", "pg-small-2", "1", "1G"),
        ),
        (_node("node-1", "5", "5G"),),
        (VQueue("q-1"), VQueue("q-2")),
        Outcome(binds={"ns-1/pod-large-1": "node-1", "ns-1/pod-large-2": "node-1"}),
    ),
    VCase(
        "queue's one jobs has no pending tasks, should be put back to queues for next job", 2495,
        (VGroup("pg-1", "ns-1", "q-1", 0, "Running"), VGroup("pg-2", "ns-1", "q-1", 0, "Inqueue")),
        (VPod("ns-1", "pod-1", "pg-1", "1", "1G", node="node-1"), VPod("ns-1", "pod-2", "pg-2", "2", "2G")),
        (_node("node-1", "5", "5G"),),
        (VQueue("q-1"),),
        Outcome(binds={"ns-1/pod-2": "node-1"}),
    ),
]


def _check(case: VCase, conf: SchedulerConf) -> None:
    got = run(case, conf)
    if case.differs:
        assert case.eventbatch is not None, "a case that differs says what eventbatch decides"
        assert normalised(got) == normalised(case.eventbatch)
        assert normalised(got) != normalised(case.expect), "no longer differs: drop the difference"
    else:
        assert normalised(got) == normalised(case.expect)


@pytest.mark.parametrize("case", ALLOCATE_CASES, ids=[c.volcano for c in ALLOCATE_CASES])
def test_volcano_allocate_cases(case: VCase) -> None:
    """Volcano: pkg/scheduler/actions/allocate/allocate_test.go, ``TestAllocate`` (line 76), the case
    named (its line in ``case.line``); binds checked exactly, as Volcano's ``CheckBind``."""
    _check(case, ALLOCATE_CONF)


@pytest.mark.parametrize("case", FARE_SHARE_CASES, ids=[c.volcano for c in FARE_SHARE_CASES])
def test_volcano_fare_share_allocate_cases(case: VCase) -> None:
    """Volcano: pkg/scheduler/actions/allocate/allocate_test.go, ``TestFareShareAllocate`` (line 2438)."""
    _check(case, FARE_SHARE_CONF)


# --- gang: pkg/scheduler/plugins/gang/gang_test.go -------------------------------------------------

# TestShouldSkipUnschedulableForReleasing (line 25) checks, on a bare job, whether gang's session
# close leaves out the Unschedulable condition of a job that is not ready (gang.go line 238): only
# when pods being deleted from their nodes, with the scheduled ones, reach minAvailable and nothing
# is pending or pipelined. Here each case is a session (allocate; gang and predicates) on 1-cpu
# nodes, the replacement asking for 2 cpu so that it fits nowhere, and the row checks the verdict
# (Volcano's condition: a ``PodGroupUnschedulable``) and the phase Volcano's job status update
# (framework/job_updater.go ``jobStatus``) derives from it.
GANG_CONF = vconf(
    "allocate",
    [("gang", "JobOrder JobReady JobPipelined JobStarving Preemptable Reclaimable"), ("predicates", "Predicate")],
)
_GANG_NODES = (_node("node-1", "1", "1G"), _node("node-2", "1", "1G"), _node("node-3", "1", "1G"))

GANG_CASES = [
    VCase(
        "partial termination", 43,
        (VGroup("job-1", "c1", "q1", 2, "Running"),),
        (
            VPod("c1", "running", "job-1", "1", "1G", node="node-1"),
            VPod("c1", "releasing", "job-1", "1", "1G", node="node-2", status="Releasing"),
        ),
        _GANG_NODES,
        (VQueue("q1"),),
        Outcome(unschedulable=(), phases={"c1/job-1": "Pending"}),
        differs="a podgroup whose pods are being deleted keeps its phase until they are gone (phases.py)",
        eventbatch=Outcome(unschedulable=(), phases={"c1/job-1": "Running"}),
    ),
    VCase(
        "pending replacement still needs condition", 52,
        (VGroup("job-1", "c1", "q1", 2, "Running"),),
        (
            VPod("c1", "running", "job-1", "1", "1G", node="node-1"),
            VPod("c1", "releasing", "job-1", "1", "1G", node="node-2", status="Releasing"),
            VPod("c1", "replacement", "job-1", "2", "1G"),
        ),
        _GANG_NODES,
        (VQueue("q1"),),
        Outcome(unschedulable=("c1/job-1",), phases={"c1/job-1": "Unknown"}),
    ),
    VCase(
        "pipelined replacement still needs condition", 61,
        (VGroup("job-1", "c1", "q1", 2, "Running"), VGroup("other", "c1", "q1", 1, "Running")),
        (
            VPod("c1", "running", "job-1", "1", "1G", node="node-1"),
            VPod("c1", "releasing", "job-1", "1", "1G", node="node-2", status="Releasing"),
            VPod("c1", "replacement", "job-1", "1", "1G", node="node-3", status="Pipelined"),
            VPod("c1", "leaving", "other", "1", "1G", node="node-3", status="Releasing"),
        ),
        _GANG_NODES,
        (VQueue("q1"),),
        Outcome(unschedulable=("c1/job-1",), phases={"c1/job-1": "Unknown"}),
        differs="a job pipelined whole onto resources being freed is waiting, not unschedulable",
        eventbatch=Outcome(unschedulable=(), phases={"c1/job-1": "Running"}),
    ),
    VCase(
        "never scheduled releasing task is not counted", 70,
        (VGroup("job-1", "c1", "q1", 1, "Inqueue"),),
        (VPod("c1", "releasing", "job-1", "1", "1G", status="Releasing"),),
        _GANG_NODES,
        (VQueue("q1"),),
        Outcome(unschedulable=("c1/job-1",), phases={"c1/job-1": "Inqueue"}),
        differs="a job with nothing to place gets no verdict",
        eventbatch=Outcome(unschedulable=(), phases={"c1/job-1": "Inqueue"}),
    ),
    VCase(
        "scheduled tasks below minAvailable", 77,
        (VGroup("job-1", "c1", "q1", 3, "Running"),),
        (
            VPod("c1", "running", "job-1", "1", "1G", node="node-1"),
            VPod("c1", "releasing", "job-1", "1", "1G", node="node-2", status="Releasing"),
        ),
        _GANG_NODES,
        (VQueue("q1"),),
        Outcome(unschedulable=("c1/job-1",), phases={"c1/job-1": "Unknown"}),
        differs="a job with nothing to place gets no verdict; below minMember its phase is Pending (phases.py)",
        eventbatch=Outcome(unschedulable=(), phases={"c1/job-1": "Pending"}),
    ),
]


@pytest.mark.parametrize("case", GANG_CASES, ids=[c.volcano for c in GANG_CASES])
def test_volcano_gang_cases(case: VCase) -> None:
    """Volcano: pkg/scheduler/plugins/gang/gang_test.go, ``TestShouldSkipUnschedulableForReleasing``
    (line 25), the case named, as a session: verdict and phase after gang's session close."""
    _check(case, GANG_CONF)


# --- preempt: pkg/scheduler/actions/preempt/preempt_test.go ----------------------------------------

# TestPreempt's tier (line 440): conformance (preemptable), gang (preemptable, pipelined, starving),
# priority (task order, job order, preemptable, pipelined, starving), proportion (overused,
# allocatable, queue order); priority classes high-priority 100000 and low-priority 10.
PREEMPT_CONF = vconf(
    "preempt",
    [
        ("conformance", "Preemptable"),
        ("gang", "Preemptable JobPipelined JobStarving"),
        ("priority", "TaskOrder JobOrder Preemptable JobPipelined JobStarving"),
        ("proportion", "Overused Allocatable QueueOrder"),
    ],
)
_PRIO = (("high-priority", 100000), ("low-priority", 10))
_YES = {"volcano.sh/preemptable": "true"}
_NO = {"volcano.sh/preemptable": "false"}


def _pg(name: str, queue: str, min_member: int, tasks: dict[str, int] | None = None, prio: str = "") -> VGroup:
    return VGroup(name, "c1", queue, min_member, "Inqueue", tasks or {}, prio)


PREEMPT_CASES = [
    VCase(
        "do not preempt if there are enough idle resources", 108,
        (_pg("pg1", "q1", 3, {"": 3}),),
        (
            VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1"),
            VPod("c1", "preemptee2", "pg1", "1", "1G", node="n1"),
            VPod("c1", "preemptor1", "pg1", "1", "1G"),
        ),
        (_node("n1", "10", "10G"),),
        (VQueue("q1"),),
        Outcome(evicted=()),
        _PRIO,
    ),
    VCase(
        "do not preempt if job is pipelined", 126,
        (_pg("pg1", "q1", 1, {"": 2}), _pg("pg2", "q1", 1, {"": 2})),
        (
            VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1"),
            VPod("c1", "preemptee2", "pg1", "1", "1G", node="n1"),
            VPod("c1", "preemptee3", "pg2", "1", "1G", node="n1"),
            VPod("c1", "preemptor2", "pg2", "1", "1G"),
        ),
        (_node("n1", "3", "3G"),),
        (VQueue("q1"),),
        Outcome(evicted=()),
        _PRIO,
    ),
    VCase(
        "preempt one task of different job to fit both jobs on one node", 148,
        (_pg("pg1", "q1", 1, {"": 2}, "low-priority"), _pg("pg2", "q1", 1, {"": 2}, "high-priority")),
        (
            VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "preemptee2", "pg1", "1", "1G", node="n1", labels=_NO),
            VPod("c1", "preemptor1", "pg2", "1", "1G"),
            VPod("c1", "preemptor2", "pg2", "1", "1G"),
        ),
        (_node("n1", "2", "2G"),),
        (VQueue("q1"),),
        Outcome(evicted=("c1/preemptee1",)),
        _PRIO,
    ),
    VCase(
        "preempt enough tasks to fit large task of different job", 168,
        (_pg("pg1", "q1", 1, {"": 3}, "low-priority"), _pg("pg2", "q1", 1, {"": 1}, "high-priority")),
        (
            VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "preemptee2", "pg1", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "preemptee3", "pg1", "1", "1G", node="n1", labels=_NO),
            VPod("c1", "preemptor1", "pg2", "5", "5G"),
        ),
        (_node("n1", "6", "6G"),),
        (VQueue("q1"),),
        Outcome(evicted=("c1/preemptee1", "c1/preemptee2")),
        _PRIO,
    ),
    VCase(
        "preempt low priority job in same queue", 191,
        (_pg("pg1", "q1", 0, {}, "low-priority"), _pg("pg2", "q1", 1, {"": 1}, "high-priority")),
        (
            VPod("c1", "preemptee1", "pg1", "3", "3G", node="n1", labels=_YES),
            VPod("c1", "preemptor1", "pg2", "3", "3G"),
        ),
        (_node("n1", "12", "12G"),),
        (VQueue("q1", capability={"cpu": "4", "memory": "4G"}),),
        Outcome(evicted=("c1/preemptee1",)),
        _PRIO,
    ),
    VCase(
        "preempt low priority job in same queue: allocatable and has enough resource, don't preempt", 210,
        (_pg("pg1", "q1", 1, {}, "low-priority"), _pg("pg2", "q1", 1, {"": 1}, "high-priority")),
        (
            VPod("c1", "preemptee1", "pg1", "3", "3G", node="n1", labels=_YES),
            VPod("c1", "preemptor1", "pg2", "3", "3G"),
        ),
        (_node("n1", "12", "12G"),),
        (VQueue("q1", capability={"cpu": "6", "memory": "6G"}),),
        Outcome(evicted=()),
        _PRIO,
    ),
    VCase(
        "preempt low priority job in same queue but not pod with preemptable=false or higher priority", 228,
        (_pg("pg1", "q1", 1, {}, "low-priority"), _pg("pg2", "q1", 1, {"": 1}, "high-priority")),
        (
            VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_NO),
            VPod("c1", "preemptee2", "pg1", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "preemptee3", "pg1", "1", "1G", node="n1", labels=_YES, priority=100000),
            VPod("c1", "preemptor1", "pg2", "1", "1G"),
        ),
        (_node("n1", "12", "12G"),),
        (VQueue("q1", capability={"cpu": "3", "memory": "3G"}),),
        Outcome(evicted=("c1/preemptee2",)),
        _PRIO,
    ),
    VCase(
        "unBestEffort high-priority pod preempt BestEffort low-priority pod in same queue", 249,
        (_pg("pg1", "q1", 0, {}, "low-priority"), _pg("pg2", "q1", 1, {"": 1}, "high-priority")),
        (
            VPod("c1", "preemptee1", "pg1", "", "", node="n1", labels=_YES),
            VPod("c1", "preemptor1", "pg2", "3", "3G"),
        ),
        (VNode("n1", "12", "12G", pods=1),),
        (VQueue("q1", capability={"cpu": "6", "memory": "6G"}),),
        Outcome(evicted=("c1/preemptee1",)),
        _PRIO,
    ),
    VCase(
        "BestEffort high-priority pod preempt BestEffort low-priority pod in same queue", 268,
        (_pg("pg1", "q1", 0, {}, "low-priority"), _pg("pg2", "q1", 1, {"": 1}, "high-priority")),
        (
            VPod("c1", "preemptee1", "pg1", "", "", node="n1", labels=_YES),
            VPod("c1", "preemptor1", "pg2", "", ""),
        ),
        (VNode("n1", "12", "12G", pods=1),),
        (VQueue("q1", capability={"cpu": "6", "memory": "6G"}),),
        Outcome(evicted=("c1/preemptee1",)),
        _PRIO,
    ),
    VCase(
        # The preemptor's preemptionPolicy: Never (BuildPodWithPreemptionPolicy).
        "can not preempt resources when task preemption policy is never", 287,
        (_pg("pg1", "q1", 0, {}, "low-priority"), _pg("pg2", "q1", 1, {}, "high-priority")),
        (
            VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "preemptor1", "pg2", "1", "1G", preemption_policy="Never"),
        ),
        (VNode("n1", "1", "1Gi", pods=1),),
        (VQueue("q1"),),
        Outcome(evicted=()),
        _PRIO,
    ),
    VCase(
        "rollback evictions when preemptor exceeds queue capacity after evicting victims", 314,
        (_pg("pg1", "q1", 1, {"": 2}, "low-priority"), _pg("pg2", "q1", 1, {"": 1}, "high-priority")),
        (
            VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "preemptee2", "pg1", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "preemptor1", "pg2", "4", "4G"),
        ),
        (_node("n1", "10", "10G"),),
        (VQueue("q1", capability={"cpu": "3", "memory": "3G"}),),
        Outcome(evicted=()),
        _PRIO,
    ),
    VCase(
        "only commit evictions on the node where preemption succeeds", 337,
        (
            _pg("pg1", "q1", 0, {}, "low-priority"),
            _pg("pg2", "q1", 1, {"": 1}, "high-priority"),
            _pg("pg3", "q1", 0, {}, "low-priority"),
        ),
        (
            VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "preemptee2", "pg3", "4", "4G", node="n2", labels=_YES),
            VPod("c1", "preemptor1", "pg2", "3", "3G"),
        ),
        (_node("n1", "3", "3G"), _node("n2", "4", "4G")),
        (VQueue("q1", capability={"cpu": "6", "memory": "6G"}),),
        Outcome(evicted=("c1/preemptee2",)),
        _PRIO,
    ),
    VCase(
        "multi-queue: preemptorTasks must not be overwritten by intra-job preemption of another queue", 374,
        (
            VGroup("pg1", "c1", "q1", 1, "Inqueue", {"": 1}),
            _pg("pg2", "q2", 0, {}, "low-priority"),
            _pg("pg3", "q2", 1, {"": 1}, "high-priority"),
        ),
        (
            VPod("c1", "q1-runner1", "pg1", "1", "1G", node="n1"),
            VPod("c1", "q2-preemptee1", "pg2", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "q2-preemptor1", "pg3", "1", "1G"),
        ),
        (_node("n1", "2", "2G"),),
        (VQueue("q1"), VQueue("q2", capability={"cpu": "4", "memory": "4G"})),
        Outcome(evicted=("c1/q2-preemptee1",)),
        _PRIO,
    ),
]


@pytest.mark.parametrize("case", PREEMPT_CASES, ids=[c.volcano for c in PREEMPT_CASES])
def test_volcano_preempt_cases(case: VCase) -> None:
    """Volcano: pkg/scheduler/actions/preempt/preempt_test.go, ``TestPreempt`` (line 99), the case
    named; evictions checked exactly, as Volcano's ``CheckEvict``."""
    _check(case, PREEMPT_CONF)


# --- reclaim: pkg/scheduler/actions/reclaim/reclaim_test.go ----------------------------------------

# TestReclaim's tier (line 386): conformance (reclaimable), gang (reclaimable, starving), proportion
# and capacity (reclaimable, queue order, preemptive), priority (reclaimable, job order, task order);
# each case builds only the plugins it names, so its conf is the tier less the others.
_RECLAIM_TIER = {
    "conformance": "Reclaimable",
    "gang": "Reclaimable JobStarving",
    "proportion": "Reclaimable QueueOrder Preemptive",
    "capacity": "Reclaimable QueueOrder Preemptive",
    "priority": "Reclaimable JobOrder TaskOrder",
}


def _reclaim_conf(plugins: str) -> SchedulerConf:
    names = plugins.split()
    return vconf("reclaim", [(name, flags) for name, flags in _RECLAIM_TIER.items() if name in names])


_CGP = "conformance gang proportion"
_CGPP = "conformance gang priority proportion"
_LMH = (("low-priority", 100), ("mid-priority", 500), ("high-priority", 1000))


def _rg(name: str, queue: str, min_member: int, prio: str, phase: str = "Inqueue") -> VGroup:
    return VGroup(name, "c1", queue, min_member, phase, {}, prio)


RECLAIM_CASES = [
    (
        _CGP,
        VCase(
            "Two Queue with one Queue overusing resource, should reclaim", 49,
            (_rg("pg1", "q1", 1, "low-priority"), _rg("pg2", "q2", 1, "high-priority")),
            (
                VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "preemptee2", "pg1", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptee3", "pg1", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "preemptor1", "pg2", "1", "1G"),
            ),
            (_node("n1", "3", "3Gi"),),
            (VQueue("q1"), VQueue("q2")),
            Outcome(evicted=("c1/preemptee2",)),
        ),
    ),
    (
        _CGPP,
        VCase(
            "sort reclaimees when reclaiming from overusing queue", 76,
            (_rg("pg1", "q1", 1, "mid-priority"), _rg("pg2", "q2", 1, "low-priority"), _rg("pg3", "q3", 1, "high-priority")),
            (
                VPod("c1", "preemptee1-1", "pg1", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptee1-2", "pg1", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptee2-1", "pg2", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptee2-2", "pg2", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "preemptor1", "pg3", "1", "1G"),
            ),
            (_node("n1", "4", "4Gi"),),
            (VQueue("q1"), VQueue("q2"), VQueue("q3")),
            Outcome(evicted=("c1/preemptee2-1",)),
            _LMH,
        ),
    ),
    (
        _CGP,
        VCase(
            # The podgroups name mid-priority, a class this case does not create: priority 0 for all.
            "sort reclaimees when reclaiming from overusing queues with different queue priority", 111,
            (_rg("pg1", "q1", 1, "mid-priority"), _rg("pg2", "q2", 1, "mid-priority"), _rg("pg3", "q3", 1, "mid-priority")),
            (
                VPod("c1", "preemptee1-1", "pg1", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptee1-2", "pg1", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "preemptee2-1", "pg2", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptee2-2", "pg2", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "preemptor1", "pg3", "1", "1G"),
            ),
            (_node("n1", "4", "4Gi"),),
            (VQueue("q1", priority=5), VQueue("q2", priority=10), VQueue("q3", priority=1)),
            Outcome(evicted=("c1/preemptee1-1",)),
        ),
    ),
    (
        _CGP,
        VCase(
            # high-priority has preemptionPolicy Never; so has the preemptor (BuildPodWithPreemptionPolicy).
            "can not reclaim resources when task preemption policy is never", 140,
            (_rg("pg1", "q1", 0, "low-priority"), _rg("pg2", "q2", 0, "high-priority")),
            (
                VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptor1", "pg2", "1", "1G", preemption_policy="Never"),
            ),
            (VNode("n1", "1", "1Gi", pods=1),),
            (VQueue("q1", weight=5), VQueue("q2", weight=10)),
            Outcome(evicted=()),
            (("low-priority", 100), ("high-priority", 1000)),
        ),
    ),
    (
        _CGP,
        VCase(
            "can not reclaim resources when queue is not open(proportion plugin)", 168,
            (_rg("pg1", "q1", 1, "low-priority", "Running"), _rg("pg2", "q2", 1, "high-priority")),
            (
                VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "preemptee2", "pg1", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptee3", "pg1", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "preemptor1", "pg2", "1", "1G"),
            ),
            (_node("n1", "3", "3Gi"),),
            (VQueue("q1"), VQueue("q2", state="Closed")),
            Outcome(evicted=()),
        ),
    ),
    (
        "conformance gang capacity",
        VCase(
            "can not reclaim resources when queue is not open(capacity plugin)", 194,
            (_rg("pg1", "q1", 1, "low-priority", "Running"), _rg("pg2", "q2", 1, "high-priority")),
            (
                VPod("c1", "preemptee1", "pg1", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "preemptee2", "pg1", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptee3", "pg1", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "preemptor1", "pg2", "1", "1G"),
            ),
            (_node("n1", "3", "3Gi"),),
            (VQueue("q1"), VQueue("q2", state="Closed")),
            Outcome(evicted=()),
        ),
    ),
    (
        _CGPP,
        VCase(
            "Node available resources should be included in reclaimed resources", 220,
            (
                _rg("pg1", "q1", 0, "mid-priority", "Running"),
                _rg("pg2", "q2", 0, "mid-priority", "Running"),
                _rg("pg3", "q3", 1, "mid-priority"),
            ),
            (
                VPod("c1", "preemptee1-1", "pg1", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptee2-1", "pg2", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptor1", "pg3", "2", "1G"),
            ),
            (_node("n1", "10", "2Gi"),),
            (VQueue("q1", priority=1), VQueue("q2", priority=2), VQueue("q3", weight=3)),
            Outcome(evicted=("c1/preemptee1-1",)),
            _LMH,
        ),
    ),
    (
        "conformance gang proportion priority",
        VCase(
            # high-priority-no-preempt has preemptionPolicy Never; so has the first preemptor: the
            # second one reclaims.
            "Reclaim succeeds for second task when first task has PreemptionPolicy=Never", 252,
            (
                _rg("pg-victim", "q1", 1, "low-priority", "Running"),
                _rg("pg-preemptor", "q2", 2, "high-priority-no-preempt"),
            ),
            (
                VPod("c1", "victim-pod-no", "pg-victim", "1", "1G", node="n1", labels=_NO),
                VPod("c1", "victim-pod", "pg-victim", "1", "1G", node="n1", labels=_YES),
                VPod("c1", "preemptor-task1-non-preemptable", "pg-preemptor", "1", "1G", preemption_policy="Never"),
                VPod("c1", "preemptor-task2-preemptable", "pg-preemptor", "1", "1G"),
            ),
            (_node("n1", "2", "2G"),),
            (VQueue("q1"), VQueue("q2")),
            Outcome(evicted=("c1/victim-pod",)),
            (("low-priority", 100), ("high-priority-no-preempt", 1000), ("high-priority-can-preempt", 900)),
        ),
    ),
    (
        _CGP,
        VCase(
            "only commit evictions on the node where reclaim succeeds", 282,
            (_rg("pg-victim", "q1", 0, "low-priority", "Running"), _rg("pg-preemptor", "q2", 1, "low-priority")),
            (
                VPod("c1", "victim-n1", "pg-victim", "2", "2G", node="n1", labels=_YES),
                VPod("c1", "preemptor1", "pg-preemptor", "3", "3G"),
            ),
            (_node("n1", "10", "10G"),),
            (VQueue("q1"), VQueue("q2", weight=9)),
            Outcome(evicted=()),
        ),
    ),
]


@pytest.mark.parametrize("plugins,case", RECLAIM_CASES, ids=[c.volcano for _, c in RECLAIM_CASES])
def test_volcano_reclaim_cases(plugins: str, case: VCase) -> None:
    """Volcano: pkg/scheduler/actions/reclaim/reclaim_test.go, ``TestReclaim`` (line 47), the case
    named, with the plugins that case builds; evictions checked exactly."""
    _check(case, _reclaim_conf(plugins))


# --- proportion: pkg/scheduler/plugins/proportion/proportion_test.go -------------------------------

# TestEnqueueAndAllocable (line 289): enqueue then allocate, proportion alone, with three switch sets.
_P_ALL = vconf("enqueue, allocate", [("proportion", "Allocatable Overused JobEnqueued")])
_P_ENQUEUEABLE = vconf("enqueue, allocate", [("proportion", "JobEnqueued")])
_P_ALLOCATABLE = vconf("enqueue, allocate", [("proportion", "Allocatable")])


def _ea(name: str, queue: str, phase: str, cpu: str, memory: str) -> VGroup:
    return VGroup(name, "ns1", queue, 1, phase, min_resources={"cpu": cpu, "memory": memory})


_EA_NODES = (_node("n1", "2", "2G"), _node("n2", "2", "2G"))
_EA_RUNNING = (_ea("pg1", "q1", "Running", "1", "2G"), _ea("pg2", "q2", "Running", "2", "1G"))
_EA_RUNNING_PODS = (
    VPod("ns1", "pod1", "pg1", "1", "2G", node="n1"),
    VPod("ns1", "pod2", "pg2", "2", "1G", node="n2"),
)
_EA_QUEUES = (VQueue("q1", capability={"cpu": "2", "memory": "2G"}), VQueue("q2", capability={"cpu": "3", "memory": "3G"}))

ENQUEUE_ALLOCATABLE_CASES = [
    (
        _P_ALL,
        VCase(
            "case0: memory exceed derserved, job only request cpu can be enqueued and allocated", 363,
            (*_EA_RUNNING, _ea("pg3", "q1", "Pending", "1", "0G")),
            (*_EA_RUNNING_PODS, VPod("ns1", "pod3", "pg3", "1", "0G")),
            _EA_NODES,
            _EA_QUEUES,
            Outcome(binds={"ns1/pod3": "n1"}),
        ),
    ),
    (
        _P_ALL,
        VCase(
            "case1: cpu exceed derserved, job only request memory can be enqueued and allocated", 376,
            (*_EA_RUNNING, _ea("pg4", "q2", "Pending", "0", "1G")),
            (*_EA_RUNNING_PODS, VPod("ns1", "pod4", "pg4", "0", "1G")),
            _EA_NODES,
            _EA_QUEUES,
            Outcome(binds={"ns1/pod4": "n2"}),
        ),
    ),
    (
        _P_ENQUEUEABLE,
        VCase(
            "case2: exceed capacity, can not enqueue", 389,
            (*_EA_RUNNING, _ea("pg5", "q1", "Pending", "1", "1G")),
            (*_EA_RUNNING_PODS, VPod("ns1", "pod5", "pg5", "1", "1G")),
            _EA_NODES,
            _EA_QUEUES,
            Outcome(binds={}, phases={"ns1/pg5": "Pending"}),
        ),
    ),
    (
        _P_ALLOCATABLE,
        VCase(
            "case3: exceed deserved, can not allocate", 402,
            (*_EA_RUNNING, _ea("pg5", "q1", "Pending", "1", "1G")),
            (*_EA_RUNNING_PODS, VPod("ns1", "pod5", "pg5", "1", "1G")),
            _EA_NODES,
            _EA_QUEUES,
            Outcome(binds={}),
        ),
    ),
    (
        _P_ENQUEUEABLE,
        VCase(
            "case4: queue with  non-open state, can not enqueue", 415,
            (VGroup("pg6", "ns1", "q3", 1, "Pending", min_resources={"cpu": "1", "memory": "1G"}),),
            (VPod("ns1", "pod6", "pg6", "1", "1G"),),
            _EA_NODES,
            (VQueue("q3", capability={"cpu": "3", "memory": "3G"}, state="Closed"),),
            Outcome(binds={}, phases={"ns1/pg6": "Pending"}),
        ),
    ),
]


@pytest.mark.parametrize("conf,case", ENQUEUE_ALLOCATABLE_CASES, ids=[c.volcano for _, c in ENQUEUE_ALLOCATABLE_CASES])
def test_volcano_proportion_enqueue_and_allocatable_cases(conf: SchedulerConf, case: VCase) -> None:
    """Volcano: pkg/scheduler/plugins/proportion/proportion_test.go, ``TestEnqueueAndAllocable``
    (line 289), the case named with its switch set; binds checked exactly."""
    _check(case, conf)


# --- capacity: pkg/scheduler/plugins/capacity/capacity_test.go -------------------------------------

# TestEnqueueAndAllocatable (line 399): enqueue then allocate, capacity alone (allocatable,
# preemptive, overused, job enqueued); q1 deserves 2 cpu 2G (capability the same), q2 deserves
# 2 cpu 2G (capability 3 cpu 3G); nodes of 3 cpu 3G.
_C_CONF = vconf("enqueue, allocate", [("capacity", "Allocatable Preemptive Overused JobEnqueued")])
_CA_NODES = (_node("n1", "3", "3G"), _node("n2", "3", "3G"))
_CA_RUNNING = (_ea("pg1", "q1", "Running", "1", "3G"), _ea("pg2", "q2", "Running", "3", "1G"))
_CA_RUNNING_PODS = (
    VPod("ns1", "pod1", "pg1", "1", "3G", node="n1"),
    VPod("ns1", "pod2", "pg2", "3", "1G", node="n2"),
)
_CA_QUEUES = (
    VQueue("q1", deserved={"cpu": "2", "memory": "2G"}, capability={"cpu": "2", "memory": "2G"}),
    VQueue("q2", deserved={"cpu": "2", "memory": "2G"}, capability={"cpu": "3", "memory": "3G"}),
)

CAPACITY_ENQUEUE_CASES = [
    VCase(
        "case0: memory exceed derserved, job only request cpu can be enqueued and allocated", 452,
        (*_CA_RUNNING, _ea("pg3", "q1", "Pending", "1", "0G")),
        (*_CA_RUNNING_PODS, VPod("ns1", "pod3", "pg3", "1", "0G")),
        _CA_NODES,
        _CA_QUEUES,
        Outcome(binds={"ns1/pod3": "n1"}),
    ),
    VCase(
        "case1: cpu exceed derserved, job only request memory can be enqueued and allocated", 462,
        (*_CA_RUNNING, _ea("pg4", "q2", "Pending", "0", "1G")),
        (*_CA_RUNNING_PODS, VPod("ns1", "pod4", "pg4", "0", "1G")),
        _CA_NODES,
        _CA_QUEUES,
        Outcome(binds={"ns1/pod4": "n2"}),
    ),
    VCase(
        "case2: exceed capacity, can not enqueue", 472,
        (*_CA_RUNNING, _ea("pg5", "q1", "Pending", "1", "1G")),
        (*_CA_RUNNING_PODS, VPod("ns1", "pod5", "pg5", "1", "1G")),
        _CA_NODES,
        _CA_QUEUES,
        Outcome(binds={}, phases={"ns1/pg5": "Pending"}),
    ),
    VCase(
        "case4: queue with non-open state, can not enqueue", 482,
        (VGroup("pg6", "ns1", "q3", 1, "Pending", min_resources={"cpu": "1", "memory": "1G"}),),
        (VPod("ns1", "pod6", "pg6", "1", "1G"),),
        _CA_NODES,
        (VQueue("q3", capability={"cpu": "3", "memory": "3G"}, state="Closed"),),
        Outcome(binds={}, phases={"ns1/pg6": "Pending"}),
    ),
]


@pytest.mark.parametrize("case", CAPACITY_ENQUEUE_CASES, ids=[c.volcano for c in CAPACITY_ENQUEUE_CASES])
def test_volcano_capacity_enqueue_and_allocatable_cases(case: VCase) -> None:
    """Volcano: pkg/scheduler/plugins/capacity/capacity_test.go, ``TestEnqueueAndAllocatable``
    (line 399), the case named; binds checked exactly."""
    _check(case, _C_CONF)


# --- priority: pkg/scheduler/plugins/priority/priority_test.go ------------------------------------

# TestPreempt (line 139): allocate then preempt, priority alone, its preemptable (and reclaimable)
# switches on in the first case and off in the second.
_PRIORITY_ON = vconf("allocate, preempt", [("priority", "TaskOrder JobOrder Preemptable Reclaimable JobStarving")])
_PRIORITY_OFF = vconf("allocate, preempt", [("priority", "TaskOrder JobOrder JobStarving")])
_LH = (("low-priority", 100), ("high-priority", 1000))

PRIORITY_PREEMPT_CASES = [
    (
        _PRIORITY_ON,
        VCase(
            "enable preempt low priority: enablePreemptable:true", 151,
            (
                VGroup("pg1", "ns1", "q1", 1, "Inqueue", {}, "low-priority"),
                VGroup("pg2", "ns2", "q1", 1, "Inqueue", {}, "high-priority"),
            ),
            (
                VPod("ns1", "preemptee1", "pg1", "3", "3G", node="node1", labels=_YES),
                VPod("ns1", "preemptee2", "pg1", "3", "3G", node="node1", labels=_YES, priority=1000),
                VPod("ns2", "preemptor1", "pg2", "3", "3G"),
            ),
            (_node("node1", "6", "6G"), _node("node2", "2", "2G")),
            (VQueue("q1", capability={"cpu": "6", "memory": "6G"}),),
            Outcome(evicted=("ns1/preemptee1",), pipelined={"ns2/pg2": ("node1",)}),
            _LH,
        ),
    ),
    (
        _PRIORITY_OFF,
        VCase(
            "disable preempt low priority: enablePreemptable:false", 185,
            (
                VGroup("pg1", "ns1", "q1", 1, "Inqueue", {}, "low-priority"),
                VGroup("pg2", "ns2", "q1", 1, "Inqueue", {}, "high-priority"),
            ),
            (
                VPod("ns1", "preemptee1", "pg1", "3", "3G", node="node1", labels=_YES),
                VPod("ns1", "preemptee2", "pg1", "3", "3G", node="node2", labels=_NO),
                VPod("ns2", "preemptor1", "pg2", "3", "3G"),
            ),
            (_node("node1", "3", "3G"), _node("node2", "3", "3G")),
            (VQueue("q1", capability={"cpu": "6", "memory": "6G"}),),
            Outcome(evicted=(), pipelined={}),
            _LH,
        ),
    ),
]


@pytest.mark.parametrize("conf,case", PRIORITY_PREEMPT_CASES, ids=[c.volcano for _, c in PRIORITY_PREEMPT_CASES])
def test_volcano_priority_preempt_cases(conf: SchedulerConf, case: VCase) -> None:
    """Volcano: pkg/scheduler/plugins/priority/priority_test.go, ``TestPreempt`` (line 139), the
    case named; evictions and pipelined tasks checked exactly."""
    _check(case, conf)


# --- drf: pkg/scheduler/plugins/drf/hdrf_test.go ----------------------------------------------------

# TestHDRF (line 56): allocate, drf (hierarchy, queue order, job order) and proportion (job
# enqueued, queue order, reclaimable). Volcano's queues form their tree with the annotations
# volcano.sh/hierarchy ("root/eng/dev") and volcano.sh/hierarchy-weights ("100/50/50"); here the
# same tree is spec.parent and each queue's weight its own level's. Volcano's check compares the
# whole expected map with each job's allocation (never equal, so it cannot fail): the rows assert
# the allocation its table states, pods per podgroup (each pod 1 cpu and/or 1G).
HDRF_CONF = vconf(
    "allocate", [("drf", "Hierarchy QueueOrder JobOrder"), ("proportion", "JobEnqueued QueueOrder Reclaimable")]
)


def _many(group: str, count: int, cpu: str, memory: str) -> tuple[VPod, ...]:
    return tuple(VPod("default", f"{group}-p{i}", group, cpu, memory) for i in range(count))


HDRF_CASES = [
    VCase(
        "rescaling test", 66,
        (
            VGroup("pg1", "default", "root-sci", 0, "Inqueue"),
            VGroup("pg21", "default", "root-eng-dev", 0, "Inqueue"),
            VGroup("pg22", "default", "root-eng-prod", 0, "Inqueue"),
        ),
        _many("pg1", 10, "1", "1G") + _many("pg21", 10, "1", "0G") + _many("pg22", 10, "0", "1G"),
        (VNode("n", "10", "10G", pods=50),),
        (
            VQueue("root-sci", weight=50),
            VQueue("root-eng", weight=50),
            VQueue("root-eng-dev", weight=50, parent="root-eng"),
            VQueue("root-eng-prod", weight=50, parent="root-eng"),
        ),
        Outcome(placed={"default/pg1": 5, "default/pg21": 5, "default/pg22": 5}),
    ),
    VCase(
        # pg32 is in queue root-pg3-pg31 in Volcano's table, as here.
        "blocking nodes test", 113,
        (
            VGroup("pg1", "default", "root-pg1", 0, "Inqueue"),
            VGroup("pg2", "default", "root-pg2", 0, "Inqueue"),
            VGroup("pg31", "default", "root-pg3-pg31", 0, "Inqueue"),
            VGroup("pg32", "default", "root-pg3-pg31", 0, "Inqueue"),
            VGroup("pg4", "default", "root-pg4", 0, "Inqueue"),
        ),
        _many("pg1", 30, "1", "0G")
        + _many("pg2", 30, "1", "0G")
        + _many("pg31", 30, "1", "0G")
        + _many("pg32", 30, "0", "1G")
        + _many("pg4", 30, "0", "1G"),
        (VNode("n", "30", "30G", pods=500),),
        (
            VQueue("root-pg1", weight=25),
            VQueue("root-pg2", weight=25),
            VQueue("root-pg3", weight=25),
            VQueue("root-pg3-pg31", weight=50, parent="root-pg3"),
            VQueue("root-pg3-pg32", weight=50, parent="root-pg3"),
            VQueue("root-pg4", weight=25),
        ),
        Outcome(placed={"default/pg1": 10, "default/pg2": 10, "default/pg31": 10, "default/pg32": 15, "default/pg4": 15}),
    ),
]


@pytest.mark.parametrize("case", HDRF_CASES, ids=[c.volcano for c in HDRF_CASES])
def test_volcano_hdrf_cases(case: VCase) -> None:
    """Volcano: pkg/scheduler/plugins/drf/hdrf_test.go, ``TestHDRF`` (line 56), the case named."""
    _check(case, HDRF_CONF)
