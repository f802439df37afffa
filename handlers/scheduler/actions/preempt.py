"""preempt: within a queue, a starving higher-priority job evicts lower-priority pods to run.

Where it sits: an action of the session, usually after allocate. For each
queue (queue order, not Closed) and each of its starving jobs (job order;
admitted, valid, with pending pods), the job's pending pods are placed in
task order: on idle or releasing resources when they fit, otherwise on the
best node (predicates, then score) where evicting victims makes room. The
victims are pods of *other* jobs of the *same queue* (``victims.evictable``)
that every plugin of the deciding tier accepts (``preemptable`` hooks:
``priority`` lower priority, ``gang`` keeps each victim job at its
``minMember``, ``conformance``), lowest priority and newest first; only as
many as the preemptor needs, and none at all on a node where all of them
would not be enough. The preemptor is pipelined onto the freed resources.
A best-effort pod (no requests but its pod slot) preempts too, as in
Volcano, but only best-effort victims: it frees a node's pod slot.

The job's statement is committed when its gang is ready or pipelined whole:
``PodEvictionRequested{reason, preemptor, rule: preempt.priority}`` for each
victim and ``PodPipelined`` (rule ``preempt.pipeline``) for the preemptor.
Otherwise every eviction is rolled back. A job that could not make room from
other jobs then tries the same between its own pods: its higher-priority
pending pods evict its lower-priority running ones, under the same hooks.

Pending podgroups take no part, as in Volcano (preempt.go: ``if
job.IsPending() { continue }``): a podgroup is admitted by enqueue (or by
allocate when enqueue is not configured), never by preempt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.scheduler.actions.victims import (
    EVICTABLE,
    by_node,
    finish,
    keep_minimum,
    lowest_first,
    make_room,
    node_order,
    pending_tasks,
    rule_of,
    starving,
)
from handlers.scheduler.api import JobInfo, QueueInfo, RoleKey, TaskInfo
from handlers.scheduler.placement import placement_for
from handlers.scheduler.statement import Statement

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


class Preempt:
    def __init__(self, ssn: Session) -> None:
        self.ssn = ssn
        self.rule = rule_of(ssn.hooks.preemptable, "preempt", "priority")
        self.victims_on = by_node(ssn)
        self.orders: dict[tuple[RoleKey, bytes], list[int]] = {}
        self.dead: set[int] = set()  # nodes with nothing left to evict

    def run(self) -> None:
        ssn = self.ssn
        waiting: dict[str, list[JobInfo]] = {}
        for job in ssn.jobs.values():
            if self.is_preemptor(job):
                waiting.setdefault(job.queue, []).append(job)
        queues = sorted((ssn.queues[name] for name in waiting), key=ssn.queue_key)
        for queue in queues:
            for job in sorted(waiting[queue.name], key=ssn.job_key):
                if not starving(ssn, job):
                    continue
                stmt = Statement(ssn)
                self.place_job(queue, job, stmt, same_job=False)
                if finish(ssn, job, stmt, "preempt"):
                    continue
                if any(t.status in EVICTABLE for t in job.tasks):
                    stmt = Statement(ssn)
                    self.place_job(queue, job, stmt, same_job=True)
                    finish(ssn, job, stmt, "preempt")

    def is_preemptor(self, job: JobInfo) -> bool:
        ssn = self.ssn
        if job.unchanged or job.phase in ("Pending", "Completed"):
            return False
        queue = ssn.queues.get(job.queue)
        if queue is None or queue.state == "Closed":
            return False
        if not any(t.status == "Pending" for t in job.tasks):
            return False
        return ssn.job_valid(job).passed

    def place_job(self, queue: QueueInfo, job: JobInfo, stmt: Statement, *, same_job: bool) -> None:
        ssn = self.ssn
        failed: set[RoleKey] = set()
        for task in pending_tasks(ssn, job, best_effort=True):
            if not starving(ssn, job):
                break
            if task.role_key in failed:
                continue
            choice = placement_for(ssn, task).best() if ssn.allocatable(queue, task).allowed else None
            if choice is not None:
                kind, node = choice
                (stmt.allocate if kind == "allocate" else stmt.pipeline)(task, node)
            elif not self.evict_for(queue, job, task, stmt, same_job):
                failed.add(task.role_key)

    def evict_for(self, queue: QueueInfo, job: JobInfo, task: TaskInfo, stmt: Statement, same_job: bool) -> bool:
        if task.record.never_preempts:
            return False  # preemptionPolicy Never: placed where room is, evicts nobody (Volcano preempt.go)
        ssn = self.ssn
        key = (task.role_key, task.signature)
        order = self.orders.get(key)
        if order is None:
            order = self.orders[key] = node_order(ssn, task)
        if same_job:

            def reason(victim: TaskInfo) -> str:
                return f"preempted by {task.name} of the same job (priority {task.priority} > {victim.priority})"

        else:

            def reason(victim: TaskInfo) -> str:
                return (
                    f"preempted by {job.job or job.name} (priority {job.priority} > {victim.job.priority}) "
                    f"in queue {queue.name}"
                )

        def check() -> bool:
            return ssn.allocatable(queue, task).allowed

        for node in order:
            if node in self.dead:
                continue
            on_node = self.victims_on.get(node, ())
            live = [v for v in on_node if v.status in EVICTABLE]
            if not live:
                self.dead.add(node)
                continue
            candidates = [
                v
                for v in live
                if v.job.queue == queue.name and (v.job is job) == same_job and (v.best_effort or not task.best_effort)
            ]
            if not candidates:
                continue
            candidates.sort(key=lowest_first)
            chosen = keep_minimum(ssn.hooks.preemptable.victims(task, candidates))
            if make_room(ssn, stmt, task, node, chosen, reason=reason, rule=self.rule, check=check):
                stmt.pipeline(task, node)
                return True
        return False


def execute(ssn: Session) -> None:
    Preempt(ssn).run()
