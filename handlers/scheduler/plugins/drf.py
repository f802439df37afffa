"""drf: dominant resource fairness between jobs — the smaller dominant share goes first.

Where it sits: a scheduler plugin (see ``plugins.base``). A job's share is the
largest fraction of the cluster's total it holds in any resource (the pod
count aside); it is kept current as the session allocates.
"""

from __future__ import annotations

from handlers.scheduler.api import JobInfo, TaskInfo, share
from handlers.scheduler.plugins.base import Plugin


class DRF(Plugin):
    name = "drf"

    def open(self, ssn) -> None:
        self.total = {d: v for d, v in ssn.total.items() if d != "pods"}
        self.shares = {name: share(job.allocated, self.total) for name, job in ssn.jobs.items()}
        self.register(ssn, "job_order", self._order)
        self.on_allocate = self._update
        self.on_deallocate = self._update

    def _order(self, left: JobInfo, right: JobInfo) -> int:
        ls, rs = self.shares[left.name], self.shares[right.name]
        return -1 if ls < rs else (1 if ls > rs else 0)

    def _update(self, task: TaskInfo) -> None:
        job = task.job
        self.shares[job.name] = share(job.allocated, self.total)
