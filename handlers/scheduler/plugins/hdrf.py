"""hdrf: hierarchical dominant resource fairness — queue shares compared level by level through the queue tree.

Where it sits: used by ``plugins.drf`` when its conf sets
``enabledHierarchy: true`` (Volcano's switch for it). The tree is the queues'
``spec.parent`` links (``plugins.capacity.queue_tree``: a queue without a
parent hangs under ``root``).

Every queue of the tree has a weighted dominant share: the largest fraction
of the cluster's total that its whole subtree holds in any resource (plus
what was admitted to it in this session, so enqueue's turns follow the
tree too), divided by the queue's ``weight``. Two queues compare at the
first level where their paths from the root part: the sibling with the
smaller weighted share goes first. So a parent's weight decides how its
subtree fares against its siblings, whatever number of queues or jobs the
subtree holds, and the children's weights split what the parent gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from handlers.scheduler.api import JobInfo, QueueInfo, TaskInfo, share
from handlers.scheduler.plugins.capacity import QueueNode, compare_paths, queue_tree
from handlers.scheduler.plugins.proportion import admitted_share

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


class HierarchicalShares:
    def __init__(self, ssn: Session, total: Mapping[str, float]) -> None:
        self.total = total
        self.nodes = queue_tree(ssn)
        for job in ssn.jobs.values():
            node = self.nodes.get(job.queue)
            if node is None:
                continue
            for up in node.path:
                for d, v in job.allocated.items():
                    if d != "pods" and v:
                        up.allocated[d] = up.allocated.get(d, 0.0) + v
        for node in self.nodes.values():
            self._reshare(node)

    def _reshare(self, node: QueueNode) -> None:
        held = node.allocated
        if node.admitted:
            held = dict(held)
            for d, v in node.admitted.items():
                held[d] = held.get(d, 0.0) + v
        node.share = share(held, self.total) / max(node.weight, 1)

    def compare(self, left: QueueInfo, right: QueueInfo) -> int:
        ln, rn = self.nodes.get(left.name), self.nodes.get(right.name)
        if ln is None or rn is None:
            return 0
        return compare_paths(ln, rn)

    def _add(self, queue: str, amounts: Mapping[str, float], sign: int, field: str) -> None:
        node = self.nodes.get(queue)
        if node is None:
            return
        for up in node.path:
            target = getattr(up, field)
            for d, v in amounts.items():
                if d != "pods" and v:
                    target[d] = target.get(d, 0.0) + sign * v
            self._reshare(up)

    def admit(self, job: JobInfo) -> None:
        self._add(job.queue, admitted_share(job), 1, "admitted")

    def account(self, task: TaskInfo, sign: int) -> None:
        self._add(task.job.queue, task.req, sign, "allocated")
