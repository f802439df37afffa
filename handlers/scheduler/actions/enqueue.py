"""enqueue: admit Pending podgroups to Inqueue while their queue and the cluster have room.

Where it sits: the first action of the default conf. Walks open queues in
queue order and, within each, Pending podgroups in job order, one podgroup
per turn of a queue. A podgroup without ``minResources`` is admitted at once;
any other goes to the ``job_enqueueable`` vote (``overcommit``,
``proportion``, ``sla``). Admission is decided as ``PodGroupEnqueued`` (the
job controller creates the pods only then); a refusal as
``PodGroupUnschedulable{reason: NotEnqueueable}`` naming the plugin that
refused. A podgroup refused before is not asked again until something it
depends on changes.

Argument (``configurations: - name: enqueue``): ``inqueue-timeout``, a Go
duration; an Inqueue podgroup none of whose pods is placed within it goes
back to Pending and gives its reservation back (default 0: never). The
session applies it when it opens, before the plugins count reservations.
"""

from __future__ import annotations

from handlers.scheduler.actions.ordering import PriorityQueue
from schemas.events import PodGroupEnqueued


def execute(ssn) -> None:
    queues = PriorityQueue(ssn.queue_key)
    jobs: dict[str, PriorityQueue] = {}
    waiting: dict[str, list] = {}
    for job in ssn.jobs.values():
        if job.phase != "Pending" or job.timed_out or job.unchanged:
            continue
        queue = ssn.queues.get(job.queue)
        if queue is None:
            ssn.mark_unschedulable(job, "NotEnqueueable", f"queue {job.queue} does not exist", "enqueue")
            continue
        if queue.state != "Open":
            ssn.mark_unschedulable(job, "NotEnqueueable", f"queue {job.queue} is {queue.state}", "enqueue")
            continue
        waiting.setdefault(queue.name, []).append(job)
    for name, pending in waiting.items():
        jobs[name] = PriorityQueue(ssn.job_key)
        jobs[name].extend(pending)
        queues.push(ssn.queues[name])

    while queues:
        queue = queues.pop()
        pending = jobs[queue.name]
        if not pending:
            continue
        job = pending.pop()
        if not job.min_resources:
            allowed, rule, message = True, "enqueue", ""
        else:
            verdict = ssn.job_enqueueable(job)
            allowed, message = verdict.allowed, verdict.message
            rule = f"enqueue/{verdict.plugin}" if verdict.plugin else "enqueue"
        if allowed:
            job.phase = "Inqueue"
            ssn.job_enqueued(job)
            ssn.emit(PodGroupEnqueued(podgroup=job.name, job=job.job, queue=job.queue, rule=rule))
        else:
            ssn.mark_unschedulable(job, "NotEnqueueable", message, rule)
        queues.push(queue)
