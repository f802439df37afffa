"""Actions over time: pipelining, backfill, reservations that time out, podgroup phases."""

from __future__ import annotations

import pytest

from handlers.scheduler import is_relevant
from schemas import events as ev
from schemas.envelope import Envelope
from tests.unit.scheduler.tables import Cluster, bound, node_event, of


def _kinds(decisions):
    return [type(d).__name__ for d in decisions]


def test_pipelining_onto_releasing_resources_then_binding_once_freed():
    c = Cluster().queue("default").node("n0", cpu="2")
    c.job("old", {"w": (2, {"cpu": "1"})}, min_resources=False)
    assert len(bound(c.schedule())) == 2
    c.add(*(ev.PodDeletionRequested(pod=f"default/old-w-{i}", job="default/old") for i in range(2)))
    c.job("new", {"w": (2, {"cpu": "1"})}, min_resources=False)
    first = c.schedule()
    assert [(d.pod, d.node, d.rule) for d in of(first, ev.PodPipelined)] == [
        ("default/new-w-0", "n0", "allocate.pipeline"),
        ("default/new-w-1", "n0", "allocate.pipeline"),
    ]
    assert bound(first) == {} and not of(first, ev.PodGroupUnschedulable)
    assert c.schedule() == []  # still releasing: the reservation stands, nothing new to say
    c.add(*(ev.PodDeleted(pod=f"default/old-w-{i}", job="default/old") for i in range(2)))
    freed = c.schedule()
    assert bound(freed) == {"default/new-w-0": "n0", "default/new-w-1": "n0"}
    phases = {(d.podgroup, d.previous, d.phase) for d in of(freed, ev.PodGroupPhaseChanged)}
    assert phases == {("default/new", "Inqueue", "Running"), ("default/old", "Running", "Pending")}
    state = c.state()
    assert state.nodes["n0"].used == {"cpu": 2000, "pods": 2} and state.nodes["n0"].pipelined == {}


def test_backfill_places_best_effort_pods():
    c = Cluster().queue("default").node("full", cpu="1").node("spare", cpu="1", pods=1)
    c.job("busy", {"w": (1, {"cpu": "1"})}, min_resources=False)
    c.schedule()
    c.job("be", {"w": (2, {})}, min_resources=False)
    decisions = c.schedule()
    assert {(d.pod, d.rule) for d in of(decisions, ev.PodBound)} == {
        ("default/be-w-0", "backfill"),
        ("default/be-w-1", "backfill"),
    }
    assert sorted(bound(decisions).values()) == ["full", "spare"]


def test_best_effort_pods_need_a_free_pod_slot():
    c = Cluster().queue("default").node("tiny", pods=1)
    c.job("be", {"w": (2, {})}, min_resources=False)
    [verdict] = of(c.schedule(), ev.PodGroupUnschedulable)
    assert verdict.message == "1/2 tasks in gang unschedulable: 1 Too many pods"


TIMEOUT = """
actions: "enqueue, allocate"
tiers:
- plugins:
  - name: gang
  - name: overcommit
  - name: predicates
configurations:
- name: enqueue
  arguments: {inqueue-timeout: 10s}
"""


def test_inqueue_reservation_not_bound_in_time_returns_to_pending():
    c = Cluster(TIMEOUT).queue("default").node("n0", cpu="4")
    c.job("slow", {"w": (4, {"cpu": "1"})}, pods=False, at=1_000)
    c.job("next", {"w": (4, {"cpu": "1"})}, pods=False, at=1_001)
    first = c.schedule(now=2_000)
    assert [d.podgroup for d in of(first, ev.PodGroupEnqueued)] == ["default/slow"]
    assert c.schedule(now=5_000) == []
    expired = c.schedule(now=12_000)
    [back] = of(expired, ev.PodGroupPhaseChanged)
    assert (back.podgroup, back.previous, back.phase, back.reason, back.rule) == (
        "default/slow",
        "Inqueue",
        "Pending",
        "InqueueTimeout",
        "enqueue.inqueue-timeout",
    )
    assert [d.podgroup for d in of(expired, ev.PodGroupEnqueued)] == ["default/next"]
    assert c.state().podgroups["default/slow"].phase == "Pending"


def test_podgroup_completes_when_its_pods_succeed():
    c = Cluster().queue("default").nodes(1)
    c.job("a", {"w": (2, {"cpu": "1"})}, min_resources=False)
    c.schedule()
    for i in range(2):
        c.add(ev.PodStarted(pod=f"default/a-w-{i}", job="default/a", node="n0"))
    assert c.schedule() == []
    for i in range(2):
        c.add(ev.PodSucceeded(pod=f"default/a-w-{i}", job="default/a"))
    [done] = c.schedule()
    assert (done.previous, done.phase) == ("Running", "Completed")
    assert c.state().nodes["n0"].used == {}


