"""The node controller: every node request answered with facts or a refusal, as a cluster owner would."""

from __future__ import annotations

import pytest

from handlers.node import NodeHandler
from schemas.envelope import Causation, Envelope
from schemas.events import (
    NodeAdded,
    NodeAddRequested,
    NodeCordonRequested,
    NodeDrainRequested,
    NodeRemoved,
    NodeRemoveRequested,
    NodeRequestRefused,
    NodeUpdated,
    PodBound,
    PodDeleted,
    PodEvicted,
    PodEvictionRequested,
    PodStarted,
    PodSucceeded,
)
from schemas.events.base import Event
from schemas.resources import Node, NodeSpec, NodeStatus, ObjectMeta


def manifest(name: str, *, unschedulable: bool = False) -> Node:
    allocatable = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    return Node(
        metadata=ObjectMeta(name=name, labels={"kubernetes.io/hostname": name}),
        spec=NodeSpec(unschedulable=unschedulable),
        status=NodeStatus(capacity=allocatable, allocatable=allocatable),
    )


def add(name: str, **kwargs) -> NodeAddRequested:
    return NodeAddRequested(node=name, manifest=manifest(name, **kwargs))


def bound(pod: str, node: str, job: str = "default/j") -> PodBound:
    return PodBound(pod=pod, job=job, node=node, rule="allocate")


def run(events: list[Event]) -> list[list[Event]]:
    """Drive the handler as the runtime does: fold each event, decide, fold the decisions
    right after their trigger. Returns the decisions of every event, in order."""
    handler = NodeHandler()
    state = handler.initial()
    answers: list[list[Event]] = []
    position = 0
    for event in events:
        trigger = Envelope.wrap(event, recorded_at=position).at(position)
        position += 1
        state = handler.fold(state, trigger)
        decisions = handler.decide(state, trigger)
        answers.append(decisions)
        for index, decision in enumerate(decisions):
            envelope = Envelope.wrap(decision, recorded_at=trigger.recorded_at,
                                     causation=Causation(trigger.position, handler.name, index))
            state = handler.fold(state, envelope.at(position))
            position += 1
    return answers


def last(events: list[Event]) -> list[Event]:
    return run(events)[-1]


def test_add_answers_with_the_node_and_refuses_a_second_add():
    first, second = run([add("n1"), add("n1")])
    assert first == [NodeAdded(node="n1", manifest=manifest("n1"))]
    assert second == [NodeRequestRefused(node="n1", action="add", reason="node n1 already exists")]


def test_a_node_from_elsewhere_counts_as_existing():
    """A scenario's or an adapter's NodeAdded is a fact the controller folds like its own."""
    assert last([NodeAdded(node="n1", manifest=manifest("n1")), add("n1")]) == [
        NodeRequestRefused(node="n1", action="add", reason="node n1 already exists")
    ]


@pytest.mark.parametrize(
    ("request_", "action"),
    [
        (NodeCordonRequested(node="ghost", unschedulable=True), "cordon"),
        (NodeCordonRequested(node="ghost", unschedulable=False), "uncordon"),
        (NodeDrainRequested(node="ghost"), "drain"),
        (NodeRemoveRequested(node="ghost"), "remove"),
    ],
    ids=["cordon", "uncordon", "drain", "remove"],
)
def test_requests_about_an_unknown_node_are_refused(request_, action):
    refused = NodeRequestRefused(node="ghost", action=action, reason="node ghost not found")
    assert last([add("n1"), request_]) == [refused]


def test_cordon_and_uncordon_set_spec_unschedulable_once():
    cordon, again, uncordon, again_un = run([
        add("n1"),
        NodeCordonRequested(node="n1", unschedulable=True),
        NodeCordonRequested(node="n1", unschedulable=True),
        NodeCordonRequested(node="n1", unschedulable=False),
        NodeCordonRequested(node="n1", unschedulable=False),
    ])[1:]
    assert cordon == [NodeUpdated(node="n1", manifest=manifest("n1", unschedulable=True))]
    assert again == []  # already cordoned: nothing to record (kubectl: "already cordoned")
    assert uncordon == [NodeUpdated(node="n1", manifest=manifest("n1"))]
    assert again_un == []


def test_drain_cordons_and_evicts_the_pods_still_on_the_node_by_name():
    answer = last([
        add("n1"),
        add("n2"),
        bound("default/b-0", "n1", "default/b"),
        bound("default/a-0", "n1", "default/a"),
        bound("default/a-1", "n2", "default/a"),  # another node
        bound("default/done-0", "n1", "default/done"),
        PodSucceeded(pod="default/done-0", job="default/done"),  # finished: nothing to evict
        bound("default/going-0", "n1", "default/going"),
        PodEvictionRequested(pod="default/going-0", job="default/going", reason="preempted", rule="preempt"),
        bound("default/gone-0", "n1", "default/gone"),
        PodDeleted(pod="default/gone-0", job="default/gone"),
        NodeDrainRequested(node="n1"),
    ])
    assert answer == [
        NodeUpdated(node="n1", manifest=manifest("n1", unschedulable=True)),
        PodEvictionRequested(pod="default/a-0", job="default/a", rule="node.drain", reason="node n1 drained"),
        PodEvictionRequested(pod="default/b-0", job="default/b", rule="node.drain", reason="node n1 drained"),
    ]


def test_a_second_drain_evicts_only_what_came_since():
    answers = run([
        add("n1"),
        bound("default/a-0", "n1", "default/a"),
        NodeDrainRequested(node="n1"),
        NodeDrainRequested(node="n1"),  # the first evictions are under way: nothing new
        PodEvicted(pod="default/a-0", job="default/a"),
        PodStarted(pod="default/late-0", job="default/late", node="n1"),  # a pod bound before the cordon
        NodeDrainRequested(node="n1"),
    ])
    assert [type(e).__name__ for e in answers[2]] == ["NodeUpdated", "PodEvictionRequested"]
    assert answers[3] == []
    assert answers[6] == [
        PodEvictionRequested(pod="default/late-0", job="default/late", rule="node.drain", reason="node n1 drained")
    ]


def test_remove_answers_node_removed_and_the_name_can_join_again():
    answers = run([
        add("n1"),
        bound("default/a-0", "n1"),
        NodeRemoveRequested(node="n1"),
        NodeRemoveRequested(node="n1"),
        bound("default/b-0", "n1"),  # a stale bind onto the removed node
        add("n1"),
        NodeDrainRequested(node="n1"),
    ])
    assert answers[2] == [NodeRemoved(node="n1", reason="removed on request")]
    assert answers[3] == [NodeRequestRefused(node="n1", action="remove", reason="node n1 not found")]
    assert answers[5] == [NodeAdded(node="n1", manifest=manifest("n1"))]
    # The pods of the old n1 are not on the new one: only the cordon is recorded.
    assert answers[6] == [NodeUpdated(node="n1", manifest=manifest("n1", unschedulable=True))]


def test_facts_and_other_events_are_not_answered():
    assert run([NodeAdded(node="n1", manifest=manifest("n1")), bound("default/a-0", "n1"),
                NodeRemoved(node="n1")]) == [[], [], []]
