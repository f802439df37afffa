"""The cluster projection: what the scheduler's state holds after each kind of event."""

from __future__ import annotations

from schemas import events as ev
from tests.unit.scheduler.tables import Cluster, node_event

CPU1 = {"cpu": 1000, "pods": 1}


def _bound_job(name: str = "a", pods: int = 2) -> Cluster:
    c = Cluster().queue("default").node("n0", cpu="4")
    c.job(name, {"w": (pods, {"cpu": "1"})}, min_resources=False)
    c.schedule()
    return c


def test_bound_pods_use_their_node_and_updates_keep_that():
    c = _bound_job()
    c.add(node_event("n0", cpu="8", labels={"new": "label"}, update=True))
    node = c.state().nodes["n0"]
    assert node.used == {"cpu": 2000, "pods": 2}
    assert node.allocatable["cpu"] == 8000 and node.labels == {"new": "label"}


def test_deletion_requested_turns_used_into_releasing_until_deleted():
    c = _bound_job()
    c.add(ev.PodDeletionRequested(pod="default/a-w-0", job="default/a"))
    state = c.state()
    assert state.pods["default/a-w-0"].status == "Releasing"
    assert state.nodes["n0"].releasing == CPU1 and state.nodes["n0"].used == {"cpu": 2000, "pods": 2}
    c.add(ev.PodDeleted(pod="default/a-w-0", job="default/a"))
    state = c.state()
    assert "default/a-w-0" not in state.pods
    assert state.nodes["n0"].releasing == {} and state.nodes["n0"].used == CPU1


def test_pod_started_elsewhere_is_adopted_where_it_runs():
    c = _bound_job(pods=1).node("n1")
    c.add(ev.PodStarted(pod="default/a-w-0", job="default/a", node="n1"))
    state = c.state()
    assert state.pods["default/a-w-0"].node == "n1" and state.pods["default/a-w-0"].status == "Running"
    assert state.nodes["n0"].used == {} and state.nodes["n1"].used == CPU1


def test_job_removed_releases_everything_it_held():
    c = _bound_job()
    c.add(ev.JobRemoved(job="default/a"))
    state = c.state()
    assert state.pods == {} and state.podgroups == {}
    assert state.nodes["n0"].used == {}


def test_priority_classes_and_their_global_default():
    c = Cluster().add(ev.PriorityClassAdded(name="normal", value=100, global_default=True))
    c.add(ev.PriorityClassAdded(name="high", value=1000))
    state = c.state()
    assert (state.priority_of("high"), state.priority_of(""), state.priority_of("missing")) == (1000, 100, 100)
    c.add(ev.PriorityClassRemoved(name="normal"))
    assert c.state().priority_of("") == 0


def test_queue_lifecycle():
    c = Cluster().queue("q", weight=3, capability={"cpu": "10"})
    c.add(ev.QueueStateChanged(queue="q", state="Closing"))
    queue = c.state().queues["q"]
    assert (queue.weight, queue.capability, queue.state) == (3, {"cpu": 10000}, "Closing")
    c.add(ev.QueueDeleted(queue="q"))
    assert c.state().queues == {}


def test_removed_node_and_malformed_quantities():
    c = Cluster().node("n0", cpu="lots").add(ev.NodeRemoved(node="gone"))
    state = c.state()
    assert state.invalid["NodeAllocatable"] == 1 and state.nodes["n0"].allocatable == {"pods": 110}
    c.add(ev.NodeRemoved(node="n0"))
    assert c.state().nodes == {}


def test_unschedulable_verdict_records_the_situation_and_capacity_changes_move_it_on():
    c = Cluster().queue("default").node("n0", cpu="1")
    c.job("big", {"w": (2, {"cpu": "1"})}, min_resources=False)
    c.schedule()
    state = c.state()
    group = state.podgroups["default/big"]
    assert group.unschedulable is not None and group.unschedulable[0] == state.fingerprint(group)
    c.node("n1", cpu="1")
    state = c.state()
    assert state.fingerprint(state.podgroups["default/big"]) != group.unschedulable[0]
