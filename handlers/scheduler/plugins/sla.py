"""sla: a job that waited longer than its ``sla-waiting-time`` jumps ahead.

Where it sits: a scheduler plugin (see ``plugins.base``). The waiting time is
the podgroup's ``sla-waiting-time`` annotation, else the plugin argument of
the same name (a Go duration such as ``"10m"``); a job has none if neither is
set. Time is the session's clock (``SchedulingRequested.now``) against the
time the podgroup was created.

- job order: jobs with a waiting time go first, the earliest deadline
  (creation + waiting time) first;
- job enqueueable and job pipelined: once the deadline has passed, permit
  (otherwise abstain). Placed in a tier before ``overcommit``/``proportion``,
  that permit admits the job whatever those would say; in the same tier a
  reject there still wins, as Volcano's tiered votes go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.scheduler.api import JobInfo
from handlers.scheduler.conf import ConfError, PluginOption, duration_argument_ms
from handlers.scheduler.hooks import ABSTAIN, PERMIT
from handlers.scheduler.plugins.base import Plugin

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

KEY = "sla-waiting-time"


class SLA(Plugin):
    name = "sla"

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        self.default = duration_argument_ms(self.arguments[KEY]) if KEY in self.arguments else None
        self.now = 0

    def waiting_time(self, job: JobInfo) -> int | None:
        text = job.annotations.get(KEY)
        if text:
            try:
                return duration_argument_ms(text)
            except ConfError:
                return self.default
        return self.default

    def deadline(self, job: JobInfo) -> int | None:
        wait = self.waiting_time(job)
        return None if wait is None else job.created_at + wait

    def open(self, ssn: Session) -> None:
        self.now = ssn.now
        self.register_order(ssn.hooks.job_order, self._order, self._key)
        self.register(ssn.hooks.job_enqueueable, self._permit_when_late)
        self.register(ssn.hooks.job_pipelined, self._permit_when_late)

    def _order(self, left: JobInfo, right: JobInfo) -> int:
        ld, rd = self.deadline(left), self.deadline(right)
        if ld is None:
            return 0 if rd is None else 1
        if rd is None:
            return -1
        return -1 if ld < rd else (1 if ld > rd else 0)

    def _key(self, job: JobInfo) -> tuple[int, int]:
        """``_order``'s key: jobs with a deadline first, the earlier first."""
        deadline = self.deadline(job)
        return (1, 0) if deadline is None else (0, deadline)

    def _permit_when_late(self, job: JobInfo) -> tuple[int, str]:
        deadline = self.deadline(job)
        if deadline is not None and self.now >= deadline:
            return PERMIT, ""
        return ABSTAIN, ""
