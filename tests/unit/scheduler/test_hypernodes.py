"""HyperNodes as network domains: the same decisions as tier labels, selectors, late nodes, refusals."""

from __future__ import annotations

import re

import pytest

from handlers.hypernode import HyperNodeHandler
from handlers.scheduler.conf import load_conf
from handlers.scheduler.hypernodes import HyperNodeTree
from handlers.scheduler.snapshot import build
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.loaders import decode_manifest
from tests.unit.scheduler.tables import Cluster, bound, of
from tests.unit.scheduler.test_network_topology import CONF as LABEL_CONF
from tests.unit.scheduler.test_network_topology import LAYOUT, topology_job

HYPER_CONF = load_conf(
    """
actions: "enqueue, allocate"
tiers:
- plugins: [{name: priority}, {name: gang}]
- plugins: [{name: predicates}, {name: nodeorder}, {name: network-topology-aware}]
"""
)


def hypernode(name: str, tier: int, *members: tuple[str, dict]) -> ev.HyperNodeApplyRequested:
    manifest = decode_manifest({
        "apiVersion": "topology.volcano.sh/v1alpha1", "kind": "HyperNode", "metadata": {"name": name},
        "spec": {"tier": tier, "members": [{"type": kind, "selector": selector} for kind, selector in members]},
    })
    return ev.HyperNodeApplyRequested(hypernode=name, manifest=manifest)


def exact(name: str, kind: str = "Node") -> tuple[str, dict]:
    return kind, {"exactMatch": {"name": name}}


# The label layout of test_network_topology as HyperNodes, each tier-1 one selected another way:
# switch s0 by exact names, s1 by a regex, s2 by a label; spines p0 (s0, s1) and p1 (s2).
TREE = [
    hypernode("s0", 1, exact("n0"), exact("n1")),
    hypernode("s1", 1, ("Node", {"regexMatch": {"pattern": "^n[23]$"}})),
    hypernode("s2", 1, ("Node", {"labelMatch": {"matchLabels": {"rack": "r2"}}})),
    hypernode("p0", 2, exact("s0", "HyperNode"), exact("s1", "HyperNode")),
    hypernode("p1", 2, exact("s2", "HyperNode")),
]


class Controller:
    """The hypernode controller over its own little log: each request's answer."""

    def __init__(self) -> None:
        self.handler = HyperNodeHandler()
        self.state = self.handler.initial()
        self.position = 0

    def answer(self, request: ev.Event) -> list[ev.Event]:
        envelope = Envelope.wrap(request, recorded_at=0).at(self.position)
        decisions = self.handler.decide(self.state, envelope)
        self.position += 1
        for fact in decisions:
            self.state = self.handler.fold(self.state, Envelope.wrap(fact, recorded_at=0).at(self.position))
            self.position += 1
        return decisions


def label_cluster() -> Cluster:
    c = Cluster(LABEL_CONF).queue("default")
    for name, labels in LAYOUT.items():
        c.node(name, cpu="4", labels=labels)
    return c


def hyper_cluster(requests=TREE, nodes=LAYOUT) -> tuple[Cluster, Controller]:
    c = Cluster(HYPER_CONF).queue("default")
    for name in nodes:
        c.node(name, cpu="4", labels={"rack": f"r{int(name[1:]) // 2}"})
    controller = Controller()
    for request in requests:
        c.add(*controller.answer(request))
    return c, controller


def comparable(decisions: list[ev.Event]) -> list[ev.Event]:
    """The decisions with the domain's name taken out of verdict messages (a label vs a HyperNode)."""
    out = []
    for event in decisions:
        if isinstance(event, ev.PodGroupUnschedulable):
            event = ev.PodGroupUnschedulable(**{
                **{f: getattr(event, f) for f in event.__struct_fields__},
                "message": re.sub(r"network domain \([^)]*\)", "network domain (...)", event.message),
            })
        out.append(event)
    return out


CASES = [
    ("no-topology", [("job", 4, None, None)]),
    ("hard-one-switch", [("job", 4, "hard", 1)]),
    ("hard-too-big-for-a-switch-waits", [("job", 6, "hard", 1)]),
    ("hard-one-spine", [("job", 6, "hard", 2)]),
    ("hard-any-tier", [("job", 8, "hard", None)]),
    ("soft-spills-over", [("job", 6, "soft", 1)]),
    ("soft-fits", [("job", 3, "soft", 1)]),
    ("three-jobs-share-the-switches", [("a", 2, "hard", 1), ("b", 3, "hard", 1), ("c", 4, "hard", 2)]),
]


@pytest.mark.parametrize("jobs", [jobs for _, jobs in CASES], ids=[name for name, _ in CASES])
def test_hypernodes_decide_as_the_same_tiers_given_as_node_labels(jobs):
    labelled = label_cluster()
    hyper, _ = hyper_cluster()
    for c in (labelled, hyper):
        for name, pods, mode, tier in jobs:
            topology_job(c, name, pods, mode, tier)
    first, second = labelled.schedule(), hyper.schedule()
    assert comparable(first) == comparable(second)
    # and a second session, over what the first placed, still agrees
    assert comparable(labelled.schedule()) == comparable(hyper.schedule())


