"""More of Volcano's table-driven scheduler cases, as scenario tables (continues ``test_volcano_cases``).

Same style as ``test_volcano_cases``: each row names the Volcano test and
case it comes from (volcano-sh/volcano at commit
ed72c7c815a9fd547a787134676f73d42e9d049c) with the line the case starts at,
carries that case's facts, the tiers of the Go test
(``volcano_tables.vconf``) and what Volcano expects. A row eventbatch decides
differently keeps Volcano's expectation in ``expect`` and eventbatch's in
``eventbatch``, with the reason in ``differs`` (docs/scheduler.md,
"Differences from Volcano").

Ported: capacity's ``Test_capacityPlugin_OnSessionOpenWithoutHierarchy`` (11 of
11, 1 differs) and ``Test_capacityPlugin_OnSessionOpenWithHierarchy`` (13 of 13,
2 differ), predicates' ``TestEventHandler``, ``TestNodeNum`` and
``TestPodAntiAffinity`` (1 each). Not ported, and why: docs/scheduler.md.

Volcano's ``CheckAll`` checks binds exactly in every case (a case naming
none expects none), so every row here checks them.

Also here: a pod's ``preemptionPolicy: Never`` (its own, or its
PriorityClass's), which preempt and reclaim honour as Volcano does.
"""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import SchedulerConf
from tests.unit.scheduler.volcano_tables import Outcome, VCase, VGroup, VNode, VPod, VQueue, normalised, run, vconf


def _check(case: VCase, conf: SchedulerConf) -> None:
    got = run(case, conf)
    if case.differs:
        assert case.eventbatch is not None, "a case that differs says what eventbatch decides"
        assert normalised(got) == normalised(case.eventbatch)
        assert normalised(got) != normalised(case.expect), "no longer differs: drop the difference"
    else:
        assert normalised(got) == normalised(case.expect)


def _n(name: str, cpu: str, memory: str, *, pods: int = 10, scalars: dict[str, str] | None = None, **labels: str) -> VNode:
    return VNode(name, cpu, memory, pods=pods, labels=labels, scalars=scalars or {})


_YES = {"volcano.sh/preemptable": "true"}
_NO = {"volcano.sh/preemptable": "false"}


# --- preemptionPolicy: Never ---------------------------------------------------------------------

# preempt.go line 441 (taskEligibleToPreempt) and reclaim.go line 145: a pod whose
# spec.preemptionPolicy is Never evicts nobody; it is still placed where there is room. Kubernetes'
# priority admission gives a pod without a policy its PriorityClass's.
_PREEMPT = vconf(
    "allocate, preempt",
    [("gang", "JobPipelined JobStarving"), ("priority", "TaskOrder JobOrder Preemptable JobStarving")],
)
_RECLAIM = vconf("reclaim", [("gang", "JobStarving"), ("proportion", "Reclaimable QueueOrder Allocatable")])


def _preempt_case(policy: str = "", priority_class: str = "high", never: tuple[str, ...] = ()) -> VCase:
    return VCase(
        "preemptionPolicy", 0,
        (VGroup("low", "c1", "q1", 1, "Running", {}, "low"), VGroup("high", "c1", "q1", 1, "Inqueue", {}, "high")),
        (
            VPod("c1", "victim", "low", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "preemptor", "high", "1", "1G", preemption_policy=policy, priority_class=priority_class),
        ),
        (_n("n1", "1", "1G"),),
        (VQueue("q1"),),
        Outcome(),
        (("low", 10), ("high", 1000)),
        never_preempting=never,
    )


def _evicted(case: VCase, conf: SchedulerConf) -> tuple[str, ...]:
    got = run(VCase(**{**case.__dict__, "expect": Outcome(evicted=())}), conf)
    assert got.evicted is not None
    return got.evicted


def test_a_pod_whose_preemption_policy_is_never_preempts_nobody() -> None:
    assert _evicted(_preempt_case(), _PREEMPT) == ("c1/victim",)
    assert _evicted(_preempt_case("PreemptLowerPriority"), _PREEMPT) == ("c1/victim",)
    assert _evicted(_preempt_case("Never"), _PREEMPT) == ()


