"""More of Volcano's table-driven scheduler cases, as scenario tables (continues ``test_volcano_cases``).

Same style as ``test_volcano_cases``: each row names the Volcano test and
case it comes from (volcano-sh/volcano at commit
ed72c7c815a9fd547a787134676f73d42e9d049c) with the line the case starts at,
carries that case's facts, the tiers of the Go test
(``volcano_tables.vconf``) and what Volcano expects. A row eventbatch decides
differently keeps Volcano's expectation in ``expect`` and eventbatch's in
``eventbatch``, with the reason in ``differs`` (docs/scheduler.md,
"Differences from Volcano").

Volcano's ``CheckAll`` checks binds exactly in every case (a case naming
none expects none), so every row here checks them.

Also here: a pod's ``preemptionPolicy: Never`` (its own, or its
PriorityClass's), which preempt and reclaim honour as Volcano does.
"""

from __future__ import annotations

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