def test_the_verdict_names_the_hypernode():
    c, _ = hyper_cluster()
    topology_job(c, "job", 6, "hard", 1)
    [verdict] = of(c.schedule(), ev.PodGroupUnschedulable)
    assert "outside the job's network domain (hypernode s" in verdict.message


@pytest.mark.parametrize(("pods", "tier", "within"), [(4, 1, {"s0"}), (6, 2, {"p0"}), (2, 2, {"s0"})])
def test_hard_mode_keeps_the_job_within_one_hypernode_of_its_tier(pods, tier, within):
    c, _ = hyper_cluster()
    topology_job(c, "job", pods, "hard", tier)
    placed = bound(c.schedule())
    assert len(placed) == pods
    domains = {"s0": {"n0", "n1"}, "p0": {"n0", "n1", "n2", "n3"}}
    assert set(placed.values()) <= domains[next(iter(within))]


def test_regex_and_label_selectors_select_the_right_nodes():
    c, _ = hyper_cluster()
    state = c.state()
    tree = HyperNodeTree(state.hypernodes, build(state).nodes)
    names = tree.nodes.names
    members = {name: {names[i] for i in mask.nonzero()[0]} for tier in tree.tiers for name, mask in tree.domains[tier]}
    assert members == {
        "s0": {"n0", "n1"}, "s1": {"n2", "n3"}, "s2": {"n4", "n5"},
        "p0": {"n0", "n1", "n2", "n3"}, "p1": {"n4", "n5"},
    }
    assert tree.tiers == [1, 2]


def test_a_regex_is_searched_in_the_name_as_go_matches_it():
    c, _ = hyper_cluster([hypernode("gpu", 1, ("Node", {"regexMatch": {"pattern": "[45]"}}))])
    state = c.state()
    tree = HyperNodeTree(state.hypernodes, build(state).nodes)
    [(_, mask)] = tree.domains[1]
    assert {tree.nodes.names[i] for i in mask.nonzero()[0]} == {"n4", "n5"}


def test_a_node_added_later_joins_the_hypernode_whose_selector_matches_it():
    tree = [hypernode("big", 1, ("Node", {"regexMatch": {"pattern": "^n[0-9]$"}})),
            hypernode("other", 1, ("Node", {"regexMatch": {"pattern": "^m"}}))]
    c, _ = hyper_cluster(tree, nodes=["n0", "n1"])
    topology_job(c, "job", 6, "hard", 1)  # 12 cpus: more than n0 and n1 hold
    assert bound(c.schedule()) == {}
    c.node("n2", cpu="4")
    c.node("m0", cpu="4")
    placed = set(bound(c.schedule()).values())
    assert placed == {"n0", "n1", "n2"}


def test_a_refused_hypernode_changes_nothing():
    c, controller = hyper_cluster()
    before = c.state()
    refused = [
        hypernode("p2", 2, exact("s2", "HyperNode")),  # s2 already belongs to p1
        hypernode("s0", 3, exact("p1", "HyperNode")),  # p1 (tier 2) would sit below s0... and s0 already has a parent
        hypernode("p0", 1, exact("s0", "HyperNode")),  # a member of tier 1 not below tier 1
    ]
    for request in refused:
        [answer] = controller.answer(request)
        assert isinstance(answer, ev.HyperNodeRequestRefused), answer
    assert [type(a) for a in controller.answer(ev.HyperNodeDeleteRequested(hypernode="ghost"))] == [
        ev.HyperNodeRequestRefused]
    # the refusals on the log leave the scheduler's state and its decisions as they were
    for request in refused:
        c.add(request, *controller.answer(request))
    after = c.state()
    assert after.hypernodes == before.hypernodes and after.hypernode_epoch == before.hypernode_epoch
    twin, _ = hyper_cluster()
    for x in (c, twin):
        topology_job(x, "job", 6, "hard", 2)
    assert c.schedule() == twin.schedule()


def test_the_controller_adds_updates_and_removes():
    controller = Controller()
    [added] = controller.answer(TREE[0])
    assert isinstance(added, ev.HyperNodeAdded)
    assert controller.answer(TREE[0]) == []  # the same again: nothing to say
    [updated] = controller.answer(hypernode("s0", 1, exact("n0")))
    assert isinstance(updated, ev.HyperNodeUpdated)
    [removed] = controller.answer(ev.HyperNodeDeleteRequested(hypernode="s0"))
    assert isinstance(removed, ev.HyperNodeRemoved)
    assert controller.state.hypernodes == {}


def test_removing_every_hypernode_falls_back_to_the_labels():
    c, controller = hyper_cluster()
    for request in TREE:
        c.add(*controller.answer(ev.HyperNodeDeleteRequested(hypernode=request.hypernode)))
    assert c.state().hypernodes == {}
    topology_job(c, "job", 4, "hard", 1)
    # no HyperNodes and no tiers argument: the plugin has no domains and places freely
    assert len(bound(c.schedule())) == 4