def test_a_pod_of_a_priority_class_whose_preemption_policy_is_never_preempts_nobody() -> None:
    assert _evicted(_preempt_case(never=("high",)), _PREEMPT) == ()
    # The pod's own policy is the one admission left on it.
    assert _evicted(_preempt_case("PreemptLowerPriority", never=("high",)), _PREEMPT) == ("c1/victim",)


def test_a_pod_whose_preemption_policy_is_never_is_still_placed_where_there_is_room() -> None:
    case = _preempt_case("Never")
    roomy = VCase(**{**case.__dict__, "nodes": (_n("n1", "1", "1G"), _n("n2", "1", "1G"))})
    assert run(VCase(**{**roomy.__dict__, "expect": Outcome(binds={})}), _PREEMPT).binds == {"c1/preemptor": "n2"}


def _reclaim_case(policy: str) -> VCase:
    return VCase(
        "preemptionPolicy", 0,
        (VGroup("hog", "c1", "q1", 1, "Running"), VGroup("late", "c1", "q2", 1, "Inqueue")),
        (
            VPod("c1", "hog-1", "hog", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "hog-2", "hog", "1", "1G", node="n1", labels=_YES),
            VPod("c1", "late-1", "late", "1", "1G", preemption_policy=policy),
        ),
        (_n("n1", "2", "2G"),),
        (VQueue("q1"), VQueue("q2")),
        Outcome(),
    )


def test_a_pod_whose_preemption_policy_is_never_reclaims_nothing() -> None:
    assert len(_evicted(_reclaim_case(""), _RECLAIM)) == 1
    assert _evicted(_reclaim_case("Never"), _RECLAIM) == ()


# --- capacity: pkg/scheduler/plugins/capacity/capacity_test.go ---------------------------------------

# Test_capacityPlugin_OnSessionOpenWithoutHierarchy (line 56): allocate then reclaim; one tier of
# capacity (allocatable, preemptive, reclaimable, queue order), predicates and gang (job starving).
# Queues are BuildQueueWithResourcesQuantity(name, deserved, capability), weight 1.
_CAP = vconf(
    "allocate, reclaim",
    [("capacity", "Allocatable Preemptive Reclaimable QueueOrder"), ("predicates", "Predicate"), ("gang", "JobStarving")],
)
_GI = ("2", "4Gi")
_A100 = {"nvidia.com/A100": "10"}
_GPU1 = {"nvidia.com/gpu": "1"}


def _cg(name: str, queue: str, phase: str) -> VGroup:
    return VGroup(name, "ns1", queue, 1, phase)


def _cq(name: str, deserved: dict[str, str] | None = None, capability: dict[str, str] | None = None, priority: int = 0) -> VQueue:
    return VQueue(name, deserved=deserved or {}, capability=capability or {}, priority=priority)


def _r(cpu: str, memory: str, **scalars: str) -> dict[str, str]:
    return {"cpu": cpu, "memory": memory, **scalars}


# Volcano's capacity registers no overused rule: reclaim asks its PreemptiveFn whether the reclaiming
# queue, with the pod added, stays within its deserved share on one resource the pod asks for.
# eventbatch's capacity has an overused rule instead (the queue, or one of its ancestors, holds its
# deserved share in every resource: it gets nothing more), which both allocate and reclaim ask.
_NOT_PREEMPTIVE = (
    "reclaim asks whether the reclaiming queue holds its deserved share in every resource (overused), "
    "not whether the pod would take it past its share on every resource the pod asks for (PreemptiveFn)"
)
_PARENT_OVERUSED = (
    "a queue whose parent holds its deserved share in every resource is overused: it reclaims nothing, "
    "also from a sibling above its own share"
)
_N1 = _n("n1", *_GI, selector="worker")
_N2 = _n("n2", *_GI)

