"""gang: all or nothing — a job runs only with ``minMember`` tasks (and each task's minimum) placed.

Where it sits: a scheduler plugin (see ``plugins.base``).

- job valid: enough tasks exist to ever reach ``minMember`` and every
  ``minTaskMember``; otherwise the job is not tried (its pods may still be
  being created).
- job ready: ``minMember`` tasks allocated, bound, running or succeeded, and
  every task role's ``minTaskMember``; allocate commits a job only then.
- elastic jobs: the task minimums count only when ``minMember`` is at least
  their sum (Volcano's ``CheckTaskValid``, ``CheckTaskReady`` and
  ``CheckTaskPipelined`` in ``pkg/scheduler/api/job_info.go``). A job with
  ``minAvailable: 1`` and 6 replicas (task minimums default to the replicas)
  runs as soon as one pod fits, and as many as fit.
- job pipelined: the same, counting pipelined tasks too (a vote).
- job order: jobs not yet ready go first.
- job starving: ready + pipelined below ``minMember``.
- victims: only tasks whose job stays at or above ``minMember`` without them,
  or the pod of a one-pod job (it stops whole, it never runs broken).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from handlers.scheduler.api import READY, VALID, JobInfo, TaskInfo
from handlers.scheduler.hooks import PERMIT, REJECT, ValidateResult
from handlers.scheduler.plugins.base import Plugin

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

READY_OR_WAITING = READY | {"Pipelined"}


def task_minimums(job: JobInfo) -> dict[str, int]:
    """The task minimums gang checks: none when ``minMember`` is below their sum (an elastic job),
    as Volcano's ``if ji.MinAvailable < ji.TaskMinAvailableTotal { return true }``."""
    if job.min_member < sum(job.min_task_member.values()):
        return {}
    return {role: need for role, need in job.min_task_member.items() if need > 0}


def ready(job: JobInfo) -> bool:
    if job.ready_num() < job.min_member:
        return False
    return all(job.role_num(role, READY) >= need for role, need in task_minimums(job).items())


def pipelined(job: JobInfo) -> bool:
    if job.ready_num() + job.waiting_num() < job.min_member:
        return False
    return all(job.role_num(role, READY_OR_WAITING) >= need for role, need in task_minimums(job).items())


def valid(job: JobInfo) -> ValidateResult | None:
    for role, need in sorted(task_minimums(job).items()):
        have = job.role_num(role, VALID)
        if have < need:
            return ValidateResult(
                False, "NotEnoughPodsOfTask", f"Not enough valid pods of task {role}: valid: {have}, min: {need}"
            )
    have = job.valid_num()
    if have < job.min_member:
        return ValidateResult(
            False, "NotEnoughTasks", f"Not enough valid tasks for gang-scheduling, valid: {have}, min: {job.min_member}"
        )
    return None


def keeps_gang(preemptor: TaskInfo, candidates: Sequence[TaskInfo]) -> list[TaskInfo]:
    """Victims, in the order offered, while each victim's job keeps ``minMember`` ready tasks;
    a one-pod job may lose its pod: it stops whole, it never runs broken."""
    left: dict[str, int] = {}
    victims: list[TaskInfo] = []
    for c in candidates:
        job = c.job
        ready_now = left.get(job.name, job.ready_num())
        if ready_now - 1 >= job.min_member:
            left[job.name] = ready_now - 1
            victims.append(c)
        elif job.ready_num() + job.counts["Releasing"] == 1:
            victims.append(c)  # a one-pod job stops whole
    return victims


class Gang(Plugin):
    name = "gang"

    def open(self, ssn: Session) -> None:
        self.register(ssn.hooks.job_valid, valid)
        self.register(ssn.hooks.job_ready, ready)
        self.register(ssn.hooks.job_pipelined, lambda job: (PERMIT if pipelined(job) else REJECT, "gang not complete"))
        self.register_order(ssn.hooks.job_order, self._order, ready)  # False (not ready) first
        self.register(ssn.hooks.job_starving, lambda job: job.ready_num() + job.waiting_num() < job.min_member)

        self.register(ssn.hooks.preemptable, keeps_gang)
        self.register(ssn.hooks.reclaimable, keeps_gang)

    @staticmethod
    def _order(left: JobInfo, right: JobInfo) -> int:
        lr, rr = ready(left), ready(right)
        if lr == rr:
            return 0
        return 1 if lr else -1
