"""data-locality: the annotation eventbatch.io/data-locality draws a job's pods to the nodes holding its data."""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import load_conf
from schemas import events as ev
from schemas.resources import ObjectMeta, Pod, PodSpec
from tests.unit.scheduler.tables import Cluster, bound

CONF = load_conf(
    """
actions: "enqueue, allocate"
tiers:
- plugins: [{name: priority}, {name: gang}]
- plugins: [{name: predicates}, {name: nodeorder}, {name: data-locality}]
"""
)


def cluster() -> Cluster:
    c = Cluster(CONF).queue("default")
    c.node("n0", cpu="8")
    c.node("n1", cpu="8", labels={"dataset": "coco"})
    c.node("n2", cpu="8", labels={"dataset": "imagenet", "zone": "z1"})
    c.node("n3", cpu="8", labels={"dataset": "imagenet", "zone": "z2"})
    return c


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (None, {"n0", "n1"}),
        ("labels=dataset=imagenet", {"n2", "n3"}),
        ("labels=dataset=imagenet,zone=z2", {"n3"}),
        ("nodes=n1", {"n1"}),
        ("nodes=n1;labels=zone=z1", {"n1", "n2"}),
        ("somewhere", {"n0", "n1"}),
    ],
    ids=["none-spreads", "by-label", "all-labels-must-match", "by-node-name", "either-kind", "malformed-ignored"],
)
def test_pods_go_where_the_data_is(annotation, expected):
    c = cluster()
    annotations = {"eventbatch.io/data-locality": annotation} if annotation else {}
    c.job("train", {"w": (2, {"cpu": "1"})}, annotations=annotations)
    assert set(bound(c.schedule()).values()) == expected


def test_the_annotation_on_the_pod_template_counts_too():
    c = cluster()
    c.job("train", {"w": (1, {"cpu": "1"})}, pods=False)
    meta = ObjectMeta(name="train-w-0", namespace="default", annotations={"eventbatch.io/data-locality": "nodes=n3"})
    c.add(
        ev.PodRequested(
            pod="default/train-w-0", job="default/train", podgroup="default/train", task="w", index=0,
            manifest=Pod(metadata=meta, spec=PodSpec()), requests={"cpu": 1000, "pods": 1},
        )
    )
    assert bound(c.schedule()) == {"default/train-w-0": "n3"}


def test_a_full_data_node_leaves_the_pod_to_other_nodes():
    c = cluster()
    annotations = {"eventbatch.io/data-locality": "nodes=n3"}
    c.job("train", {"w": (3, {"cpu": "4"})}, annotations=annotations)
    placed = list(bound(c.schedule()).values())
    assert placed.count("n3") == 2 and len(placed) == 3
