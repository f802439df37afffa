"""A settled podgroup's copy kept from one session to the next decides exactly as a fresh one.

The snapshot keeps the copy of each podgroup whose pods all hold their nodes
on the state (``ClusterState.jobs_cache``) and takes it again while nothing
of it changed. These tests fold a real log event by event (as the runtime
does) and, at every session, open the session twice over the same state:
once with the kept copies and once with none. What the session sees of every
podgroup at open and what it decides must be the same, through pods that
start (a change that does not move the podgroup's epoch), evictions, pods
that finish and jobs that complete; and the kept copies must really be
taken, or the comparison would prove nothing.
"""

from __future__ import annotations

from handlers.scheduler.actions import ACTIONS
from handlers.scheduler.session import Session
from schemas import events as ev
from tests.unit.scheduler.tables import bound, default_conf_with, of
from tests.unit.scheduler.test_working_set import FoldingCluster


def view(job) -> tuple:
    """All a session reads of a podgroup's copy at open (without building a settled one's tasks)."""
    return (
        job.name, job.job, job.queue, job.min_member, dict(job.min_task_member), dict(job.min_resources),
        job.priority, job.created_at, job.phase, job.inqueue_at, job.settled, job.ready,
        {k: v for k, v in job.counts.items() if v},
        {role: {k: v for k, v in counts.items() if v} for role, counts in job.role_counts.items()},
        dict(job.allocated), job.unchanged, job.timed_out, job.fit_errors, job.blocked_by,
        [(t.name, t.status, t.node) for t in job._tasks],
    )


class TwinCluster(FoldingCluster):
    """Every session runs twice over the same state: with no kept copy, then with the kept ones."""

    def __init__(self, conf=None) -> None:
        super().__init__(conf)
        self.taken = 0  # copies the previous session had, taken again
        self.previous: dict = {}
        self.handler.decide = self._decide

    def _run(self, state, now):
        ssn = Session(state, self.handler.conf, now)
        views = [view(job) for job in ssn.jobs.values()]
        for action in self.handler.conf.actions:
            ACTIONS[action](ssn)
        return views, ssn.close(), ssn.jobs

    def _decide(self, state, trigger):
        if not isinstance(trigger.payload, ev.SchedulingRequested):
            return []
        now = trigger.payload.now
        kept = state.jobs_cache
        state.jobs_cache = None
        fresh_views, fresh, _ = self._run(state, now)
        state.jobs_cache = kept
        views, decisions, jobs = self._run(state, now)
        assert views == fresh_views
        assert decisions == fresh
        self.taken += sum(1 for name, job in jobs.items() if job is self.previous.get(name))
        self.previous = jobs
        return decisions


def scenario(conf) -> TwinCluster:
    """Jobs bound, started, preempted (with ``preempt`` in the conf), finished and completed."""
    c = TwinCluster(conf)
    c.queue("default").priority_class("high", 1000).priority_class("low", 10)
    c.nodes(2, cpu="4", memory="8Gi")
    for k in range(3):
        c.job(f"low-{k}", {"w": (2, {"cpu": "1", "memory": "1Gi"})}, min_member=1, priority_class="low")
    placed = bound(c.schedule())
    assert len(placed) == 6
    c.schedule()
    for pod, node in sorted(placed.items())[:3]:  # Bound -> Running: the podgroup's epoch stays
        c.add(ev.PodStarted(pod=pod, job=pod.rsplit("-", 2)[0], node=node))
        c.schedule()
    # admitted already: preempt takes no Pending podgroup (issue 16, rule 2) and the full cluster keeps it Pending
    c.job("urgent", {"main": (1, {"cpu": "4"})}, priority_class="high", inqueue=True)
    c.evicted = of(c.schedule(), ev.PodEvictionRequested)
    for pod, node in sorted(placed.items())[3:]:
        c.add(ev.PodStarted(pod=pod, job=pod.rsplit("-", 2)[0], node=node))
        c.schedule()
    for pod in sorted(placed)[:2]:
        c.add(ev.PodSucceeded(pod=pod, job=pod.rsplit("-", 2)[0]))
        c.schedule()
    c.add(ev.JobPhaseChanged(job="default/low-0", phase="Completed", previous="Running"))
    c.schedule()
    c.job("later", {"w": (1, {"cpu": "1"})})
    c.schedule()
    c.schedule()
    return c


def test_kept_copies_see_and_decide_what_fresh_ones_do() -> None:
    c = scenario(None)  # the default conf
    assert c.taken >= 10, f"only {c.taken} kept copies were taken again"


def test_a_copy_whose_tasks_a_session_built_is_made_afresh() -> None:
    # preempt looks at the running jobs' tasks (who is starving, who may be a victim): their
    # copies are then made afresh at every session, and decide the same.
    c = scenario(default_conf_with("enqueue, allocate, preempt, backfill"))
    assert c.evicted, "nothing was evicted"