CAPACITY_FLAT_CASES = [
    VCase(
        "case0: Pod allocatable when queue has not exceed capability", 232,
        (_cg("pg1", "q1", "Running"), _cg("pg2", "q1", "Inqueue")),
        (VPod("ns1", "p1", "pg1", "1", "1Gi", node="n1"), VPod("ns1", "p2", "pg2", "1", "1Gi", selector={"selector": "worker"})),
        (_N1, _N2),
        (_cq("q1", capability=_r("2", "2Gi")),),
        Outcome(binds={"ns1/p2": "n1"}),
    ),
    VCase(
        "case1: Pod not allocatable when queue exceed queue capability", 244,
        (_cg("pg3", "q2", "Running"), _cg("pg4", "q2", "Inqueue")),
        (VPod("ns1", "p3", "pg3", "1", "1Gi", node="n1"), VPod("ns1", "p4", "pg4", "1", "1Gi")),
        (_N1, _N2),
        (_cq("q2", capability=_r("1.5", "1.5Gi")),),
        Outcome(binds={}),
    ),
    VCase(
        "case2: Can reclaim from other queues when allocated < deserved", 253,
        (_cg("pg5", "q3", "Running"), _cg("pg6", "q4", "Inqueue")),
        (
            VPod("ns1", "p5", "pg5", *_GI, node="n1", labels=_NO),
            VPod("ns1", "p6", "pg5", *_GI, node="n2"),
            VPod("ns1", "p7", "pg6", *_GI),
        ),
        (_N1, _N2),
        (_cq("q3", _r(*_GI)), _cq("q4", _r(*_GI))),
        Outcome(binds={}, evicted=("ns1/p6",), pipelined={"ns1/pg6": ("n2",)}),
    ),
    VCase(
        "case3: CPU & Memory are overused, scalar resource is not overused, but candidate pod has not request "
        "CPU & Memory, reclaim should happen", 266,
        (_cg("pg7", "q5", "Running"), _cg("pg8", "q6", "Running"), _cg("pg9", "q6", "Inqueue")),
        (
            VPod("ns1", "p8", "pg7", "0", "0Gi", node="n3", labels=_NO, scalars=_A100),
            VPod("ns1", "p9", "pg7", "0", "0Gi", node="n4", scalars=_A100),
            VPod("ns1", "p10", "pg8", *_GI, node="n3"),
            VPod("ns1", "p11", "pg8", *_GI, node="n4"),
            VPod("ns1", "p12", "pg9", "0", "0Gi", scalars=_A100),
        ),
        (_n("n3", *_GI, scalars=_A100, selector="worker"), _n("n4", *_GI, scalars=_A100)),
        (_cq("q5", _r(*_GI, **_A100)), _cq("q6", _r(*_GI, **_A100))),
        Outcome(binds={}, evicted=("ns1/p9",), pipelined={"ns1/pg9": ("n4",)}),
    ),
    VCase(
        "case4: Pods are assigned according to the order of Queue Priority in which PGs are placed", 279,
        (_cg("pg10", "q7", "Running"), _cg("pg11", "q8", "Inqueue"), _cg("pg12", "q9", "Inqueue")),
        (
            VPod("ns1", "p13", "pg10", *_GI, node="n5"),
            VPod("ns1", "p14", "pg11", *_GI),
            VPod("ns1", "p15", "pg12", *_GI),
        ),
        (_n("n5", *_GI), _n("n6", *_GI)),
        (
            _cq("q7", capability=_r(*_GI), priority=5),
            _cq("q8", capability=_r(*_GI), priority=1),
            _cq("q9", capability=_r(*_GI), priority=10),
        ),
        Outcome(binds={"ns1/p15": "n6"}),
    ),
    VCase(
        "case5: Can reclaim from other queues when allocated + req <= deserved on one dimension", 292,
        (_cg("pg16", "q10", "Running"), _cg("pg17", "q10", "Inqueue"), _cg("pg18", "q11", "Running")),
        (
            VPod("ns1", "p16", "pg16", "1", "3Gi", node="n1"),
            VPod("ns1", "p17", "pg17", "1", "1Gi"),
            VPod("ns1", "p18", "pg18", "1", "1Gi", node="n1"),
        ),
        (_N1,),
        (_cq("q10", _r("2", "2Gi"), _r("4", "4Gi")), _cq("q11", _r("0", "0Gi"), _r("2", "2Gi"))),
        Outcome(binds={}, evicted=("ns1/p18",), pipelined={"ns1/pg17": ("n1",)}),
    ),
    VCase(
        "case6: Can not reclaim from other queues when allocated + req > deserved", 307,
        (_cg("pg19", "q12", "Running"), _cg("pg20", "q12", "Inqueue"), _cg("pg21", "q13", "Running")),
        (
            VPod("ns1", "p19", "pg19", "1", "1Gi", node="n1"),
            VPod("ns1", "p20", "pg20", "1", "2Gi"),
            VPod("ns1", "p21", "pg21", "1", "1Gi", node="n1"),
        ),
        (_N1,),
        (_cq("q12", _r("1", "2Gi"), _r("4", "4Gi")), _cq("q13", _r("0", "0Gi"), _r("2", "2Gi"))),
        Outcome(binds={}, evicted=(), pipelined={}),
        differs=_NOT_PREEMPTIVE,
        eventbatch=Outcome(binds={}, evicted=("ns1/p21",), pipelined={"ns1/pg20": ("n1",)}),
    ),
    VCase(
        "case7: allocated does not contain scalar dimension (GPU), deserved does; should not reclaim", 318,
        (_cg("pg22", "queue14", "Running"), _cg("pg23", "queue15", "Running"), _cg("pg24", "queue16", "Running"),
         _cg("pg25", "queue16", "Inqueue")),
        (
            VPod("ns1", "p22", "pg22", "2", "4Gi", node="n7"),
            VPod("ns1", "p23", "pg23", "0", "0Gi", node="n7", scalars=_GPU1),
            VPod("ns1", "p24", "pg24", "2", "1Gi", node="n7", scalars=_GPU1),
            VPod("ns1", "p25", "pg25", "2", "3Gi", scalars=_GPU1),
        ),
        (_n("n7", "4", "8Gi", scalars={"nvidia.com/gpu": "4"}),),
        (
            _cq("queue14", _r("2", "4Gi", **{"nvidia.com/gpu": "2"})),
            _cq("queue15"),
            _cq("queue16", _r("2", "4Gi", **{"nvidia.com/gpu": "2"})),
        ),
        Outcome(binds={}, evicted=(), pipelined={}),
    ),
    VCase(
        "case8: reclaimer dimensions are considered properly while evicting reclaimees", 329,
        (_cg("pg26", "queue17", "Running"), _cg("pg27", "queue17", "Running"), _cg("pg28", "queue17", "Running"),
         _cg("pg29", "queue18", "Running"), _cg("pg30", "queue18", "Inqueue")),
        (
            VPod("ns1", "p26", "pg26", "0", "4Gi", node="n8"),
            VPod("ns1", "p27", "pg27", "1", "0Gi", node="n8"),
            VPod("ns1", "p28", "pg28", "0", "0Gi", node="n8", scalars=_GPU1),
            VPod("ns1", "p29", "pg29", "2", "4Gi", node="n8"),
            VPod("ns1", "p30", "pg30", "1", "0Gi", scalars=_GPU1),
        ),
        (_n("n8", "4", "8Gi", scalars=_GPU1),),
        (_cq("queue17", _r("2", "2Gi")), _cq("queue18", _r("2", "4Gi", **_GPU1))),
        Outcome(binds={}, evicted=("ns1/p28",), pipelined={"ns1/pg30": ("n8",)}),
    ),
    VCase(
        "case9: reclaimee has intersecting scalar dimensions with deserved shouldn't be reclaimed on cpu/memory", 342,
        (_cg("pg31", "queue19", "Running"), _cg("pg32", "queue20", "Inqueue")),
        (
            VPod("ns1", "p31", "pg31", "4", "4Gi", node="n8", scalars=_GPU1),
            VPod("ns1", "p32", "pg32", "1", "1Gi"),
        ),
        (_n("n8", "4", "8Gi", scalars=_GPU1),),
        (_cq("queue19", _GPU1), _cq("queue20", _r("2", "2Gi"))),
        Outcome(binds={}, evicted=(), pipelined={}),
    ),
    VCase(
        "case10: PreemptiveFn respects capability — no reclaim when futureUsed would exceed capability", 353,
        (_cg("pg33", "queue21", "Running"), _cg("pg34", "queue21", "Inqueue"), _cg("pg35", "queue22", "Running")),
        (
            VPod("ns1", "p33", "pg33", "7", "90Gi", node="n9"),
            VPod("ns1", "p34", "pg34", "2", "5Gi"),
            VPod("ns1", "p35", "pg35", "2", "5Gi", node="n10"),
        ),
        (_n("n9", "8", "100Gi"), _n("n10", "8", "100Gi")),
        (_cq("queue21", _r("8", "100Gi"), _r("8", "100Gi")), _cq("queue22", capability=_r("2", "5Gi"))),
        Outcome(binds={}, evicted=(), pipelined={}),
    ),
]


