"""reclaim: a queue below its deserved share takes back resources from queues above theirs.

Where it sits: an action of the session, usually after allocate. Queues in
queue order (Open, not overused); in each, admitted jobs with pending pods in
job order; each job's pending pods in task order while the job is starving
(the ``job_starving`` vote, as Volcano's ``ssn.JobStarving``: with ``gang``,
below its ``minMember``; elastic pods beyond it wait for idle resources).
A pod its queue cannot afford
(``allocatable``: it would take the queue past its deserved share) is not
placed. Otherwise it goes on idle or releasing resources when it fits, else
on the best node where evicting pods of *other, reclaimable* queues makes
room. Candidates come from the lowest-priority queue first, then the queue
most over its share, then lower job and pod priority, newest first; the
``reclaimable`` hooks narrow them (``proportion``: the victim's queue keeps
its deserved share; ``gang``: its job keeps ``minMember``; ``conformance``),
and the action never takes a queue below its ``guarantee``. Only as many
victims as the pod needs are evicted, none where all would not be enough.

Commit as in preempt (``PodEvictionRequested`` with rule
``reclaim.proportion`` and a reason naming both queues, the reclaimer
pipelined), or roll every eviction of the job back.

Pending podgroups take no part, as in Volcano (reclaim.go ``Execute``: ``if
job.IsPending() { continue }``): only enqueue admits a podgroup (or allocate
when enqueue is not configured), so a full cluster whose overcommit refuses
a below-share queue's new job keeps it Pending until room frees up; reclaim
works for jobs already admitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from handlers.scheduler.actions.victims import (
    EVICTABLE,
    by_node,
    finish,
    keep_minimum,
    make_room,
    node_order,
    pending_tasks,
    rule_of,
    starving,
)
from handlers.scheduler.api import JobInfo, QueueInfo, RoleKey, TaskInfo
from handlers.scheduler.placement import placement_for
from handlers.scheduler.plugins.base import share_source
from handlers.scheduler.statement import Statement
from schemas.quantity import format_quantity

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


def _held(ssn: Session, queue: str) -> dict[str, int]:
    held: dict[str, int] = {}
    for job in ssn.jobs.values():
        if job.queue == queue:
            for d, v in job.allocated.items():
                held[d] = held.get(d, 0) + v
    return held


class Reclaim:
    def __init__(self, ssn: Session) -> None:
        self.ssn = ssn
        self.rule = rule_of(ssn.hooks.reclaimable, "reclaim", "proportion")
        self.victims_on = by_node(ssn)
        self.shares = share_source(ssn.plugins)  # ``proportion`` or ``capacity``, if configured
        self.orders: dict[tuple[RoleKey, bytes], list[int]] = {}
        # Queues equally placed by their priority and share give victims last-in-queue-order first
        # (Volcano's VictimQueueOrderFn: the reverse of QueueOrderFn, whose ties go by creation, then name).
        by_age = sorted(ssn.queues.values(), key=lambda q: (q.created_at, q.name))
        self.queue_rank = {q.name: i for i, q in enumerate(by_age)}

    def run(self) -> None:
        ssn = self.ssn
        waiting: dict[str, list[JobInfo]] = {}
        for job in ssn.jobs.values():
            if self.is_reclaimer(job):
                waiting.setdefault(job.queue, []).append(job)
        for queue in sorted((ssn.queues[name] for name in waiting), key=ssn.queue_key):
            for job in sorted(waiting[queue.name], key=ssn.job_key):
                if ssn.overused(queue):
                    break
                if not starving(ssn, job):
                    continue
                stmt = Statement(ssn)
                self.place_job(queue, job, stmt)
                finish(ssn, job, stmt, "reclaim")

    def is_reclaimer(self, job: JobInfo) -> bool:
        ssn = self.ssn
        if job.unchanged or job.phase in ("Pending", "Completed"):
            return False
        queue = ssn.queues.get(job.queue)
        if queue is None or queue.state != "Open":
            return False
        if not any(t.status == "Pending" and not t.best_effort for t in job.tasks):
            return False
        return ssn.job_valid(job).passed

    def place_job(self, queue: QueueInfo, job: JobInfo, stmt: Statement) -> None:
        ssn = self.ssn
        failed: set[RoleKey] = set()
        for task in pending_tasks(ssn, job):
            if not starving(ssn, job):
                break  # Volcano: ``if !ssn.JobStarving(job) { break }``
            if task.role_key in failed or not ssn.allocatable(queue, task).allowed:
                continue
            choice = placement_for(ssn, task).best()
            if choice is not None:
                kind, node = choice
                (stmt.allocate if kind == "allocate" else stmt.pipeline)(task, node)
            elif task.record.never_preempts:
                continue  # preemptionPolicy Never: reclaims nothing (Volcano reclaim.go)
            elif not self.evict_for(queue, job, task, stmt):
                failed.add(task.role_key)

    def reclaimable(self, name: str) -> bool:
        record = self.ssn.state.queues.get(name)
        return name in self.ssn.queues and record is not None and record.reclaimable

    def victim_key(self, task: TaskInfo) -> tuple[int, float, int, int, int, int, str]:
        queue = self.ssn.queues[task.job.queue]
        share = self.shares.queue_share(queue.name) if self.shares is not None else 0.0
        rank = -self.queue_rank[queue.name]
        return (queue.priority, -share, rank, task.job.priority, task.priority, -task.created_at, task.name)

    def reason(self, queue: QueueInfo, task: TaskInfo) -> Callable[[TaskInfo], str]:
        def text(victim: TaskInfo) -> str:
            source = victim.job.queue
            dims = sorted(d for d, v in victim.req.items() if d != "pods" and v > 0) or ["pods"]
            d = dims[0]
            held = _held(self.ssn, source).get(d, 0)
            over = f"holds {format_quantity(int(held), d)} {d}"
            if self.shares is not None:
                deserved = self.shares.deserved(source).get(d, 0)
                over += f", deserves {format_quantity(int(deserved), d)}"
            return f"reclaimed by queue {queue.name} for {task.job.job or task.job.name}: queue {source} {over}"

        return text

    def evict_for(self, queue: QueueInfo, job: JobInfo, task: TaskInfo, stmt: Statement) -> bool:
        ssn = self.ssn
        key = (task.role_key, task.signature)
        order = self.orders.get(key)
        if order is None:
            order = self.orders[key] = node_order(ssn, task)
        reason = self.reason(queue, task)

        def check() -> bool:
            return ssn.allocatable(queue, task).allowed

        for node in order:
            candidates = [
                v
                for v in self.victims_on.get(node, ())
                if v.status in EVICTABLE
                and v.job.queue != queue.name
                and self.reclaimable(v.job.queue)
            ]
            if not candidates:
                continue
            candidates.sort(key=self.victim_key)
            chosen = self.above_guarantee(keep_minimum(ssn.hooks.reclaimable.victims(task, candidates)))
            if make_room(ssn, stmt, task, node, chosen, reason=reason, rule=self.rule, check=check):
                stmt.pipeline(task, node)
                return True
        return False

    def above_guarantee(self, victims: list[TaskInfo]) -> list[TaskInfo]:
        """Victims, in order, while their queue keeps at least its guarantee."""
        left: dict[str, dict[str, int]] = {}
        kept: list[TaskInfo] = []
        for v in victims:
            queue = self.ssn.queues[v.job.queue]
            if not queue.guarantee:
                kept.append(v)
                continue
            held = left.setdefault(queue.name, _held(self.ssn, queue.name))
            after = {d: held.get(d, 0) - v.req.get(d, 0) for d in queue.guarantee if d != "pods"}
            if all(after[d] >= queue.guarantee[d] for d in after):
                held.update(after)
                kept.append(v)
        return kept


def execute(ssn: Session) -> None:
    Reclaim(ssn).run()
