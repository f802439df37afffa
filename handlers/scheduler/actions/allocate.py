"""allocate: place the pods of admitted jobs, queue by queue, job by job, gang by gang.

Where it sits: the main action of a session. Walks queues (not Closed) in
queue order, skipping a queue once it is overused; takes one job per turn of a
queue in job order; places that job's pending tasks in task order, each on
the best node (``placement``): on idle resources (allocate) or, failing that,
on resources being released (pipeline). A task the queue cannot afford
(``allocatable``) is skipped; a task no node fits stops the job and records
why. As soon as the job is ready and has tasks left it goes back to its
queue's line, so jobs and queues take turns.

The job's statement is committed when the job is ready (gang complete):
``PodBound`` for allocated tasks, ``PodPipelined`` for pipelined ones. A job
not ready but pipelined keeps its places as reservations (all
``PodPipelined``). Otherwise the statement is discarded, nothing of the job
is placed and the job is reported ``PodGroupUnschedulable`` with the count of
missing tasks and the per-node reasons. In a cluster without nodes every job
with tasks to place is reported so (``the cluster has no nodes``), whatever
its queue's share.

Podgroups still Pending are left to enqueue when enqueue is configured.
When it is not, allocate admits them itself, as Volcano's allocate does ("no
enqueue action is configured"): every Pending podgroup moves to Inqueue
(``PodGroupEnqueued``, rule ``allocate.no-enqueue``, without enqueue's
checks, as in Volcano) and allocation goes on; a podgroup whose pods do not
exist yet gets them from the job controller, and a later session places
them. Jobs reported unschedulable before whose situation has not changed are
left alone.
Best-effort tasks (no requests) are placed here only with a job that also
has tasks with requests; otherwise backfill places them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.scheduler.actions.ordering import PriorityQueue
from handlers.scheduler.api import JobInfo, QueueInfo, RoleKey, TaskInfo
from handlers.scheduler.placement import placement_for
from handlers.scheduler.statement import Statement
from schemas.events import PodGroupEnqueued

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


def gang_message(job: JobInfo, placed: int = 0) -> str:
    """Volcano's wording: tasks still missing to the gang (those that found a node
    in the discarded attempt count as schedulable) over the job's tasks, then why."""
    missing = max(job.min_member - job.ready_num() - placed, 1)
    if job.fit_errors is not None:
        detail = job.fit_errors.summary()
    else:
        detail = job.blocked_by or "no task could be placed"
    return f"{missing}/{len(job.tasks)} tasks in gang unschedulable: {detail}"


def _candidates(ssn: Session, job: JobInfo) -> list[TaskInfo]:
    if not job.counts.get("Pending"):
        return []  # nothing to place (and the tasks of a settled job stay unbuilt)
    pending = [t for t in job.tasks if t.status == "Pending"]
    if all(t.best_effort for t in pending):
        return []
    return sorted(pending, key=ssn.task_key) if len(pending) > 1 else pending


def admit_without_enqueue(ssn: Session) -> None:
    """With no enqueue action configured, every Pending podgroup moves to Inqueue here.

    Volcano: pkg/scheduler/actions/allocate/allocate.go, ``buildAllocateContext``: a
    Pending job's podgroup phase is set to Inqueue before any other check (its
    queue, ``JobValid``), and the session writes the phase back at close."""
    for job in ssn.jobs.values():
        if job.phase == "Pending":
            job.phase = "Inqueue"
            ssn.emit(PodGroupEnqueued(podgroup=job.name, job=job.job, queue=job.queue, rule="allocate.no-enqueue"))


def execute(ssn: Session) -> None:
    if not ssn.enqueue_enabled:
        admit_without_enqueue(ssn)
    queues: PriorityQueue[QueueInfo] = PriorityQueue(ssn.queue_key)
    lines: dict[str, PriorityQueue[JobInfo]] = {}
    todo: dict[str, list[TaskInfo]] = {}
    waiting: dict[str, list[JobInfo]] = {}
    for job in ssn.jobs.values():
        if not job.counts.get("Pending"):
            continue  # nothing to place (most of a busy cluster's podgroups): asked first
        if job.unchanged or job.phase in ("Pending", "Completed"):
            continue
        queue = ssn.queues.get(job.queue)
        if queue is None or queue.state == "Closed":
            continue
        tasks = _candidates(ssn, job)
        if not tasks or not ssn.job_valid(job).passed:
            continue
        todo[job.name] = tasks
        waiting.setdefault(queue.name, []).append(job)
    if not len(ssn.nodes):
        _no_nodes(ssn, todo, waiting)
        return
    for name, jobs in waiting.items():
        lines[name] = PriorityQueue(ssn.job_key)
        lines[name].extend(jobs)
        queues.push(ssn.queues[name])

    while queues:
        queue = queues.pop()
        if ssn.overused(queue):
            continue
        line = lines[queue.name]
        if not line:
            continue
        job = line.pop()
        _allocate_job(ssn, queue, job, todo[job.name], line)
        queues.push(queue)


def _no_nodes(ssn: Session, todo: dict[str, list[TaskInfo]], waiting: dict[str, list[JobInfo]]) -> None:
    """Without nodes nothing is placed; every job with tasks to place is told so,
    whatever its queue's share (a share of nothing is always used up)."""
    for jobs in waiting.values():
        for job in jobs:
            if not ssn.job_ready(job):
                job.fit_errors = ssn.fit_errors(todo[job.name][0])
                ssn.mark_unschedulable(job, "NotEnoughResources", gang_message(job), "allocate")


def _allocate_job(
    ssn: Session, queue: QueueInfo, job: JobInfo, tasks: list[TaskInfo], line: PriorityQueue[JobInfo]
) -> None:
    stmt = Statement(ssn)
    remaining = [t for t in tasks if t.status == "Pending"]
    failed: set[RoleKey] = set()  # kinds of task that fit nowhere: the rest of their kind is skipped
    for k, task in enumerate(remaining):
        if task.role_key in failed:
            continue
        place = placement_for(ssn, task)
        verdict = ssn.allocatable(queue, task)
        choice = place.best()
        if choice is None:
            # Fits no node at all: that, not the queue's share, is the reason to give.
            job.fit_errors = job.fit_errors or ssn.fit_errors(task)
            failed.add(task.role_key)
            if all(t.role_key in failed for t in remaining[k + 1 :]):
                break
            continue
        if not verdict.allowed:
            job.blocked_by = f"queue {queue.name} has used its deserved share ({verdict.plugin})"
            continue
        kind, node = choice
        if kind == "allocate":
            stmt.allocate(task, node)
        else:
            stmt.pipeline(task, node)
        if k + 1 < len(remaining) and ssn.job_ready(job):
            line.push(job)
            break
    if not stmt:
        if not ssn.job_ready(job) and (job.fit_errors is not None or job.blocked_by):
            ssn.mark_unschedulable(job, "NotEnoughResources", gang_message(job), _refusing(ssn, job))
        return
    if ssn.job_ready(job):
        stmt.commit("allocate")
    elif ssn.job_pipelined(job):
        stmt.commit("allocate", pipelined_only=True)
    else:
        rule = _refusing(ssn, job)
        placed = stmt.placed()
        stmt.discard()
        ssn.mark_unschedulable(job, "NotEnoughResources", gang_message(job, placed), rule)


def _refusing(ssn: Session, job: JobInfo) -> str:
    return ssn.hooks.job_ready.all(job).plugin or "allocate"