@pytest.mark.parametrize("case", CAPACITY_FLAT_CASES, ids=[c.volcano for c in CAPACITY_FLAT_CASES])
def test_volcano_capacity_without_hierarchy_cases(case: VCase) -> None:
    """Volcano: pkg/scheduler/plugins/capacity/capacity_test.go, ``Test_capacityPlugin_OnSessionOpenWithoutHierarchy``
    (line 56), the case named (its line in ``case.line``)."""
    _check(case, _CAP)


# Test_capacityPlugin_OnSessionOpenWithHierarchy (line 508): enqueue, reclaim, allocate; capacity with
# hierarchy (allocatable, preemptive, reclaimable, queue order, job enqueued), predicates, gang (job
# starving). Queues are buildQueueWithParents(name, parent, deserved, capability); eventbatch's
# capacity reads the tree from ``spec.parent`` (hierarchy is not a switch). A "pods" quantity in a
# queue's deserved share or capability is left out here: eventbatch's quotas count no pod slots.
_CAPH = vconf(
    "enqueue, reclaim, allocate",
    [
        ("capacity", "Allocatable Preemptive Reclaimable QueueOrder Hierarchy JobEnqueued"),
        ("predicates", "Predicate"),
        ("gang", "JobStarving"),
    ],
)


def _hq(name: str, parent: str, deserved: dict[str, str] | None = None, capability: dict[str, str] | None = None,
        guarantee: dict[str, str] | None = None) -> VQueue:
    return VQueue(name, parent=parent, deserved=deserved or {}, capability=capability or {}, guarantee=guarantee or {})


