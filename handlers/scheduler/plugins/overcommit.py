"""overcommit: enqueue admits podgroups while the cluster, inflated by a factor, has room.

Where it sits: a scheduler plugin (see ``plugins.base``); votes in the
enqueue action. The room is ``total x overcommit-factor - used``, and what was
already admitted (Inqueue podgroups' ``minResources``, and what Running
podgroups still miss of theirs) is set against it. Argument:
``overcommit-factor`` (default 1.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.scheduler.api import JobInfo
from handlers.scheduler.conf import ConfError, PluginOption, number
from handlers.scheduler.hooks import PERMIT, REJECT
from handlers.scheduler.plugins.base import Plugin
from schemas.quantity import format_quantity

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


class Overcommit(Plugin):
    name = "overcommit"

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        self.factor = number(self.arguments, "overcommit-factor", 1.2)
        if self.factor < 1.0:
            raise ConfError(f"overcommit-factor must be at least 1.0, got {self.factor}")

    def open(self, ssn: Session) -> None:
        used = ssn.nodes.used_at_open  # kept by the snapshot as nodes change
        if used is None:
            used = ssn.nodes.used.sum(axis=0).tolist() if len(ssn.nodes) else [0] * len(ssn.nodes.dims)
        used_by_dim = dict(zip(ssn.nodes.dims, used, strict=True))
        self.room = {
            d: v * self.factor - used_by_dim.get(d, 0) for d, v in ssn.total.items() if d != "pods"
        }
        self.inqueue: dict[str, float] = {}
        inqueue = self.inqueue
        for sums in ssn.settled.values():  # the settled podgroups' kept copies, summed (whole numbers)
            for part in (sums.inqueue, sums.missing):
                for d, v in part.items():
                    inqueue[d] = inqueue.get(d, 0.0) + v
        for job in ssn.unsettled:
            phase = job.phase
            if phase == "Inqueue":
                self._admit(job)
            elif phase == "Running" and job.min_resources and job.allocated_num() >= job.min_member:
                allocated = job.allocated
                for d, need in job.min_resources.items():
                    gap = need - allocated.get(d, 0)
                    if gap > 0:
                        inqueue[d] = inqueue.get(d, 0.0) + gap
        self.register(ssn.hooks.job_enqueueable, self._enqueueable)
        self.register(ssn.hooks.job_enqueued, self._admit)

    def _admit(self, job: JobInfo) -> None:
        for d, need in job.min_resources.items():
            self.inqueue[d] = self.inqueue.get(d, 0.0) + need

    def _enqueueable(self, job: JobInfo) -> tuple[int, str]:
        if not job.min_resources:
            return PERMIT, ""
        for d, need in sorted(job.min_resources.items()):
            room = self.room.get(d, 0.0)
            wanted = self.inqueue.get(d, 0.0) + need
            if wanted > room + 1e-6:
                return REJECT, (
                    f"resource in cluster is overused: {d} needs {format_quantity(int(wanted), d)} "
                    f"with {format_quantity(max(0, int(room)), d)} available at overcommit factor {self.factor:g}"
                )
        return PERMIT, ""
