"""reclaim: a queue below its deserved share takes back resources from reclaimable queues above theirs."""

from __future__ import annotations

import pytest

from schemas import events as ev
from schemas.resources import Guarantee, ObjectMeta, Queue, QueueSpec
from tests.unit.scheduler.tables import Cluster, default_conf_with, of

CONF = default_conf_with("enqueue, allocate, reclaim, backfill")

# proportion decides alone (gang's and conformance's votes off): its deserved-share rule is what is tested.
PROPORTION_ONLY = CONF.replace("  - name: gang\n", "  - name: gang\n    enabledReclaimable: false\n").replace(
    "  - name: conformance\n", "  - name: conformance\n    enabledReclaimable: false\n"
)


def _queue(c: Cluster, name: str, *, weight: int = 1, reclaimable: bool = True, priority: int = 0,
           guarantee: dict | None = None) -> None:
    manifest = Queue(
        metadata=ObjectMeta(name=name),
        spec=QueueSpec(weight=weight, reclaimable=reclaimable, priority=priority,
                       guarantee=Guarantee(resource=guarantee or {})),
    )
    c.add(ev.QueueCreated(queue=name, manifest=manifest), ev.QueueStateChanged(queue=name, state="Open"))


def _fill(c: Cluster, name: str, queue: str, pods: int = 4) -> None:
    """A job of one-cpu pods that may lose all but one of them."""
    c.job(name, {"w": (pods, {"cpu": "1"})}, queue=queue, min_member=1)


def _victims(decisions) -> list[str]:
    return sorted(d.pod for d in of(decisions, ev.PodEvictionRequested))


def test_a_queue_takes_back_its_deserved_share():
    c = Cluster(CONF).node("n0", cpu="4").node("n1", cpu="4")
    _queue(c, "batch")
    _queue(c, "prod", weight=3)
    _fill(c, "b0", "batch")
    _fill(c, "b1", "batch")
    c.schedule()
    c.job("p", {"w": (6, {"cpu": "1"})}, queue="prod", min_member=6, inqueue=True)
    decisions = c.schedule()
    victims = of(decisions, ev.PodEvictionRequested)
    assert len(victims) == 6  # prod deserves 6 of 8; batch keeps its 2
    assert {v.rule for v in victims} == {"reclaim.proportion"}
    assert {v.job for v in victims} == {"default/b0", "default/b1"}
    assert victims[0].reason == "reclaimed by queue prod for default/p: queue batch holds 8 cpu, deserves 2"
    assert len(of(decisions, ev.PodPipelined)) == 6


CASES = [
    # (id, batch reclaimable, batch guarantee cpu, expected number of victims); prod's gang wants both its pods
    # (a job reclaims only while it is starving, below its minMember: Volcano's ssn.JobStarving, issue 16)
    ("reclaimable", True, None, 2),
    ("not-reclaimable", False, None, 0),
    ("guarantee-respected", True, "2", 2),
    ("guarantee-blocks-the-gang", True, "3", 0),
    ("guarantee-covers-all", True, "4", 0),
]


