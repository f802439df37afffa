"""backfill: place best-effort pods (no resource requests) wherever a pod slot is free.

Where it sits: the last action of the default conf. For admitted jobs in job
order, places their pending best-effort tasks on the best node among those
passing the predicates with a free pod slot; never pipelines. A job's
placements are committed when the job is ready (gang), else discarded and the
job reported unschedulable like in allocate.
"""

from __future__ import annotations

from handlers.scheduler.actions.allocate import gang_message
from handlers.scheduler.placement import placement_for
from handlers.scheduler.statement import Statement


def execute(ssn) -> None:
    jobs = [
        job
        for job in ssn.jobs.values()
        if not job.unchanged and not (job.phase == "Pending" and ssn.enqueue_enabled) and job.phase != "Completed"
    ]
    for job in sorted(jobs, key=ssn.job_key):
        tasks = [t for t in job.tasks if t.status == "Pending" and t.best_effort]
        if not tasks:
            continue
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
            rule = ssn.hooks.all("job_ready", job).plugin or "backfill"
            placed = stmt.placed()
            stmt.discard()
            ssn.mark_unschedulable(job, "NotEnoughResources", gang_message(job, placed), rule)
