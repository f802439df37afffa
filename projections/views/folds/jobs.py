"""The folds of job events: JobView's rows, the removed jobs' history rows.

Where it sits: one module of ``projections.views.folds``, called by
``projections.views.viewset.ViewSet`` for each job event. A job keeps what the
job controller's projection keeps for its JobStatus (``JobViewRecord``, mirrored
from ``projections.jobs``); facts only count once per answered trigger
(``jobs_see``, decided by ``ViewSet``). A removed job takes its podgroups and
pods out of memory with it (``projections.views.folds.pods.drop``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The handlers' projections' own names and rules, so the two folds cannot drift apart.
from projections.job_records import FINAL_PHASES as FINAL_JOB_PHASES
from projections.views.folds.base import Table, job_of
from projections.views.folds.pods import drop
from projections.views.state import JobViewRecord
from schemas import events as ev

if TYPE_CHECKING:
    from projections.views.viewset import ViewSet


def _job_created(v: ViewSet, e: ev.JobCreated, at: int, jobs_see: bool) -> tuple[str, str]:
    if jobs_see and e.job not in v.jobs:
        v.jobs[e.job] = JobViewRecord(e.job, e.manifest, at)
    job = job_of(e.job)
    return job, v.queue_of_job(job)


def _job_updated(v: ViewSet, e: ev.JobUpdated, at: int, jobs_see: bool) -> tuple[str, str]:
    rec = v.jobs.get(e.job)
    if jobs_see and rec is not None:
        rec.manifest = e.manifest
    return job_of(e.job), ""


def _job_phase(v: ViewSet, e: ev.JobPhaseChanged, at: int, jobs_see: bool) -> tuple[str, str]:
    rec = v.jobs.get(e.job)
    if jobs_see and rec is not None:
        rec.phase, rec.reason, rec.message, rec.transition_at = e.phase, e.reason, e.message, at
        rec.retry_count, rec.version = e.retry_count, e.version
        rec.conditions.append((e.phase, at))
        if e.phase == "Running" and rec.running_since is None:
            rec.running_since = at
        if e.phase in FINAL_JOB_PHASES:
            rec.finished_at = at
    job = job_of(e.job)
    return job, v.queue_of_job(job)


def _job_removed(v: ViewSet, e: ev.JobRemoved, at: int, jobs_see: bool) -> tuple[str, str]:
    """The job and everything it owns leave memory; the queues and nodes it used change."""
    job = e.job
    queue = v.queue_of_job(job)
    rec = v.jobs.get(job)
    if rec is not None:
        if v.timelines:
            v._history.append(rec.row())
        if jobs_see:
            del v.jobs[job]
            for key in rec.pods:
                v.pod_owner.pop(key, None)
    for key in v.job_pods.pop(job, {}):
        v.pods.pop(key, None)
        v._removed_pods.add(key)
    for key in list(v.holds_by_job.pop(job, {})):
        pod = v.holds.get(key)
        if pod is not None:
            drop(v, pod)
    for name in v.groups_by_job.pop(job, {}):
        group = v.groups.pop(name, None)
        if group is not None:
            v._dirty_groups.add(name)
            v._dirty_queues.add(group.queue)
    return job_of(job), queue


TABLE: Table = Table()
TABLE.on(ev.JobCreated, _job_created)
TABLE.on(ev.JobUpdated, _job_updated)
TABLE.on(ev.JobPhaseChanged, _job_phase)
TABLE.on(ev.JobRemoved, _job_removed)
