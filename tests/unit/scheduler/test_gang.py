"""gang: all or nothing, with a message that says why."""

from __future__ import annotations

import pytest

from schemas import events as ev
from tests.unit.scheduler.tables import Cluster, bound, of


def test_gang_that_fits_is_bound_whole_and_runs():
    c = Cluster().queue("default").nodes(2, cpu="2").job("a", {"worker": (4, {"cpu": "1"})})
    decisions = c.schedule()
    assert of(decisions, ev.PodGroupEnqueued)[0].podgroup == "default/a"
    assert len(bound(decisions)) == 4
    [phase] = of(decisions, ev.PodGroupPhaseChanged)
    assert (phase.previous, phase.phase) == ("Inqueue", "Running")
    assert c.schedule() == []  # nothing changed, nothing to say


def test_gang_of_four_with_room_for_three_gets_nothing_and_a_clear_message():
    c = Cluster().queue("default").nodes(3, cpu="1")
    c.job("a", {"worker": (4, {"cpu": "1"})}, min_resources=False)
    decisions = c.schedule()
    assert bound(decisions) == {}
    [verdict] = of(decisions, ev.PodGroupUnschedulable)
    assert verdict.reason == "NotEnoughResources"
    assert verdict.rule == "gang"
    assert verdict.message == "1/4 tasks in gang unschedulable: 3 Insufficient cpu"


def test_unschedulable_gang_is_not_tried_or_reported_again_until_something_changes():
    c = Cluster().queue("default").nodes(3, cpu="1")
    c.job("a", {"worker": (4, {"cpu": "1"})}, min_resources=False)
    assert of(c.schedule(), ev.PodGroupUnschedulable)
    assert c.schedule() == []
    c.job("b", {"worker": (1, {"cpu": "1"})}, min_resources=False)  # unrelated job: still nothing for a
    decisions = c.schedule()
    assert not of(decisions, ev.PodGroupUnschedulable)
    assert list(bound(decisions)) == ["default/b-worker-0"]
    c.node("n9", cpu="2")  # capacity added: a is tried again and fits (b holds one node)
    decisions = c.schedule()
    assert sorted(bound(decisions)) == [f"default/a-worker-{i}" for i in range(4)]


def test_min_member_below_replicas_binds_what_fits():
    c = Cluster().queue("default").nodes(3, cpu="1")
    c.job("a", {"worker": (4, {"cpu": "1"})}, min_member=2, min_resources=False)
    decisions = c.schedule()
    assert len(bound(decisions)) == 3
    assert not of(decisions, ev.PodGroupUnschedulable)


@pytest.mark.parametrize(
    ("min_task_member", "binds"),
    [
        ({"ps": 1, "worker": 2}, 3),  # one ps and both workers fit
        ({"ps": 2, "worker": 1}, 0),  # only one node can take a 2-cpu ps
    ],
    ids=["minimums-met", "ps-minimum-unmet"],
)
def test_min_task_member_per_task(min_task_member, binds):
    c = Cluster().queue("default").node("n0", cpu="3").node("n1", cpu="1")
    c.job(
        "tf",
        {"ps": (2, {"cpu": "2"}), "worker": (2, {"cpu": "1"})},
        min_member=3,
        min_task_member=min_task_member,
        min_resources=False,
    )
    decisions = c.schedule()
    placed = bound(decisions)
    assert len(placed) == binds
    if binds:
        roles = sorted(p.split("-")[1] for p in placed)
        assert roles.count("ps") >= min_task_member["ps"] and roles.count("worker") >= min_task_member["worker"]
    else:
        [verdict] = of(decisions, ev.PodGroupUnschedulable)
        assert "tasks in gang unschedulable" in verdict.message


def test_job_whose_pods_do_not_exist_yet_is_waited_for_quietly():
    c = Cluster().queue("default").nodes(2)
    c.job("a", {"worker": (2, {"cpu": "1"})}, pods=False)
    decisions = c.schedule()
    assert [type(d).__name__ for d in decisions] == ["PodGroupEnqueued"]
    c.pods("a", {"worker": (2, {"cpu": "1"})})
    assert len(bound(c.schedule())) == 2


def test_tasks_waiting_for_others_are_left_out_of_the_gang_until_they_have_pods():
    c = Cluster().queue("default").nodes(2, cpu="2")
    c.job(
        "mpi",
        {"worker": (2, {"cpu": "1"})},
        min_member=3,
        min_task_member={"worker": 2, "master": 1},
        annotations={"eventbatch.io/dependent-tasks": "master"},
        min_resources=False,
    )
    decisions = c.schedule()
    assert sorted(bound(decisions)) == ["default/mpi-worker-0", "default/mpi-worker-1"]
    c.pods("mpi", {"master": (1, {"cpu": "1"})})
    assert list(bound(c.schedule())) == ["default/mpi-master-0"]