def test_failed_bind_is_tried_again():
    c = Cluster().queue("default").node("n0").node("n1")
    c.job("a", {"w": (1, {"cpu": "1"})}, min_resources=False)
    [pod] = list(bound(c.schedule()).items())
    c.add(ev.PodBindFailed(pod=pod[0], job="default/a", node=pod[1], reason="node gone"))
    decisions = c.schedule()
    assert list(bound(decisions)) == [pod[0]]


def test_stale_decisions_are_ignored_and_counted():
    c = Cluster().queue("default").node("n0")
    c.job("a", {"w": (1, {"cpu": "1"})}, min_resources=False)
    c.add(ev.PodDeleted(pod="default/a-w-0", job="default/a"))
    c.add(ev.PodBound(pod="default/a-w-0", job="default/a", node="n0"))
    c.add(ev.PodBound(pod="default/ghost", node="n0"))
    c.add(ev.PodGroupEnqueued(podgroup="default/gone"))
    state = c.state()
    assert state.stale == {"PodBound": 2, "PodGroupEnqueued": 1}
    assert state.nodes["n0"].used == {}


@pytest.mark.parametrize(
    ("event", "relevant"),
    [
        (node_event("n0"), True),
        (ev.PodSucceeded(pod="p"), True),
        (ev.PodDeletionRequested(pod="p", job="j"), True),
        (ev.QueueStateChanged(queue="q", state="Closed"), True),
        (ev.PodStarted(pod="p", node="n0"), False),
        (ev.PodBound(pod="p", node="n0"), False),
        (ev.PodGroupEnqueued(podgroup="g"), False),
        (ev.SchedulingRequested(now=1), False),
        (ev.PodGroupPhaseChanged(podgroup="g", phase="Running", previous="Inqueue"), False),
        (ev.PodGroupPhaseChanged(podgroup="g", phase="Pending", previous="Running"), True),
    ],
    ids=[
        "node",
        "pod-done",
        "pod-releasing",
        "queue",
        "pod-started",
        "own-bind",
        "own-enqueue",
        "trigger",
        "group-running",
        "group-back-to-pending",
    ],
)
def test_relevance_of_events(event, relevant):
    assert is_relevant(Envelope.wrap(event, recorded_at=0)) is relevant


def test_only_scheduling_requests_open_a_session():
    c = Cluster().queue("default").node("n0")
    c.job("a", {"w": (1, {"cpu": "1"})}, min_resources=False)
    assert c.handler.decide(c.state(), c.log[-1]) == []
    assert _kinds(c.schedule()) == ["PodGroupEnqueued", "PodBound", "PodGroupPhaseChanged"]


def test_gang_partly_on_releasing_resources_is_kept_as_reservations_until_it_can_bind_whole():
    c = Cluster().queue("default").node("busy", cpu="2").node("free", cpu="1")
    c.job("old", {"w": (2, {"cpu": "1"})}, min_resources=False)
    c.schedule()
    assert set(bound([e.payload for e in c.log]).values()) == {"busy"}
    c.add(*(ev.PodDeletionRequested(pod=f"default/old-w-{i}", job="default/old") for i in range(2)))
    c.job("gang", {"w": (3, {"cpu": "1"})}, min_resources=False)
    reserved = c.schedule()
    assert bound(reserved) == {}
    assert sorted((d.pod, d.node) for d in of(reserved, ev.PodPipelined)) == [
        ("default/gang-w-0", "free"),
        ("default/gang-w-1", "busy"),
        ("default/gang-w-2", "busy"),
    ]
    assert not of(reserved, ev.PodGroupPhaseChanged)  # still Inqueue: nothing is bound
    c.add(*(ev.PodDeleted(pod=f"default/old-w-{i}", job="default/old") for i in range(2)))
    assert sorted(bound(c.schedule()).values()) == ["busy", "busy", "free"]


def test_running_group_found_unschedulable_becomes_unknown():
    c = Cluster().queue("default").node("n0", cpu="2")
    c.job("a", {"w": (2, {"cpu": "1"})}, min_resources=False)
    c.schedule()
    c.add(ev.PodStarted(pod="default/a-w-0", job="default/a", node="n0"))
    c.add(ev.PodFailed(pod="default/a-w-1", job="default/a", exit_code=1))
    c.add(ev.PodDeleted(pod="default/a-w-1", job="default/a"))
    c.pods("a", {"again": (1, {"cpu": "2"})})  # the replacement no longer fits beside the survivor
    phase, verdict = c.schedule()
    assert (phase.previous, phase.phase, phase.reason) == ("Running", "Unknown", "RunningButUnschedulable")
    assert verdict.message == "1/2 tasks in gang unschedulable: 1 Insufficient cpu"
