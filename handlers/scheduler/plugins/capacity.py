"""capacity: queue quotas (deserved, guarantee, capability) through a hierarchy of queues.

Where it sits: a scheduler plugin (see ``plugins.base``), in place of
``proportion`` when queues form a tree. A queue's ``spec.parent`` names the
queue above it; a queue named ``root`` is the top of the tree, and a queue
without a parent hangs under ``root`` (a root with the cluster's whole
capacity is assumed when no queue is named so). Only leaf queues take jobs
(enqueue refuses the others).

At session open, top down:

- *capability*: a queue's own ``spec.capability``; a resource it leaves unset
  is its parent's (the root's unset ones are the cluster total);
- *real capability* = min(capability, the parent's real capability less the
  guarantees of its siblings), never below its own ``guarantee``;
- *deserved*: ``spec.deserved`` where given, capped by the real capability
  and by what the queue's subtree asks for (held, pending pods, and the
  ``minResources`` of Pending podgroups: a share nobody asks for goes to the
  siblings until it is asked for, and reclaim brings it back); otherwise
  the parent's deserved left after the children that state theirs is
  water-filled (as ``proportion`` does) between the other children by
  ``weight``, each capped by what its subtree asks for, floored at its
  guarantee.

Every queue's *allocated* and *inqueue* are the sums over its subtree, kept
current as the session allocates and admits. Hooks:

- overused: the queue or one of its ancestors holds its deserved share in
  every resource: the queue gets nothing more this session;
- allocatable: the task fits within the real capability of its queue *and
  every ancestor* (on the resources the task asks for; a root stating no
  capability is the cluster itself, left to node fit and ``overcommit``);
- job enqueueable: ``minResources`` + allocated + inqueue within the real
  capability at every level; a refusal names the level that is full;
- queue order: queue ``priority``, then the two queues' paths from the root
  are compared at the first level where they part: the sibling with the
  smaller share goes first (what the subtree holds and was admitted in this
  session over its deserved share, largest resource), so enqueue admits and
  allocate places by the tree's weights;
- reclaimable: victims while their queue keeps its deserved share (and its
  guarantee).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from handlers.scheduler.api import ALLOCATED, JobInfo, QueueInfo, TaskInfo, share
from handlers.scheduler.hooks import PERMIT, REJECT
from handlers.scheduler.plugins.base import Plugin
from handlers.scheduler.plugins.proportion import INF, QueueAttr, admitted_share, le, water_fill
from projections.cluster_model import QueueRecord
from schemas.quantity import format_quantity

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

ROOT = "root"


def _add(target: dict[str, float], amounts: Mapping[str, float], sign: int = 1) -> None:
    for name, amount in amounts.items():
        if name != "pods" and amount:
            target[name] = target.get(name, 0.0) + sign * amount


class QueueNode:
    def __init__(self, name: str, queue: QueueInfo | None, record: QueueRecord | None = None) -> None:
        self.name = name
        self.queue = queue
        self.weight = queue.weight if queue is not None else 1
        self.own_capability = {d: float(v) for d, v in (queue.capability if queue else {}).items() if d != "pods"}
        self.guarantee = {d: float(v) for d, v in (queue.guarantee if queue else {}).items() if d != "pods"}
        self.own_deserved = {d: float(v) for d, v in (record.deserved if record else {}).items() if d != "pods"}
        self.parent: QueueNode | None = None
        self.children: list[QueueNode] = []
        self.path: list[QueueNode] = []  # root first, this queue last
        self.capability: dict[str, float] = {}
        self.real_capability: dict[str, float] = {}
        self.deserved: dict[str, float] = {}
        self.allocated: dict[str, float] = {}
        self.inqueue: dict[str, float] = {}
        self.request: dict[str, float] = {}
        self.admitted: dict[str, float] = {}  # minResources admitted in this session
        self.share = 0.0

    def reshare(self) -> None:
        held = self.allocated
        if self.admitted:
            held = dict(held)
            _add(held, self.admitted)
        self.share = share(held, self.deserved)


def queue_tree(ssn: Session) -> dict[str, QueueNode]:
    """Every queue of the session as a node of the tree (``root`` added when missing)."""
    records = ssn.state.queues
    nodes = {name: QueueNode(name, q, records.get(name)) for name, q in ssn.queues.items()}
    if ROOT not in nodes:
        nodes[ROOT] = QueueNode(ROOT, None)
    for name in sorted(nodes):
        if name == ROOT:
            continue
        record = records.get(name)
        parent = record.parent if record is not None and record.parent in nodes else ROOT
        # A parent chain that loops back hangs under the root instead.
        seen, up = {name}, parent
        while up != ROOT:
            if up in seen:
                parent = ROOT
                break
            seen.add(up)
            rec = records.get(up)
            up = rec.parent if rec is not None and rec.parent in nodes else ROOT
        nodes[name].parent = nodes[parent]
        nodes[parent].children.append(nodes[name])
    for node in nodes.values():
        path: list[QueueNode] = []
        level: QueueNode | None = node
        while level is not None:
            path.append(level)
            level = level.parent
        node.path = path[::-1]
    return nodes


def compare_paths(left: QueueNode, right: QueueNode) -> int:
    """Compare two queues at the first level where their paths from the root part: smaller share first."""
    for a, b in zip(left.path, right.path, strict=False):  # paths of different depths
        if a is not b:
            return -1 if a.share < b.share else (1 if a.share > b.share else 0)
    return 0


class Capacity(Plugin):
    name = "capacity"

    def open(self, ssn: Session) -> None:
        self.total = {d: float(v) for d, v in ssn.total.items() if d != "pods"}
        self.nodes = queue_tree(ssn)
        self._count(ssn)
        self._quotas(self.nodes[ROOT])
        for node in self.nodes.values():
            node.reshare()
        self.register(ssn.hooks.queue_order, self._order)
        self.register(ssn.hooks.overused, self._overused)
        self.register(ssn.hooks.allocatable, self._allocatable)
        self.register(ssn.hooks.job_enqueueable, self._enqueueable)
        self.register(ssn.hooks.job_enqueued, self._admit)
        self.register(ssn.hooks.reclaimable, self._reclaimable)
        self.on_allocate = lambda task: self._account(task, 1)
        self.on_deallocate = lambda task: self._account(task, -1)

    # --- building the tree --------------------------------------------------

    def _count(self, ssn: Session) -> None:
        for job in ssn.jobs.values():
            node = self.nodes.get(job.queue)
            if node is None:
                continue
            held: dict[str, float] = {}
            want: dict[str, float] = {}
            for task in job.tasks:
                if task.status in ALLOCATED:
                    _add(held, task.req)
                elif task.status == "Pending":
                    _add(want, task.req)
            waiting: dict[str, float] = {}
            if job.phase == "Inqueue":
                _add(waiting, job.min_resources)
            elif job.phase == "Running" and job.min_resources and job.allocated_num() >= job.min_member:
                for d, need in job.min_resources.items():
                    gap = need - job.allocated.get(d, 0)
                    if gap > 0:
                        waiting[d] = gap
            elif job.phase == "Pending":
                _add(want, job.min_resources)
            for up in node.path:
                _add(up.allocated, held)
                _add(up.request, held)
                _add(up.request, want)
                _add(up.inqueue, waiting)

    def _quotas(self, root: QueueNode) -> None:
        dims = sorted(self.total)
        root.capability = {d: root.own_capability.get(d, self.total[d]) for d in dims}
        root.real_capability = {d: min(root.capability[d], self.total[d]) for d in dims}
        root.deserved = {d: min(root.own_deserved.get(d, INF), root.real_capability[d]) for d in dims}
        todo = [root]
        while todo:
            parent = todo.pop(0)
            kids = sorted(parent.children, key=lambda n: n.name)
            guaranteed = {d: sum(k.guarantee.get(d, 0.0) for k in kids) for d in dims}
            for kid in kids:
                kid.capability = {d: kid.own_capability.get(d, parent.capability[d]) for d in dims}
                kid.real_capability = {
                    d: max(
                        min(kid.capability[d], parent.real_capability[d] - guaranteed[d] + kid.guarantee.get(d, 0.0)),
                        kid.guarantee.get(d, 0.0),
                    )
                    for d in dims
                }
            stated = [k for k in kids if k.own_deserved]
            for kid in stated:
                kid.deserved = {
                    d: max(
                        min(kid.own_deserved.get(d, 0.0), kid.real_capability[d], kid.request.get(d, 0.0)),
                        kid.guarantee.get(d, 0.0),
                    )
                    for d in dims
                }
            left = {d: max(parent.deserved[d] - sum(k.deserved[d] for k in stated), 0.0) for d in dims}
            shared = [k for k in kids if not k.own_deserved]
            attrs = []
            for kid in shared:
                attr = QueueAttr.__new__(QueueAttr)
                attr.name, attr.weight = kid.name, kid.weight
                attr.capability, attr.guarantee = kid.real_capability, kid.guarantee
                attr.request, attr.deserved = kid.request, {}
                attrs.append(attr)
            if attrs:
                water_fill(attrs, left)
            for kid, attr in zip(shared, attrs, strict=True):
                kid.deserved = {d: attr.deserved.get(d, 0.0) for d in dims}
            todo.extend(kids)

    # --- hooks ---------------------------------------------------------------

    def _order(self, left: QueueInfo, right: QueueInfo) -> int:
        if left.priority != right.priority:
            return -1 if left.priority > right.priority else 1
        return compare_paths(self.nodes[left.name], self.nodes[right.name])

    @staticmethod
    def _limited(node: QueueNode) -> list[QueueNode]:
        """The queues whose capability ``node``'s tasks count against: its path, less a root
        stating no capability (the cluster itself, which node fit and ``overcommit`` watch)."""
        root = node.path[0]
        return node.path if root.own_capability else node.path[1:]

    def _overused(self, queue: QueueInfo) -> bool:
        node = self.nodes.get(queue.name)
        if node is None:
            return False
        return any(all(le(v, up.allocated.get(d, 0.0)) for d, v in up.deserved.items()) for up in node.path)

    def _allocatable(self, queue: QueueInfo, task: TaskInfo) -> bool:
        node = self.nodes.get(queue.name)
        if node is None or node.children:
            return False
        asked = [(d, v) for d, v in task.req.items() if d != "pods" and v > 0]
        return all(
            le(up.allocated.get(d, 0.0) + v, up.real_capability.get(d, 0.0))
            for up in self._limited(node)
            for d, v in asked
        )

    def _enqueueable(self, job: JobInfo) -> tuple[int, str]:
        node = self.nodes.get(job.queue)
        if node is None or not job.min_resources:
            return PERMIT, ""
        for up in reversed(self._limited(node)):
            for d, need in sorted(job.min_resources.items()):
                limit = up.real_capability.get(d, 0.0)
                used = need + up.allocated.get(d, 0.0) + up.inqueue.get(d, 0.0)
                if not le(used, limit):
                    level = f"queue {up.name}" if up is node else f"queue {up.name} (above {job.queue})"
                    return REJECT, (
                        f"{level} resource quota insufficient: {d} would be "
                        f"{format_quantity(int(used), d)} of {format_quantity(int(limit), d)}"
                    )
        return PERMIT, ""

    def _admit(self, job: JobInfo) -> None:
        node = self.nodes.get(job.queue)
        if node is not None:
            gap = admitted_share(job)
            for up in node.path:
                _add(up.inqueue, job.min_resources)
                _add(up.admitted, gap)
                up.reshare()

    def _account(self, task: TaskInfo, sign: int) -> None:
        node = self.nodes.get(task.job.queue)
        if node is not None:
            for up in node.path:
                _add(up.allocated, task.req, sign)
                up.reshare()

    def _reclaimable(self, reclaimer: TaskInfo, candidates: Sequence[TaskInfo]) -> list[TaskInfo]:
        """Victims, in the order offered, while their queue keeps its deserved share and guarantee."""
        left: dict[str, dict[str, float]] = {}
        victims = []
        for c in candidates:
            node = self.nodes.get(c.job.queue)
            if node is None:
                continue
            held = left.setdefault(node.name, dict(node.allocated))
            after = {d: held.get(d, 0.0) - v for d, v in c.req.items() if d != "pods" and v > 0}
            floor = {d: max(node.deserved.get(d, 0.0), node.guarantee.get(d, 0.0)) for d in after}
            if all(le(floor[d], v) for d, v in after.items()):
                held.update(after)
                victims.append(c)
        return victims

    # --- what actions may ask ---------------------------------------------------

    def queue_share(self, name: str) -> float:
        node = self.nodes.get(name)
        return node.share if node is not None else 0.0

    def deserved(self, name: str) -> dict[str, float]:
        node = self.nodes.get(name)
        return node.deserved if node is not None else {}
