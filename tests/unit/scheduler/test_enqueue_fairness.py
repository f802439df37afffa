"""enqueue takes turns between queues: one podgroup per turn, equal queues least recently served first."""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import load_conf
from schemas import events as ev
from schemas.resources import ObjectMeta, Queue, QueueSpec
from tests.unit.scheduler.tables import Cluster, of

CONF = """
actions: "enqueue, allocate"
tiers:
- plugins:
  - name: priority
  - name: gang
- plugins:
  - name: overcommit
    arguments: {overcommit-factor: 1.0}
  - name: drf
  - name: predicates
  - name: proportion
"""


def _queue_of(podgroup: str) -> str:
    return podgroup.split("/")[1].rstrip("0123456789")


def _admitted(decisions) -> list[str]:
    return [_queue_of(d.podgroup) for d in of(decisions, ev.PodGroupEnqueued)]


def _cluster(weights: dict[str, int], jobs: int, cpu: str = "4", nodes: int = 4) -> Cluster:
    c = Cluster(load_conf(CONF)).nodes(nodes, cpu=cpu)
    for name, weight in weights.items():
        c.queue(name, weight=weight)
    for name in weights:
        for j in range(jobs):
            c.job(f"{name}{j:02d}", {"w": (1, {"cpu": "1"})}, queue=name, pods=False)
    return c


@pytest.mark.parametrize(
    ("weights", "room", "expected"),
    [
        ({"qa": 1, "qb": 1}, 16, {"qa": 8, "qb": 8}),
        ({"qa": 1, "qb": 3}, 16, {"qa": 4, "qb": 12}),
        ({"qa": 1, "qb": 1, "qc": 2}, 16, {"qa": 4, "qb": 4, "qc": 8}),
        ({"qa": 1, "qb": 1}, 5, {"qa": 3, "qb": 2}),
    ],
    ids=["even", "1-to-3", "1-1-2", "odd-room-first-name-gets-the-extra"],
)
def test_the_overcommit_room_is_shared_by_weight(weights, room, expected):
    c = _cluster(weights, jobs=16, cpu=str(room // 4) if room % 4 == 0 else "1", nodes=4 if room % 4 == 0 else room)
    admitted = _admitted(c.schedule())
    assert {q: admitted.count(q) for q in weights} == expected


def test_equal_queues_take_strict_turns_whatever_their_creation_order():
    c = Cluster(load_conf(CONF)).nodes(2, cpu="4")
    for name in ("zeta", "alpha", "mid"):  # created out of name order
        c.queue(name)
        for j in range(4):
            c.job(f"{name}{j}", {"w": (1, {"cpu": "1"})}, queue=name, pods=False)
    admitted = _admitted(c.schedule())
    assert admitted == ["alpha", "mid", "zeta"] * 2 + ["alpha", "mid"]


def test_a_queue_with_nothing_left_drops_out_and_the_others_go_on():
    c = _cluster({"qa": 1, "qb": 1}, jobs=0)
    c.job("qa00", {"w": (1, {"cpu": "1"})}, queue="qa", pods=False)
    for j in range(5):
        c.job(f"qb{j:02d}", {"w": (1, {"cpu": "1"})}, queue="qb", pods=False)
    assert _admitted(c.schedule()) == ["qa", "qb", "qb", "qb", "qb", "qb"]


def _child_queue(c: Cluster, name: str, parent: str) -> None:
    manifest = Queue(metadata=ObjectMeta(name=name), spec=QueueSpec(parent=parent))
    c.add(ev.QueueCreated(queue=name, manifest=manifest), ev.QueueStateChanged(queue=name, state="Open"))


def test_a_job_in_a_queue_that_has_children_is_refused_with_the_reason():
    c = Cluster(load_conf(CONF)).nodes(1, cpu="4").queue("eng")
    _child_queue(c, "eng-train", "eng")
    c.job("parentjob", {"w": (1, {"cpu": "1"})}, queue="eng", pods=False)
    c.job("leafjob", {"w": (1, {"cpu": "1"})}, queue="eng-train", pods=False)
    decisions = c.schedule()
    assert [d.podgroup for d in of(decisions, ev.PodGroupEnqueued)] == ["default/leafjob"]
    [refusal] = of(decisions, ev.PodGroupUnschedulable)
    assert refusal.podgroup == "default/parentjob"
    assert refusal.reason == "NotEnqueueable"
    assert "not a leaf queue" in refusal.message