_ROOT = _hq("root", "")
_HN1 = _n("n1", "8", "8Gi", pods=11)
_HQ1 = (_ROOT, _hq("q1", "root", None, _r("4", "4Gi")), _hq("q2", "root", None, _r("4", "4Gi")),
        _hq("q11", "q1", None, _r("1", "1Gi")), _hq("q12", "q1", None, _r("3", "3Gi")))
_Q3 = _hq("q3", "root", _r("4", "4Gi"), _r("4", "4Gi"))
_Q4 = _hq("q4", "root", _r("2", "2Gi"), _r("4", "4Gi"))
_Q31 = _hq("q31", "q3", _r("2", "2Gi"), _r("4", "4Gi"))
_Q32 = _hq("q32", "q3", _r("2", "2Gi"), _r("4", "4Gi"))
_Q33 = _hq("q33", "q3", _r("0", "0Gi"), _r("4", "4Gi"))
_HGPU = {"nvidia.com/gpu": "8"}

CAPACITY_HIERARCHY_CASES = [
    VCase(
        "case0: Pod allocatable when queue is leaf queue", 660,
        (_cg("pg1", "q11", "Inqueue"),),
        (VPod("ns1", "p1", "pg1", "1", "1Gi"),),
        (_HN1,),
        _HQ1,
        Outcome(binds={"ns1/p1": "n1"}),
    ),
    VCase(
        "case1: Pod not allocatable when queue is not leaf queue", 672,
        (_cg("pg2", "q1", "Pending"),),
        (VPod("ns1", "p2", "pg2", "1", "1Gi"),),
        (_HN1,),
        _HQ1,
        Outcome(binds={}),
    ),
    VCase(
        "case2: Pod allocatable when queue has not exceed capability", 682,
        (VGroup("pg3", "ns1", "q31", 2, "Inqueue"),),
        (VPod("ns1", "p3", "pg3", "2", "2Gi"), VPod("ns1", "p4", "pg3", "2", "2Gi")),
        (_HN1,),
        (_ROOT, _Q3, _Q4, _Q31, _Q32),
        Outcome(binds={"ns1/p3": "n1", "ns1/p4": "n1"}),
    ),
    VCase(
        "case3: Can reclaim from other queues when allocated < deserved", 695,
        (_cg("pg4", "q4", "Running"), _cg("pg5", "q31", "Running"), _cg("pg6", "q32", "Inqueue")),
        (
            VPod("ns1", "p5", "pg4", "4", "4Gi", node="n1"),
            VPod("ns1", "p6", "pg5", "2", "2Gi", node="n1", labels=_NO),
            VPod("ns1", "p7", "pg5", "2", "2Gi", node="n1"),
            VPod("ns1", "p8", "pg6", "2", "2Gi"),
        ),
        (_HN1,),
        (_ROOT, _Q3, _Q31, _Q32, _Q4),
        Outcome(binds={}, evicted=("ns1/p7",), pipelined={"ns1/pg6": ("n1",)}),
        differs=_PARENT_OVERUSED,
        eventbatch=Outcome(binds={}, evicted=(), pipelined={}),
    ),
    VCase(
        "case4: Pod is not allocatable when ancestor queue's real capability not enough", 708,
        (_cg("pg5", "q31", "Running"), _cg("pg7", "q32", "Running"), _cg("pg8", "q33", "Inqueue")),
        (
            VPod("ns1", "p6", "pg5", "2", "2Gi", node="n1", labels=_NO),
            VPod("ns1", "p9", "pg7", "2", "2Gi", node="n1"),
            VPod("ns1", "p10", "pg8", "3", "3Gi"),
        ),
        (_HN1,),
        (_ROOT, _Q3, _Q31, _Q32, _Q33),
        Outcome(binds={}),
    ),
    VCase(
        "case5: If the capability cpu or memory is not specified, the value should be inherited from parent queue", 718,
        (_cg("pg9", "q51", "Running"),),
        (VPod("ns1", "p11", "pg9", "1", ""),),
        (_HN1,),
        (_ROOT, _hq("q5", "root", None, {"memory": "4Gi"}), _hq("q51", "q5", None, {"memory": "2Gi"})),
        Outcome(binds={"ns1/p11": "n1"}),
    ),
    VCase(
        "case6: podgroup can't be enqueued when any ancestor queue's capability is not enough", 730,
        (
            VGroup("pg10", "ns1", "q61", 1, "Pending", min_resources=_r("2", "4Gi")),
            VGroup("pg11", "ns1", "q62", 1, "Pending", min_resources=_r("2", "4Gi")),
        ),
        (),
        (_HN1,),
        (_ROOT, _hq("q6", "root", None, _r("2", "4Gi")), _hq("q61", "q6"), _hq("q62", "q6")),
        Outcome(binds={}, phases={"ns1/pg10": "Inqueue", "ns1/pg11": "Pending"}),
    ),
    VCase(
        "case7: the sum of sub queue 71 and 72's guarantee exceeds the capacity of queue7, but should not panic", 741,
        (),
        (),
        (_HN1,),
        (
            _ROOT,
            _hq("q7", "root", None, _r("6", "4Gi")),
            _hq("q71", "q7", None, _r("6", "4Gi"), _r("4", "3Gi")),
            _hq("q72", "q7", None, _r("6", "4Gi"), _r("4", "3Gi")),
        ),
        Outcome(binds={}),
    ),
    VCase(
        "case8: When the queue's deserved value has a scalar resource set, the check can pass", 747,
        (_cg("pg12", "q81", "Inqueue"),),
        (VPod("ns1", "p12", "pg12", "2", "2Gi", scalars=_GPU1),),
        (_n("n-gpu", "8", "8Gi", scalars=_HGPU),),
        (
            _ROOT,
            _hq("q8", "root", _r("4", "4Gi", **_HGPU)),
            _hq("q81", "q8", _r("2", "2Gi", **{"nvidia.com/gpu": "4"})),
            _hq("q82", "q8", _r("2", "2Gi", **{"nvidia.com/gpu": "4"})),
        ),
        Outcome(binds={"ns1/p12": "n-gpu"}),
    ),
    VCase(
        "case9: When some scalar resources are 0 in deserved, the check can still pass", 759,
        (_cg("pg13", "q91", "Inqueue"),),
        (VPod("ns1", "p13", "pg13", "2", "2Gi", scalars=_GPU1),),
        (_n("n2", "8", "8Gi", scalars={**_HGPU, "hugepages-1Gi": "0"}),),
        (
            _ROOT,
            _hq("q9", "root", _r("2", "2Gi", **_HGPU, **{"hugepages-1Gi": "0"})),
            _hq("q91", "q9", _r("2", "2Gi", **{"nvidia.com/gpu": "4", "hugepages-1Gi": "0"})),
        ),
        Outcome(binds={"ns1/p13": "n2"}),
    ),
    VCase(
        "case10: root queue's capability > cluster total resource, but should not panic", 771,
        (),
        (),
        (_HN1,),
        (_hq("root", "", None, _r("16", "16Gi")), _hq("q10", "root", None, _r("10", "4Gi"))),
        Outcome(binds={}),
    ),
    VCase(
        "case11: If the capability scalar resources is not specified, the value should be inherited from parent queue",
        777,
        (_cg("pg14", "case11_queue11", "Inqueue"), _cg("pg15", "case11_queue12", "Inqueue")),
        (
            VPod("ns1", "p14", "pg14", "1", "1Gi", scalars={"nvidia.com/gpu": "4"}),
            VPod("ns1", "p15", "pg15", "1", "1Gi", scalars={"nvidia.com/gpu": "4"}),
        ),
        (_n("n2", "8", "8Gi", scalars={**_HGPU, "hugepages-1Gi": "0"}),),
        (
            _ROOT,
            _hq("case11_queue1", "root"),
            _hq("case11_queue11", "case11_queue1", None, _r("4", "4Gi", **{"nvidia.com/gpu": "4"})),
            _hq("case11_queue12", "case11_queue1", None, _r("4", "4Gi", **{"nvidia.com/gpu": "4"})),
        ),
        Outcome(binds={"ns1/p14": "n2", "ns1/p15": "n2"}),
    ),
    VCase(
        "case12: Can reclaim from other queues when allocated <= deserved on a single scalar dimension", 790,
        (_cg("pg16", "case12_queue11", "Inqueue"), _cg("pg17", "case12_queue12", "Running"),
         _cg("pg18", "case12_queue12", "Running")),
        (
            VPod("ns1", "p16", "pg16", "1", "1Gi", scalars={"nvidia.com/a100": "2", "rdma/hca": "1"}),
            VPod("ns1", "p17", "pg17", "1", "1Gi", node="n3", scalars={"nvidia.com/a100": "2", "rdma/hca": "1"}),
            VPod("ns1", "p18", "pg18", "1", "1Gi", node="n3", labels=_NO,
                 scalars={"nvidia.com/a100": "2", "rdma/hca": "1"}),
        ),
        (_n("n3", "16", "16Gi", pods=11, scalars={"nvidia.com/a100": "5", "rdma/hca": "1001"}),),
        (
            _hq("root", "", _r("16", "16Gi", **{"nvidia.com/a100": "4", "rdma": "1000"})),
            _hq("case12_queue1", "root", {"nvidia.com/a100": "2"}),
            _hq("case12_queue11", "case12_queue1", {"nvidia.com/a100": "2"}),
            _hq("case12_queue12", "case12_queue1"),
        ),
        Outcome(binds={}, evicted=("ns1/p17",), pipelined={"ns1/pg16": ("n3",)}),
        differs=_PARENT_OVERUSED,
        eventbatch=Outcome(binds={}, evicted=(), pipelined={}),
    ),
]