@pytest.mark.parametrize(("reclaimable", "guarantee", "count"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_only_from_reclaimable_queues_and_never_below_their_guarantee(reclaimable, guarantee, count):
    c = Cluster(CONF).node("n0", cpu="4")
    _queue(c, "batch", reclaimable=reclaimable, guarantee={"cpu": guarantee} if guarantee else None)
    _queue(c, "prod")
    _fill(c, "b", "batch")
    c.schedule()
    c.job("p", {"w": (2, {"cpu": "1"})}, queue="prod", min_member=2, inqueue=True)
    decisions = c.schedule()
    assert len(of(decisions, ev.PodEvictionRequested)) == count


def test_victims_come_from_the_lowest_priority_queue_first():
    c = Cluster(CONF).node("n0", cpu="6")
    _queue(c, "high", priority=10)
    _queue(c, "low", priority=1)
    _queue(c, "prod", weight=4)
    _fill(c, "h", "high", pods=3)
    _fill(c, "l", "low", pods=3)
    c.schedule()
    c.job("p", {"w": (2, {"cpu": "1"})}, queue="prod", min_member=2, inqueue=True)
    assert {d.job for d in of(c.schedule(), ev.PodEvictionRequested)} == {"default/l"}


def test_proportion_keeps_each_victim_queue_at_its_deserved_share():
    c = Cluster(PROPORTION_ONLY).node("n0", cpu="4")
    _queue(c, "batch")
    _queue(c, "prod")
    c.job("b", {"w": (4, {"cpu": "1"})}, queue="batch", min_member=1)
    c.schedule()
    c.job("p", {"w": (4, {"cpu": "1"})}, queue="prod", min_member=2, inqueue=True)
    decisions = c.schedule()
    # equal weights: batch deserves 2 of 4 and keeps them, though its gang could spare 3 (its vote is off here)
    assert len(of(decisions, ev.PodEvictionRequested)) == 2


def test_a_queue_at_its_share_takes_nothing():
    c = Cluster(CONF).node("n0", cpu="4")
    _queue(c, "batch")
    _queue(c, "prod")
    _fill(c, "b", "batch", pods=2)
    c.job("p0", {"w": (2, {"cpu": "1"})}, queue="prod", min_member=1, inqueue=True)
    c.schedule()
    c.job("p1", {"w": (1, {"cpu": "1"})}, queue="prod", min_member=1, inqueue=True)
    assert of(c.schedule(), ev.PodEvictionRequested) == []


def test_a_full_cluster_leaves_a_new_job_pending_even_in_a_queue_below_its_share():
    """Issue 16, rule 2 (this test asserted the opposite before: reclaim admitted the podgroup,
    rule ``reclaim.enqueue``). Volcano: pkg/scheduler/actions/reclaim/reclaim.go, ``Execute``,
    lines 72-75: ``if job.IsPending() { continue }``; only enqueue admits, and overcommit refuses
    a 2-cpu podgroup on a full 4-cpu node (4 x 1.2 - 4 used < 2). The podgroup waits Pending until
    room frees up (the other tests here start from an admitted podgroup, as Volcano's do)."""
    c = Cluster(CONF).node("n0", cpu="4")
    _queue(c, "batch")
    _queue(c, "prod", weight=3)
    _fill(c, "b", "batch")
    c.schedule()
    c.job("p", {"w": (2, {"cpu": "1"})}, queue="prod", min_member=2, pods=False)
    decisions = c.schedule()
    assert [(d.podgroup, d.reason) for d in decisions if isinstance(d, ev.PodGroupUnschedulable)] == [
        ("default/p", "NotEnqueueable")
    ]
    assert of(decisions, ev.PodGroupEnqueued) == [] and of(decisions, ev.PodEvictionRequested) == []
    # Nothing changed: the next session leaves it alone too.
    assert c.schedule() == []


def test_a_gang_at_its_minimum_is_never_a_victim_whichever_tier_decides():
    # gang (first tier) refuses every candidate, so proportion (second tier) decides, as in Volcano;
    # the gang's minimum still holds
    c = Cluster(CONF).node("n0", cpu="4")
    _queue(c, "batch")
    _queue(c, "prod", weight=3)
    c.job("b", {"w": (4, {"cpu": "1"})}, queue="batch", min_member=4)
    c.schedule()
    c.job("p", {"w": (2, {"cpu": "1"})}, queue="prod", min_member=1, inqueue=True)
    assert of(c.schedule(), ev.PodEvictionRequested) == []


def test_a_job_past_its_gang_minimum_reclaims_no_more():
    """Volcano: pkg/scheduler/actions/reclaim/reclaim.go lines 91 and 129: a job reclaims only while
    ``ssn.JobStarving(job)`` (gang: ready + waiting below minAvailable). prod's job runs with one pod of
    four: one batch pod is evicted for it, its other pods wait for idle resources (eventbatch reclaimed
    for all of them before issue 16)."""
    c = Cluster(CONF).node("n0", cpu="4")
    _queue(c, "batch")
    _queue(c, "prod", weight=3)
    _fill(c, "b", "batch")
    c.schedule()
    c.job("p", {"w": (4, {"cpu": "1"})}, queue="prod", min_member=1, inqueue=True)
    decisions = c.schedule()
    assert len(of(decisions, ev.PodEvictionRequested)) == 1
    assert [d.pod for d in of(decisions, ev.PodPipelined)] == ["default/p-w-0"]
