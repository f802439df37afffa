"""drf: dominant resource fairness — between jobs, between namespaces in a queue, and through the queue tree.

Where it sits: a scheduler plugin (see ``plugins.base``). A share is the
largest fraction of the cluster's total held in any resource (the pod count
aside), kept current as the session allocates.

- job order: the job with the smaller dominant share goes first;
- namespace fair share (``enabledNamespaceOrder: true``, or the argument
  ``namespaceWeights``): before the jobs' own shares, jobs of different
  namespaces compare the dominant share their namespace holds *in the job's
  queue*, divided by the namespace's weight (``namespaceWeights: {ns: w}``,
  default 1), so namespaces share a queue by weight whatever number of jobs
  each submits;
- hierarchical (``enabledHierarchy: true``, see ``plugins.hdrf``): queue order
  by dominant share, compared level by level through the queue tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.scheduler.api import JobInfo, TaskInfo, share
from handlers.scheduler.conf import ConfError, PluginOption
from handlers.scheduler.plugins.base import Plugin
from handlers.scheduler.plugins.hdrf import HierarchicalShares

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


def namespace_of(job: JobInfo) -> str:
    return job.name.split("/", 1)[0] if "/" in job.name else "default"


def _weights(raw: object) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfError(f"namespaceWeights must map a namespace to a weight, got {raw!r}")
    weights = {}
    for ns, value in raw.items():
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise ConfError(f"namespaceWeights: weight of {ns!r} is not a number: {value!r}") from None
        if weight <= 0:
            raise ConfError(f"namespaceWeights: weight of {ns!r} must be positive, got {value!r}")
        weights[str(ns)] = weight
    return weights


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
        self.namespace_weights = _weights(self.arguments.get("namespaceWeights"))
        self.by_namespace = option.switches.get("namespace_order", False) or bool(self.namespace_weights)
        self.hierarchical = option.switches.get("hierarchy", False)

    def open(self, ssn: Session) -> None:
        self.total = {d: v for d, v in ssn.total.items() if d != "pods"}
        # Each job's dominant share, computed when first asked for (most jobs of a busy
        # cluster are never ordered in a session) and kept current by ``_update``.
        self.shares = _Shares(ssn.jobs, self.total)
        self.register(ssn.hooks.job_order, self._order)
        if self.by_namespace:
            self.turns = self._namespace_turns(ssn)
        if self.hierarchical:
            self.tree = HierarchicalShares(ssn, self.total)
            self.register(ssn.hooks.queue_order, self.tree.compare)
            self.register(ssn.hooks.job_enqueued, self.tree.admit)
        self.on_allocate = lambda task: self._update(task, 1)
        self.on_deallocate = lambda task: self._update(task, -1)

    def _namespace_turns(self, ssn: Session) -> dict[str, float]:
        """Each job's place in its queue by namespace share, fixed at session open.

        Per queue and namespace, the jobs with pods waiting are lined up
        (smaller own share, then creation, then name); a job's turn is the
        weighted dominant share its namespace would hold in the queue once
        every job ahead of it in its own line is placed. Jobs of different
        namespaces compare their turns, which interleaves the namespaces by
        weight the way dominant resource fairness would, and the order never
        changes under the allocate action's feet.
        """
        held: dict[tuple[str, str], dict[str, float]] = {}
        lines: dict[tuple[str, str], list[JobInfo]] = {}
        for job in ssn.jobs.values():
            key = (job.queue, namespace_of(job))
            into = held.setdefault(key, {})
            for d, v in job.allocated.items():
                if d != "pods":
                    into[d] = into.get(d, 0.0) + v
            if any(t.status == "Pending" for t in job.tasks):
                lines.setdefault(key, []).append(job)
        turns: dict[str, float] = {}
        for key in sorted(lines):
            amount = dict(held[key])
            weight = self.namespace_weights.get(key[1], 1.0)
            for job in sorted(lines[key], key=lambda j: (self.shares[j.name], j.created_at, j.name)):
                turns[job.name] = share(amount, self.total) / weight
                for task in job.tasks:
                    if task.status == "Pending":
                        for d, v in task.req.items():
                            if d != "pods":
                                amount[d] = amount.get(d, 0.0) + v
        return turns

    def _order(self, left: JobInfo, right: JobInfo) -> int:
        if self.by_namespace:
            ln, rn = namespace_of(left), namespace_of(right)
            if ln != rn:
                ls, rs = self.turns.get(left.name, 0.0), self.turns.get(right.name, 0.0)
                if ls != rs:
                    return -1 if ls < rs else 1
        ls, rs = self.shares[left.name], self.shares[right.name]
        return -1 if ls < rs else (1 if ls > rs else 0)

    def _update(self, task: TaskInfo, sign: int) -> None:
        job = task.job
        self.shares[job.name] = share(job.allocated, self.total)
        if self.hierarchical:
            self.tree.account(task, sign)