@pytest.mark.parametrize("case", CAPACITY_HIERARCHY_CASES, ids=[c.volcano for c in CAPACITY_HIERARCHY_CASES])
def test_volcano_capacity_with_hierarchy_cases(case: VCase) -> None:
    """Volcano: pkg/scheduler/plugins/capacity/capacity_test.go, ``Test_capacityPlugin_OnSessionOpenWithHierarchy``
    (line 508), the case named (its line in ``case.line``)."""
    _check(case, _CAPH)


# --- predicates: pkg/scheduler/plugins/predicates/predicates_test.go ------------------------------

# The table-driven tests that make scheduling decisions: TestEventHandler (line 183), TestNodeNum
# (line 265), TestPodAntiAffinity (line 332). Not ported: TestSetUpDynamicResourcesArgs_*,
# TestInitPlugin, TestBatchNodeOrderRunsPreScorePlugins, TestPredicateFailureReasonAggregationOrderStable,
# TestPredicateByStablefilterSkipsPluginInSkipSet, TestReserveRollbackOrderStable, TestTaskPodAnnotations
# and helper_test.go's TestSetUpVolumeBindingArgs: they check how Volcano wires kube-scheduler's
# filter and score plugins (their arguments, pre-score, DRA and volume binding), not a decision.
_WORKER = {"role": "worker"}
# getWorkerAffinity (line 130): no two pods labelled role=worker on one host.
_ANTI_WORKER: dict[str, object] = {
    "requiredDuringSchedulingIgnoredDuringExecution": [
        {
            "labelSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["worker"]}]},
            "topologyKey": "kubernetes.io/hostname",
        }
    ]
}

