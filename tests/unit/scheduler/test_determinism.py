"""The same log always gives the same decisions; node insertion order never matters."""

from __future__ import annotations

import random

import pytest

from schemas import events as ev
from schemas.envelope import Envelope
from tests.unit.scheduler.tables import Cluster, node_event

NODES = [
    ("zeta", dict(cpu="8", memory="16Gi", labels={"pool": "a"})),
    ("alpha", dict(cpu="8", memory="16Gi", labels={"pool": "a"})),
    ("mid", dict(cpu="8", memory="16Gi", labels={"pool": "b"}, gpu=2)),
    ("beta", dict(cpu="8", memory="16Gi", labels={"pool": "b"}, gpu=2)),
    ("omega", dict(cpu="4", memory="8Gi", labels={"pool": "a"}, taints=[("spot", "", "NoSchedule")])),
    ("gamma", dict(cpu="8", memory="16Gi", labels={"pool": "a"})),
]


def _cluster(node_order: list[int]) -> Cluster:
    c = Cluster().queue("default", weight=1).queue("research", weight=2)
    for i in node_order:
        name, kwargs = NODES[i]
        c.add(node_event(name, **kwargs))
    c.job("train", {"ps": (1, {"cpu": "2"}), "worker": (4, {"cpu": "2", "nvidia.com/gpu": "1"})}, queue="research")
    c.job("etl", {"w": (6, {"cpu": "1", "memory": "2Gi"})}, min_member=3)
    c.job("spot", {"w": (2, {"cpu": "1"})}, tolerations=[{"key": "spot", "operator": "Exists"}])
    c.job("be", {"w": (3, {})}, queue="research")
    c.job("huge", {"w": (4, {"cpu": "8"})}, min_resources=False)
    return c


def _run(c: Cluster) -> list[ev.Event]:
    out = c.schedule(now=100)
    c.add(ev.PodDeleted(pod="default/etl-w-0", job="default/etl"))
    return out + c.schedule(now=200)


def test_identical_logs_give_identical_decisions():
    first, second = _cluster(list(range(len(NODES)))), _cluster(list(range(len(NODES))))
    assert _run(first) == _run(second)
    assert [e.payload for e in first.log] == [e.payload for e in second.log]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_node_insertion_order_does_not_change_decisions(seed):
    order = list(range(len(NODES)))
    reference = _run(_cluster(order))
    random.Random(seed).shuffle(order)
    assert _run(_cluster(order)) == reference
    assert any(isinstance(d, ev.PodBound) for d in reference)


def test_ties_between_identical_nodes_go_to_the_first_name():
    for order in (["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]):
        c = Cluster().queue("default")
        for name in order:
            c.node(name)
        c.job("one", {"w": (1, {"cpu": "1"})}, min_resources=False)
        assert [d.node for d in c.schedule() if isinstance(d, ev.PodBound)] == ["a"]


def test_decide_does_not_change_the_state():
    c = _cluster(list(range(len(NODES))))
    state = c.state()
    before = {name: (dict(n.used), dict(n.pipelined)) for name, n in state.nodes.items()}
    phases = {name: g.phase for name, g in state.podgroups.items()}
    decisions = c.handler.decide(state, Envelope.wrap(ev.SchedulingRequested(now=5), recorded_at=5).at(999))
    assert decisions
    assert {name: (dict(n.used), dict(n.pipelined)) for name, n in state.nodes.items()} == before
    assert {name: g.phase for name, g in state.podgroups.items()} == phases
