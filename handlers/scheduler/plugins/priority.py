"""priority: job and task order by priority class, higher first.

Where it sits: a scheduler plugin (see ``plugins.base``). A job's priority is
its podgroup's ``priorityClassName`` resolved through the cluster's priority
classes (the global default when unnamed); a task's is its pod's priority.
Also says a job is starving while it has tasks not yet placed, and offers
lower-priority victims to a later preempt action.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from handlers.scheduler.api import JobInfo, TaskInfo
from handlers.scheduler.plugins.base import Plugin

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


def _higher_first(left: int, right: int) -> int:
    return -1 if left > right else (1 if left < right else 0)


class Priority(Plugin):
    name = "priority"

    def open(self, ssn: Session) -> None:
        self.register_order(
            ssn.hooks.job_order, lambda left, right: _higher_first(left.priority, right.priority), _negated_priority
        )
        self.register_order(
            ssn.hooks.task_order, lambda left, right: _higher_first(left.priority, right.priority), _negated_priority
        )
        self.register(ssn.hooks.job_starving, lambda job: job.ready_num() + job.waiting_num() < len(job.tasks)
        )
        self.register(ssn.hooks.preemptable, lower_priority)


def _negated_priority(item: JobInfo | TaskInfo) -> int:
    """The order key of ``_higher_first``: the higher priority, the smaller."""
    return -item.priority


def lower_priority(preemptor: TaskInfo, candidates: Sequence[TaskInfo]) -> list[TaskInfo]:
    """Victims of lower priority: the job's, or within one job the pod's."""
    return [
        c
        for c in candidates
        if (c.priority < preemptor.priority if c.job is preemptor.job else c.job.priority < preemptor.job.priority)
    ]
