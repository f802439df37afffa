"""A session leaves the tasks of jobs whose pods all hold their nodes unbuilt, and decides
exactly as if it had built them: a busy cluster's running jobs cost a session almost nothing."""

from __future__ import annotations

from handlers.scheduler.actions import ACTIONS
from handlers.scheduler.session import Session
from schemas import events as ev
from tests.unit.scheduler.tables import Cluster, bound, default_conf_with, of

TWO = {"w": (2, {"cpu": "1", "memory": "1Gi"})}


def busy_cluster(conf=None) -> Cluster:
    c = Cluster(conf).queue("default").queue("other").priority_class("high", 1000).priority_class("low", 1)
    c.nodes(4, cpu="8", memory="32Gi")
    for i in range(12):  # 24 of the 32 cpus taken by running 2-pod jobs in two queues
        c.job(f"run-{i}", TWO, queue=("default", "other")[i % 2], priority_class="low", min_member=1)
    assert len(bound(c.schedule())) == 24
    return c


def session(c: Cluster, *, build_all: bool) -> tuple[Session, list[ev.Event]]:
    state = c.state()
    ssn = Session(state, c.handler.conf, c.clock + 1)
    if build_all:
        for job in ssn.jobs.values():
            assert job.tasks is not None  # every job's tasks built up front
    for action in c.handler.conf.actions:
        ACTIONS[action](ssn)
    return ssn, ssn.close()


def test_running_jobs_are_not_copied_task_by_task_and_decisions_are_the_same() -> None:
    c = busy_cluster()
    c.job("new", {"w": (3, {"cpu": "2"})}, min_member=3)
    lazy, decisions = session(c, build_all=False)
    eager, expected = session(c, build_all=True)
    assert decisions == expected
    assert sorted(bound(decisions)) == ["default/new-w-0", "default/new-w-1", "default/new-w-2"]
    running = [job for job in lazy.jobs.values() if job.job.startswith("default/run-")]
    assert len(running) == 12 and all(job.settled for job in running)
    assert all(job.ready_num() == 2 and job.allocated == {"cpu": 2000, "memory": 2 * 1024**3} for job in running)


def test_preemption_builds_the_victims_tasks_when_it_needs_them() -> None:
    conf = default_conf_with("enqueue, allocate, preempt, backfill")
    c = Cluster(conf).queue("default").priority_class("high", 1000).priority_class("low", 10).node("n0", cpu="4")
    c.job("low", {"main": (4, {"cpu": "1"})}, min_member=1, priority_class="low")
    assert len(bound(c.schedule())) == 4
    # admitted already: preempt takes no Pending podgroup (issue 16, rule 2) and the full cluster keeps it Pending
    c.job("urgent", {"main": (1, {"cpu": "2"})}, priority_class="high", inqueue=True)
    lazy, decisions = session(c, build_all=False)
    _, expected = session(c, build_all=True)
    assert decisions == expected
    victims = sorted(v.pod for v in of(decisions, ev.PodEvictionRequested))
    assert victims == ["default/low-main-2", "default/low-main-3"]
    assert not lazy.jobs["default/low"].settled  # built when preempt looked for victims
