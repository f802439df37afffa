"""drf with ``enabledHierarchy``: queue shares compared level by level through the queue tree, by weight."""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import load_conf
from tests.unit.scheduler.tables import Cluster
from tests.unit.scheduler.test_capacity import held, queue, run, small_jobs

CONF = load_conf(
    """
actions: "enqueue, allocate"
tiers:
- plugins:
  - name: priority
  - name: gang
- plugins:
  - name: drf
    enabledHierarchy: true
  - name: predicates
"""
)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"eng": 3, "ops": 1, "eng-train": 1, "eng-infer": 1}, {"eng-infer": 6, "eng-train": 6, "ops": 4}),
        ({"eng": 1, "ops": 1, "eng-train": 3, "eng-infer": 1}, {"eng-infer": 2, "eng-train": 6, "ops": 8}),
        ({"eng": 1, "ops": 1, "eng-train": 1, "eng-infer": 1}, {"eng-infer": 4, "eng-train": 4, "ops": 8}),
    ],
    ids=["parents-3-to-1", "children-3-to-1", "even-two-children-share-half"],
)
def test_a_subtree_gets_its_weight_whatever_number_of_queues_it_holds(weights, expected):
    c = Cluster(CONF).nodes(4, cpu="4")
    queue(c, "eng", weight=weights["eng"])
    queue(c, "ops", weight=weights["ops"])
    queue(c, "eng-train", parent="eng", weight=weights["eng-train"])
    queue(c, "eng-infer", parent="eng", weight=weights["eng-infer"])
    for name in ("eng-train", "eng-infer", "ops"):
        small_jobs(c, name, 16)
    assert held(run(c)) == expected


def test_without_the_switch_queues_are_not_ordered_by_the_tree():
    flat = load_conf(
        """
actions: "enqueue, allocate"
tiers:
- plugins: [{name: priority}, {name: gang}]
- plugins: [{name: drf}, {name: predicates}]
"""
    )
    c = Cluster(flat).nodes(4, cpu="4")
    queue(c, "eng", weight=3)
    queue(c, "ops", weight=1)
    queue(c, "eng-train", parent="eng")
    queue(c, "eng-infer", parent="eng")
    for name in ("eng-train", "eng-infer", "ops"):
        small_jobs(c, name, 16)
    counts = held(run(c))
    assert sum(counts.values()) == 16
    assert counts["ops"] != 4  # queues take turns as equals instead
