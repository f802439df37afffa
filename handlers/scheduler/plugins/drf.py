"""drf: dominant resource fairness — between jobs and through the queue tree.

Where it sits: a scheduler plugin (see ``plugins.base``). A share is the
largest fraction of the cluster's total held in any resource (the pod count
aside), kept current as the session allocates.

- job order: the job with the smaller dominant share goes first;
- hierarchical (``enabledHierarchy: true``, see ``plugins.hdrf``): queue order
  by dominant share, compared level by level through the queue tree.

There is no namespace order, as in Volcano since 2023 (commit 4ee689ac2
removed ``NamespaceOrderFn`` and ``enableNamespaceOrder``): namespaces in a
queue share it through their jobs' dominant shares. The conf refuses the
old switch and its ``namespaceWeights`` argument (``conf.NAMESPACE_ORDER_REMOVED``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.scheduler.api import JobInfo, TaskInfo, share
from handlers.scheduler.conf import PluginOption
from handlers.scheduler.plugins.base import Plugin
from handlers.scheduler.plugins.hdrf import HierarchicalShares

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


class _Shares(dict[str, float]):
    """job name -> dominant share of what the job holds, computed on first use."""

    def __init__(self, jobs: dict[str, JobInfo], total: dict[str, int]) -> None:
        super().__init__()
        self.jobs, self.total = jobs, total

    def __missing__(self, name: str) -> float:
        value = self[name] = share(self.jobs[name].allocated, self.total)
        return value


class DRF(Plugin):
    name = "drf"

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        self.hierarchical = option.switches.get("hierarchy", False)

    def open(self, ssn: Session) -> None:
        self.total = {d: v for d, v in ssn.total.items() if d != "pods"}
        # Each job's dominant share, computed when first asked for (most jobs of a busy
        # cluster are never ordered in a session) and kept current by ``_update``.
        self.shares = _Shares(ssn.jobs, self.total)
        self.register_order(ssn.hooks.job_order, self._order, self._key)
        if self.hierarchical:
            self.tree = HierarchicalShares(ssn, self.total)
            self.register(ssn.hooks.queue_order, self.tree.compare)
            self.register(ssn.hooks.job_enqueued, self.tree.admit)
        self.on_allocate = lambda task: self._update(task, 1)
        self.on_deallocate = lambda task: self._update(task, -1)

    def _order(self, left: JobInfo, right: JobInfo) -> int:
        ls, rs = self.shares[left.name], self.shares[right.name]
        return -1 if ls < rs else (1 if ls > rs else 0)

    def _key(self, job: JobInfo) -> float:
        """``_order``'s key: the job's dominant share (a finite number: never NaN)."""
        return self.shares[job.name]

    def _update(self, task: TaskInfo, sign: int) -> None:
        job = task.job
        self.shares[job.name] = share(job.allocated, self.total)
        if self.hierarchical:
            self.tree.account(task, sign)
