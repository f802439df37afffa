"""backfill: place best-effort pods (no resource requests) wherever a pod slot is free.

Where it sits: the last action of the default conf. For admitted jobs in job
order, places their pending best-effort tasks on the best node among those
passing the predicates with a free pod slot; never pipelines. A job's
placements are committed when the job is ready (gang), else discarded and the
job reported unschedulable like in allocate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.scheduler.actions.allocate import gang_message
from handlers.scheduler.api import JobInfo, TaskInfo
from handlers.scheduler.placement import placement_for
from handlers.scheduler.statement import Statement

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


def execute(ssn: Session) -> None:
    # Only jobs with pending best-effort tasks are ordered: a job's tasks change only while
    # that job is placed, so leaving the others out first gives the same order, and the
    # ordering costs nothing for the running jobs of a busy cluster.
    candidates: list[tuple[JobInfo, list[TaskInfo]]] = []
    for job in ssn.jobs.values():
        if not job.counts.get("Pending"):
            continue
        if job.unchanged or job.phase in ("Pending", "Completed"):
            continue
        tasks = [t for t in job.tasks if t.status == "Pending" and t.best_effort]
        if tasks:
            candidates.append((job, tasks))
    for job, tasks in sorted(candidates, key=lambda pair: ssn.job_key(pair[0])):
        queue = ssn.queues.get(job.queue)
        if queue is None or queue.state == "Closed" or not ssn.job_valid(job).passed:
            continue
        stmt = Statement(ssn)
        for task in sorted(tasks, key=ssn.task_key):
            choice = placement_for(ssn, task, pipeline=False).best()
            if choice is None:
                job.fit_errors = ssn.fit_errors(task)
                break
            stmt.allocate(task, choice[1])
        if ssn.job_ready(job):
            stmt.commit("backfill")
        else:
            rule = ssn.hooks.job_ready.all(job).plugin or "backfill"
            placed = stmt.placed()
            stmt.discard()
            ssn.mark_unschedulable(job, "NotEnoughResources", gang_message(job, placed), rule)
