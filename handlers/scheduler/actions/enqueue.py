"""enqueue: admit Pending podgroups to Inqueue while their queue and the cluster have room.

Where it sits: the first action of the default conf. As in Volcano, it pops
the first open queue in queue order, tries *one* Pending podgroup of it (in
job order) and pushes the queue back, until no queue has a Pending podgroup
left: admissions interleave between queues. Queues the queue-order hooks
find equal go to the one served least recently (a queue not served yet
first), then by name, so equal queues take strict turns and the result never
depends on the order queues were created in.

A podgroup without ``minResources`` is admitted at once; any other goes to
the ``job_enqueueable`` vote (``overcommit``, ``proportion``, ``capacity``,
``sla``). Admission is decided as ``PodGroupEnqueued`` (the job controller
creates the pods only then); a refusal as
``PodGroupUnschedulable{reason: NotEnqueueable}`` naming the plugin that
refused. A podgroup of a missing, not-Open or non-leaf queue (a queue other
queues name as ``parent``) is refused the same way: only leaf queues take
jobs. In a cluster without nodes nothing is admitted: every Pending
podgroup is refused with ``0/0 nodes are available: the cluster has no
nodes``, and asked again once a node joins. A podgroup refused before is not
asked again until something it depends on changes.

Argument (``configurations: - name: enqueue``): ``inqueue-timeout``, a Go
duration; an Inqueue podgroup none of whose pods is placed within it goes
back to Pending and gives its reservation back (default 0: never). The
session applies it when it opens, before the plugins count reservations.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cmp_to_key
from typing import TYPE_CHECKING, Any

from handlers.scheduler.actions.ordering import PriorityQueue
from handlers.scheduler.api import NO_NODES, JobInfo, QueueInfo
from schemas.events import PodGroupEnqueued

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


def parents(ssn: Session) -> set[str]:
    """Queues that some other queue names as its parent (they take no jobs)."""
    return {rec.parent for name, rec in ssn.state.queues.items() if rec.parent and rec.parent != name}


def execute(ssn: Session) -> None:
    served: dict[str, int] = {}  # queue -> turn it was last served in

    def compare(left: QueueInfo, right: QueueInfo) -> int:
        result = ssn.hooks.queue_order.compare(left, right)
        if result:
            return result
        lt, rt = served.get(left.name, -1), served.get(right.name, -1)
        if lt != rt:
            return -1 if lt < rt else 1
        return -1 if left.name < right.name else (1 if left.name > right.name else 0)

    order = ssn.hooks.queue_order.key()
    key: Callable[[QueueInfo], Any] = (
        cmp_to_key(compare) if order is None else lambda q: (order(q), served.get(q.name, -1), q.name)
    )
    jobs: dict[str, PriorityQueue[JobInfo]] = {}
    waiting: dict[str, list[JobInfo]] = {}
    inner = parents(ssn)
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
        if queue.name in inner:
            message = f"queue {job.queue} is not a leaf queue: only leaf queues take jobs"
            ssn.mark_unschedulable(job, "NotEnqueueable", message, "enqueue")
            continue
        if not len(ssn.nodes):
            ssn.mark_unschedulable(job, "NotEnqueueable", NO_NODES, "enqueue")
            continue
        waiting.setdefault(queue.name, []).append(job)
    active: list[QueueInfo] = []
    for name, admissible in waiting.items():
        jobs[name] = PriorityQueue(ssn.job_key)
        jobs[name].extend(admissible)
        active.append(ssn.queues[name])
    # With a queue tree an admission can change how *other* queues compare (a
    # parent's share under ``capacity`` or hierarchical ``drf``), so the first
    # queue is then chosen afresh every turn; flat queues keep a heap, since
    # an admission only moves the queue served.
    line: PriorityQueue[QueueInfo] | None = None if inner else PriorityQueue(key)
    if line is not None:
        line.extend(active)

    turn = 0
    while active if line is None else line:
        queue = min(active, key=key) if line is None else line.pop()
        pending = jobs[queue.name]
        job = pending.pop()
        turn += 1
        served[queue.name] = turn
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
        if not pending:
            if line is None:
                active.remove(queue)
        elif line is not None:
            line.push(queue)