PREDICATES_CASES = [
    (
        vconf("allocate", [("predicates", "Predicate"), ("gang", "JobReady JobPipelined"), ("priority", "JobOrder")]),
        VCase(
            "TestEventHandler: pod-deallocate", 216,
            (VGroup("pg1", "ns1", "q1", 2, "Inqueue", {}, "p2"), VGroup("pg2", "ns1", "q1", 1, "Inqueue", {}, "p1")),
            (
                VPod("ns1", "worker-1", "pg1", "3", "3k", labels=_WORKER, selector={"selector": "worker"},
                     pod_anti_affinity=_ANTI_WORKER),
                VPod("ns1", "worker-2", "pg1", "5", "5k", labels=_WORKER, pod_anti_affinity=_ANTI_WORKER),
                VPod("ns1", "worker-3", "pg2", "4", "4k", labels=_WORKER, pod_anti_affinity=_ANTI_WORKER),
            ),
            (
                _n("node1", "14", "14k", selector="worker", **{"kubernetes.io/hostname": "node1"}),
                _n("node2", "3", "3k", **{"kubernetes.io/hostname": "node2"}),
            ),
            (VQueue("q1", weight=0),),
            Outcome(binds={"ns1/worker-3": "node1"}),
            (("p1", 1), ("p2", 2)),
        ),
    ),
    (
        vconf("allocate, backfill", [("predicates", "Predicate")]),
        VCase(
            "TestNodeNum: pod-predicate", 291,
            (VGroup("pg1", "ns1", "q1", 2, "Inqueue", {}, "p2"), VGroup("pg2", "ns1", "q1", 1, "Inqueue", {}, "p1")),
            (
                VPod("ns1", "worker-1", "pg1", "", "", labels=_WORKER, selector={"selector": "worker"}),
                VPod("ns1", "worker-2", "pg1", "", "", labels=_WORKER),
                VPod("ns1", "worker-3", "pg2", "", "", labels=_WORKER),
            ),
            (_n("node1", "4", "4k", pods=2, selector="worker"),),
            (VQueue("q1", weight=0),),
            Outcome(binds={"ns1/worker-1": "node1", "ns1/worker-2": "node1"}),
            (("p1", 1), ("p2", 2)),
        ),
    ),
    (
        vconf("allocate, preempt", [("predicates", "Predicate"), ("priority", "Preemptable JobStarving")]),
        VCase(
            "TestPodAntiAffinity: pod-anti-affinity", 359,
            (
                VGroup("pg1", "ns1", "q1", 0, "Running", {}, "low-priority"),
                VGroup("pg2", "ns1", "q1", 1, "Inqueue", {}, "high-priority"),
            ),
            (
                VPod("ns1", "worker-1", "pg1", "3", "3G", node="n1", labels=_WORKER, priority=100000,
                     pod_anti_affinity=_ANTI_WORKER),
                VPod("ns1", "worker-2", "pg1", "3", "3G", node="n1", priority=10),
                VPod("ns1", "worker-3", "pg2", "3", "3G", labels=_WORKER, priority=100000,
                     pod_anti_affinity=_ANTI_WORKER),
            ),
            (_n("n1", "12", "12G", pods=2, **{"kubernetes.io/hostname": "node1"}),),
            (VQueue("q1", weight=0, capability=_r("9", "9G")),),
            Outcome(binds={}, evicted=(), pipelined={}),
            (("low-priority", 10), ("high-priority", 100000)),
        ),
    ),
]


@pytest.mark.parametrize("conf,case", PREDICATES_CASES, ids=[c.volcano for _, c in PREDICATES_CASES])
def test_volcano_predicates_cases(conf: SchedulerConf, case: VCase) -> None:
    """Volcano: pkg/scheduler/plugins/predicates/predicates_test.go, the test and case named (its line in
    ``case.line``), with that test's tiers."""
    _check(case, conf)
