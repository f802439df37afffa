"""Who goes first: priority, drf and sla orders, and sla's admission."""

from __future__ import annotations

import pytest

from schemas import events as ev
from tests.unit.scheduler.tables import Cluster, bound, of

ALLOCATE_WITH = 'actions: "allocate"\ntiers:\n- plugins:\n{plugins}  - name: gang\n{gang}  - name: predicates\n'


def _conf(*plugins: str, gang_order: bool = True) -> str:
    return ALLOCATE_WITH.format(
        plugins="".join(f"  - name: {p}\n" for p in plugins),
        gang="" if gang_order else "    enabledJobOrder: false\n",
    )


@pytest.mark.parametrize(
    ("plugins", "winner"),
    [(("priority",), "high"), ((), "low")],
    ids=["priority-plugin", "creation-order-without-it"],
)
def test_higher_priority_job_goes_first(plugins, winner):
    c = Cluster(_conf(*plugins)).queue("default").node("n0", cpu="2")
    c.priority_class("urgent", 1000).priority_class("batch", 10)
    c.job("low", {"w": (2, {"cpu": "1"})}, priority_class="batch", min_resources=False)
    c.job("high", {"w": (2, {"cpu": "1"})}, priority_class="urgent", min_resources=False)
    assert sorted(bound(c.schedule())) == [f"default/{winner}-w-0", f"default/{winner}-w-1"]


def test_task_priority_orders_pods_within_a_job():
    c = Cluster(_conf("priority")).queue("default").node("n0", cpu="1")
    c.job("a", {"w": (1, {"cpu": "1"})}, min_member=1, min_resources=False)
    c.pods("a", {"urgent": (1, {"cpu": "1"})}, priority=100)
    assert list(bound(c.schedule())) == ["default/a-urgent-0"]


@pytest.mark.parametrize(("plugins", "b_placed"), [(("drf",), True), ((), False)], ids=["drf", "without-drf"])
def test_drf_serves_the_smaller_dominant_share_first(plugins, b_placed):
    # gang's own order (jobs not ready first) switched off, to see drf's alone
    c = Cluster(_conf(*plugins, gang_order=False)).queue("default").node("n0", cpu="3")
    c.job("a", {"w": (3, {"cpu": "1"})}, min_member=1, min_resources=False)
    c.job("b", {"w": (1, {"cpu": "1"})}, min_member=1, min_resources=False)
    placed = bound(c.schedule())
    assert len(placed) == 3
    assert ("default/b-w-0" in placed) is b_placed


SLA_CONF = """
actions: "enqueue, allocate"
tiers:
- plugins:
  - name: sla
    arguments: {sla-waiting-time: 1h}
- plugins:
  - name: overcommit
  - name: gang
  - name: predicates
"""


def test_sla_admits_a_job_that_waited_too_long_whatever_overcommit_says():
    c = Cluster(SLA_CONF).queue("default").node("n0", cpu="2")
    c.job("big", {"w": (4, {"cpu": "1"})}, pods=False, at=1_000)
    c.job("late", {"w": (4, {"cpu": "1"})}, pods=False, annotations={"sla-waiting-time": "10s"}, at=2_000)
    early = c.schedule(now=5_000)
    assert of(early, ev.PodGroupEnqueued) == []
    assert {d.podgroup for d in of(early, ev.PodGroupUnschedulable)} == {"default/big", "default/late"}
    late = c.schedule(now=12_001)  # nothing changed but late's deadline passed: it is tried again
    assert [(d.podgroup, d.rule) for d in of(late, ev.PodGroupEnqueued)] == [("default/late", "enqueue/sla")]


def test_sla_deadline_orders_jobs():
    c = Cluster(SLA_CONF).queue("default").node("n0", cpu="2")
    c.job("first", {"w": (2, {"cpu": "1"})}, pods=False, at=1_000)
    c.job("urgent", {"w": (2, {"cpu": "1"})}, pods=False, annotations={"sla-waiting-time": "1s"}, at=2_000)
    decisions = c.schedule(now=2_500)
    assert [d.podgroup for d in of(decisions, ev.PodGroupEnqueued)] == ["default/urgent"]
