"""Queues: proportion's fair shares, capability, and enqueue's admission with overcommit."""

from __future__ import annotations

import pytest

from handlers.scheduler.api import QueueInfo
from handlers.scheduler.plugins.proportion import QueueAttr, water_fill
from schemas import events as ev
from tests.unit.scheduler.tables import Cluster, bound, of


def _pods_per_queue(decisions, queues):
    counts = dict.fromkeys(queues, 0)
    for pod in bound(decisions):
        counts[pod.split("/")[1].split("-")[0].rstrip("0123456789")] += 1
    return counts


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"qa": 1, "qb": 3}, {"qa": 4, "qb": 12}),
        ({"qa": 1, "qb": 1}, {"qa": 8, "qb": 8}),
        ({"qa": 1, "qb": 1, "qc": 2}, {"qa": 4, "qb": 4, "qc": 8}),
    ],
    ids=["1-to-3", "even", "1-1-2"],
)
def test_queues_share_a_full_cluster_by_weight(weights, expected):
    c = Cluster().nodes(4, cpu="4")
    for name, weight in weights.items():
        c.queue(name, weight=weight)
    for name in weights:  # every queue asks for the whole cluster, in 1-cpu single-pod jobs
        for j in range(16):
            c.job(f"{name}{j:02d}", {"w": (1, {"cpu": "1"})}, queue=name, min_resources=False)
    decisions = c.schedule()
    assert _pods_per_queue(decisions, weights) == expected


def test_a_queue_asking_less_leaves_the_rest_to_the_others():
    c = Cluster().nodes(4, cpu="4").queue("small", weight=3).queue("big", weight=1)
    for j in range(2):
        c.job(f"small{j}", {"w": (1, {"cpu": "1"})}, queue="small", min_resources=False)
    for j in range(16):
        c.job(f"big{j:02d}", {"w": (1, {"cpu": "1"})}, queue="big", min_resources=False)
    assert _pods_per_queue(c.schedule(), ["small", "big"]) == {"small": 2, "big": 14}


def _attr(name, weight, request, capability=None, guarantee=None):
    attr = QueueAttr(QueueInfo(name))
    attr.weight = weight
    attr.request = {"cpu": float(request)}
    attr.capability = {"cpu": capability} if capability is not None else {}
    attr.guarantee = {"cpu": float(guarantee)} if guarantee is not None else {}
    return attr


@pytest.mark.parametrize(
    ("queues", "deserved"),
    [
        ([("a", 1, 100), ("b", 1, 100)], {"a": 50, "b": 50}),
        ([("a", 1, 10), ("b", 1, 100)], {"a": 10, "b": 90}),
        ([("a", 1, 100, 20), ("b", 1, 100)], {"a": 20, "b": 80}),
        ([("a", 1, 100, None, 70), ("b", 1, 100)], {"a": 70, "b": 30}),
        ([("a", 3, 100), ("b", 1, 100)], {"a": 75, "b": 25}),
        ([("a", 1, 0), ("b", 1, 100)], {"a": 0, "b": 100}),
    ],
    ids=["equal", "capped-by-request", "capped-by-capability", "floored-at-guarantee", "weighted", "idle-queue"],
)
def test_water_filling_of_deserved_shares(queues, deserved):
    attrs = [_attr(*q) for q in queues]
    water_fill(attrs, {"cpu": 100.0})
    assert {a.name: round(a.deserved["cpu"]) for a in attrs} == deserved


@pytest.mark.parametrize(
    ("factor", "admitted"),
    [(None, 3), ("1.0", 2), ("2.0", 5)],
    ids=["default-1.2", "no-overcommit", "double"],
)
def test_overcommit_lets_enqueue_admit_up_to_the_factor(factor, admitted):
    arguments = f"\n    arguments: {{overcommit-factor: {factor}}}" if factor else ""
    conf = f'actions: "enqueue"\ntiers:\n- plugins:\n  - name: overcommit{arguments}\n'
    c = Cluster(conf).queue("default").nodes(5, cpu="2")  # 10 cpu
    for j in range(6):
        c.job(f"j{j}", {"w": (4, {"cpu": "1"})}, pods=False)  # minResources 4 cpu each
    decisions = c.schedule()
    assert [d.podgroup for d in of(decisions, ev.PodGroupEnqueued)] == [f"default/j{j}" for j in range(admitted)]
    refused = of(decisions, ev.PodGroupUnschedulable)
    assert len(refused) == 6 - admitted
    assert all(r.reason == "NotEnqueueable" and r.rule == "enqueue/overcommit" for r in refused)
    assert "resource in cluster is overused" in refused[0].message


def test_queue_capability_limits_what_enqueue_admits():
    c = Cluster().nodes(4, cpu="4").queue("capped", capability={"cpu": "6"})
    for j in range(3):
        c.job(f"j{j}", {"w": (2, {"cpu": "1"})}, queue="capped", pods=False)
    decisions = c.schedule()
    assert len(of(decisions, ev.PodGroupEnqueued)) == 3
    c.job("j3", {"w": (2, {"cpu": "1"})}, queue="capped", pods=False)
    [refused] = of(c.schedule(), ev.PodGroupUnschedulable)
    assert refused.rule == "enqueue/proportion"
    assert "queue capped resource quota insufficient: cpu would be 8 of 6" == refused.message


@pytest.mark.parametrize(("state", "message"), [("Closed", "queue q is Closed"), (None, "queue q does not exist")])
def test_podgroups_of_closed_or_missing_queues_are_not_admitted(state, message):
    c = Cluster().nodes(1)
    if state:
        c.queue("q", state=state)
    c.job("a", {"w": (1, {"cpu": "1"})}, queue="q")
    [refused] = c.schedule()
    assert isinstance(refused, ev.PodGroupUnschedulable) and refused.message == message
    assert c.schedule() == []  # said once


def test_higher_priority_queue_goes_first():
    c = Cluster().nodes(1, cpu="2").queue("low", priority=1).queue("high", priority=10)
    c.job("low", {"w": (2, {"cpu": "1"})}, queue="low", pods=False)
    c.job("high", {"w": (2, {"cpu": "1"})}, queue="high", pods=False)
    decisions = c.schedule()
    assert [d.podgroup for d in of(decisions, ev.PodGroupEnqueued)] == ["default/high"]
    assert [d.podgroup for d in of(decisions, ev.PodGroupUnschedulable)] == ["default/low"]


def test_finished_podgroups_reserve_nothing_for_enqueue():
    conf = 'actions: "enqueue, allocate"\ntiers:\n- plugins:\n  - name: gang\n  - name: overcommit\n  - name: predicates\n'
    c = Cluster(conf).queue("default").nodes(1, cpu="4")
    c.job("done", {"w": (4, {"cpu": "1"})})
    c.schedule()
    c.job("next", {"w": (4, {"cpu": "1"})}, pods=False)
    assert of(c.schedule(), ev.PodGroupUnschedulable)  # the cluster is full
    for i in range(4):
        c.add(ev.PodSucceeded(pod=f"default/done-w-{i}", job="default/done"))
    decisions = c.schedule()  # "done" is still Running until this session closes
    assert [d.podgroup for d in of(decisions, ev.PodGroupEnqueued)] == ["default/next"]
