"""capacity: quotas through a tree of queues — inherited capability, every ancestor checked, level-by-level order."""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import ConfError, load_conf
from schemas import events as ev
from schemas.resources import Guarantee, ObjectMeta, Queue, QueueSpec
from tests.unit.scheduler.tables import Cluster, bound, of

CONF = load_conf(
    """
actions: "enqueue, allocate"
tiers:
- plugins:
  - name: priority
  - name: gang
- plugins:
  - name: predicates
  - name: capacity
"""
)


def queue(c: Cluster, name: str, parent: str = "", weight: int = 1, capability=None, guarantee=None, deserved=None):
    spec = QueueSpec(
        parent=parent,
        weight=weight,
        capability=capability or {},
        guarantee=Guarantee(resource=guarantee or {}),
        deserved=deserved or {},
    )
    c.add(ev.QueueCreated(queue=name, manifest=Queue(metadata=ObjectMeta(name=name), spec=spec)))
    c.add(ev.QueueStateChanged(queue=name, state="Open"))


def small_jobs(c: Cluster, queue_name: str, count: int, cpu: str = "1") -> None:
    """Single-pod jobs; as the job controller does, their pods come once they are admitted (``run``)."""
    for j in range(count):
        c.job(f"{queue_name}-{j:02d}", {"w": (1, {"cpu": cpu})}, queue=queue_name, pods=False)


def held(decisions) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in bound(decisions):
        name = pod.split("/")[1].rsplit("-", 3)[0]
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def run(c: Cluster) -> list:
    """One session admits, the job controller creates the admitted jobs' pods, the next one places them."""
    admitted = of(c.schedule(), ev.PodGroupEnqueued)
    for decision in admitted:
        name = decision.podgroup.split("/")[1]
        c.pods(name, {"w": (1, {"cpu": "1"})})
    return c.schedule()


@pytest.mark.parametrize(
    ("parent_cap", "child_cap", "expected"),
    [
        ({"cpu": "8"}, {}, 8),
        ({"cpu": "8"}, {"cpu": "4"}, 4),
        ({"cpu": "8"}, {"memory": "4Gi"}, 8),
        ({}, {}, 16),
    ],
    ids=["child-inherits-cpu", "child-own-cap", "unset-dimension-inherited", "no-cap-whole-cluster"],
)
def test_a_child_inherits_the_capability_it_leaves_unset(parent_cap, child_cap, expected):
    c = Cluster(CONF).nodes(4, cpu="4", memory="64Gi")
    queue(c, "eng", capability=parent_cap)
    queue(c, "eng-train", parent="eng", capability=child_cap)
    small_jobs(c, "eng-train", 20)
    assert sum(held(run(c)).values()) == expected


def test_siblings_together_stay_within_their_parents_capability():
    c = Cluster(CONF).nodes(4, cpu="4")
    queue(c, "eng", capability={"cpu": "8"})
    queue(c, "eng-train", parent="eng")
    queue(c, "eng-infer", parent="eng")
    small_jobs(c, "eng-train", 6)
    small_jobs(c, "eng-infer", 6)
    counts = held(run(c))
    assert sum(counts.values()) == 8
    assert counts == {"eng-infer": 4, "eng-train": 4}


def test_enqueue_is_refused_by_the_ancestor_that_is_full_and_names_it():
    c = Cluster(CONF).nodes(4, cpu="4")
    queue(c, "eng", capability={"cpu": "8"})
    queue(c, "eng-train", parent="eng")
    queue(c, "eng-infer", parent="eng")
    small_jobs(c, "eng-infer", 6)
    assert len(bound(run(c))) == 6
    c.job("big", {"w": (4, {"cpu": "1"})}, queue="eng-train", pods=False)
    [refusal] = of(c.schedule(), ev.PodGroupUnschedulable)
    assert refusal.reason == "NotEnqueueable"
    assert refusal.rule == "enqueue/capacity"
    assert refusal.message == "queue eng (above eng-train) resource quota insufficient: cpu would be 10 of 8"


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"eng": 3, "ops": 1, "eng-train": 1, "eng-infer": 1}, {"eng-infer": 6, "eng-train": 6, "ops": 4}),
        ({"eng": 1, "ops": 1, "eng-train": 3, "eng-infer": 1}, {"eng-infer": 2, "eng-train": 6, "ops": 8}),
    ],
    ids=["parents-3-to-1", "children-3-to-1"],
)
def test_shares_are_compared_level_by_level(weights, expected):
    c = Cluster(CONF).nodes(4, cpu="4")
    queue(c, "eng", weight=weights["eng"])
    queue(c, "ops", weight=weights["ops"])
    queue(c, "eng-train", parent="eng", weight=weights["eng-train"])
    queue(c, "eng-infer", parent="eng", weight=weights["eng-infer"])
    for name in ("eng-train", "eng-infer", "ops"):
        small_jobs(c, name, 16)
    assert held(run(c)) == expected


def test_a_siblings_guarantee_is_kept_out_of_reach():
    c = Cluster(CONF).nodes(4, cpu="4")
    queue(c, "eng")
    queue(c, "ops", guarantee={"cpu": "4"})
    small_jobs(c, "eng", 20)
    assert held(run(c)) == {"eng": 12}


def test_a_stated_deserved_share_wins_over_weight():
    c = Cluster(CONF).nodes(4, cpu="4")
    queue(c, "eng", weight=1, deserved={"cpu": "12"})
    queue(c, "ops", weight=100)
    small_jobs(c, "eng", 16)
    small_jobs(c, "ops", 16)
    assert held(run(c)) == {"eng": 12, "ops": 4}


RECLAIM = load_conf(
    """
actions: "enqueue, allocate, reclaim"
tiers:
- plugins:
  - name: priority
  - name: gang
  - name: conformance
- plugins:
  - name: predicates
  - name: capacity
"""
)


@pytest.mark.parametrize(
    ("b_jobs", "b_deserved", "evicted"),
    [(8, None, 8), (12, None, 8), (4, None, 4), (12, {"cpu": "4"}, 4)],
    ids=["takes-its-half", "never-past-its-share", "only-what-it-asks", "stated-deserved-limits-it"],
)
def test_reclaim_takes_back_down_to_the_other_queues_deserved_share(b_jobs, b_deserved, evicted):
    c = Cluster(RECLAIM).nodes(4, cpu="4")
    queue(c, "qa")
    queue(c, "qb", deserved=b_deserved)
    small_jobs(c, "qa", 16)
    assert len(bound(run(c))) == 16
    small_jobs(c, "qb", b_jobs)
    decisions = run(c)
    evictions = of(decisions, ev.PodEvictionRequested)
    assert len(evictions) == evicted
    assert all("/qa-" in e.pod for e in evictions)


def test_capacity_and_proportion_together_are_refused():
    with pytest.raises(ConfError, match="'capacity' and 'proportion' both set the queues' shares"):
        load_conf('actions: "allocate"\ntiers:\n- plugins: [{name: capacity}]\n- plugins: [{name: proportion}]')
