"""Statement: the tentative operations of one job, committed or discarded as a whole.

Where it sits: actions (``allocate``, ``backfill``) record each placement
here. Every operation changes the session at once (node arrays, job counts,
plugin bookkeeping through the allocation listeners) so that the next task
sees it; ``discard`` undoes them in reverse order; ``commit`` turns them into
decision events on the session. Nothing touches the cluster: the decisions
reach the log as one batch when the session closes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.scheduler.api import TaskInfo
from handlers.scheduler.devices import pick
from handlers.scheduler.plugins.fgd import device_choice
from schemas.events import PodBound, PodEvictionRequested, PodPipelined

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


class Statement:
    def __init__(self, ssn: Session) -> None:
        self.ssn = ssn
        self.ops: list[tuple[str, TaskInfo, int, str]] = []

    def __len__(self) -> int:
        return len(self.ops)

    def _devices(self, task: TaskInfo, node: int, *, future: bool) -> None:
        """Pick and take the GPU devices ``task`` gets on ``node`` (the conf's ``fgd`` plugin's
        choice, else best fit); on future resources (``future``) they are promised out of
        what is being released."""
        request = task.gpu
        if request is None:
            return
        devices = self.ssn.devices
        if future:
            chosen = device_choice(self.ssn, task, node, future=True) or pick(
                devices.future[node], devices.mem_future[node], request
            )
            if chosen:
                devices.reserve(node, chosen, request)
        else:
            chosen = device_choice(self.ssn, task, node, future=False) or pick(
                devices.gpu_free[node], devices.mem_free[node], request
            )
            if chosen:
                devices.take(node, chosen, request)
        task.devices = chosen

    def _undo_devices(self, task: TaskInfo, node: int, *, future: bool) -> None:
        request = task.gpu
        if request is None or not task.devices:
            return
        if future:
            self.ssn.devices.unreserve(node, task.devices, request)
        else:
            self.ssn.devices.give(node, task.devices, request)
        task.devices = ()

    def allocate(self, task: TaskInfo, node: int) -> None:
        """Place ``task`` on ``node``'s idle resources."""
        task.job.set_status(task, "Allocated")
        task.node = node
        self._devices(task, node, future=False)
        self.ssn.nodes.take(node, task.vec)
        self.ssn.allocated(task)
        self.ops.append(("allocate", task, node, ""))

    def pipeline(self, task: TaskInfo, node: int) -> None:
        """Reserve ``task`` on resources ``node`` is releasing."""
        task.job.set_status(task, "Pipelined")
        task.node = node
        self._devices(task, node, future=True)
        self.ssn.nodes.reserve(node, task.vec)
        self.ssn.allocated(task)
        self.ops.append(("pipeline", task, node, ""))

    def evict(self, task: TaskInfo, reason: str, *, preemptor: str = "", rule: str = "") -> None:
        """Ask for ``task`` to go; its resources count as releasing from now on.

        ``preemptor`` names the pod it makes room for; ``rule``, when given,
        is the eviction's own rule instead of the commit's.
        """
        previous = task.status
        task.job.set_status(task, "Releasing")
        self.ssn.nodes.unreserve(task.node, task.vec)
        if task.gpu is not None and task.devices:
            self.ssn.devices.unreserve(task.node, task.devices, task.gpu)  # its share is being released
        self.ssn.deallocated(task)
        self.ops.append(("evict", task, task.node, "\0".join((previous, reason, preemptor, rule))))

    def placed(self) -> int:
        """Tasks this statement put on idle resources (what a gang message counts as schedulable)."""
        return sum(1 for op in self.ops if op[0] == "allocate")

    def discard(self) -> None:
        nodes = self.ssn.nodes
        for kind, task, node, extra in reversed(self.ops):
            if kind == "allocate":
                nodes.give(node, task.vec)
                self._undo_devices(task, node, future=False)
            elif kind == "pipeline":
                nodes.unreserve(node, task.vec)
                self._undo_devices(task, node, future=True)
            else:
                nodes.reserve(node, task.vec)
                if task.gpu is not None and task.devices:
                    self.ssn.devices.reserve(node, task.devices, task.gpu)
                task.job.set_status(task, extra.split("\0", 1)[0])
                self.ssn.allocated(task)
                continue
            task.job.set_status(task, "Pending")
            task.node = -1
            self.ssn.deallocated(task)
        self.ops.clear()

    def commit(self, rule: str, *, pipelined_only: bool = False) -> None:
        """Emit the decisions; with ``pipelined_only`` every placement becomes a reservation."""
        names = self.ssn.nodes.names
        emit = self.ssn.emit
        for kind, task, node, extra in self.ops:
            job = task.job.job
            if kind == "evict":
                _, reason, preemptor, own_rule = extra.split("\0", 3)
                emit(
                    PodEvictionRequested(
                        pod=task.name, job=job, rule=own_rule or rule, reason=reason, preemptor=preemptor
                    )
                )
                continue
            elif kind == "allocate" and not pipelined_only:
                emit(PodBound(pod=task.name, job=job, rule=rule, node=names[node], devices=list(task.devices)))
                continue
            if kind == "allocate":
                # Reserved, not bound: the gang is not complete yet.
                task.job.set_status(task, "Pipelined")
            if not (task.prev_status == "Pipelined" and task.prev_node == names[node]):
                emit(
                    PodPipelined(pod=task.name, job=job, rule=rule + ".pipeline", node=names[node], devices=list(task.devices))
                )
        self.ops.clear()
