"""reserve: hold nodes for a gang that has starved too long, until it fits.

Where it sits: an action of the session, placed before allocate
(``enqueue, reserve, allocate, backfill``). Argument (``configurations: -
name: reserve``): ``starvation``, a Go duration (default ``10m``), measured
from the podgroup's first ``PodGroupUnschedulable`` (reset when it runs) to
the session's ``SchedulingRequested.now``.

One reservation at a time, kept on the log: ``ReservationMade{podgroup,
nodes}`` records it, ``ReservationReleased`` ends it, so a replay reproduces
every session. Each session:

1. A reservation whose podgroup is gone, finished or running is released.
2. The reserved gang is placed first, on idle resources anywhere; once its
   gang is ready it is bound (rule ``reserve``) and the reservation released.
3. Otherwise, on each reserved node, the resources the gang will need there
   are locked for the rest of the session: other jobs may use only what the
   node has beyond that (gaps that do not delay the reserved gang), on idle
   and on releasing resources alike.
4. Without a reservation, the podgroup starving longest past the threshold
   (then job order) gets one: the fewest nodes, taken in order of most idle
   resources, whose allocatable resources hold its pending pods.

A Pending podgroup (refused admission) that gets a reservation is admitted
with it (``PodGroupEnqueued``, rule ``reserve``): the reservation is its room.
Only podgroups of Open queues are considered: an admitted one only when its
queue's deserved share (``proportion``) holds the gang, a Pending one only
while its queue's capability has room for its ``minResources``; the gang is
placed only as far as its queue can afford (``allocatable``). A gang held back
by its queue's share is reclaim's case, not reserve's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from handlers.scheduler.actions.victims import admit
from handlers.scheduler.api import JobInfo, TaskInfo
from handlers.scheduler.conf import duration_argument_ms
from handlers.scheduler.devices import MILLI, pick
from handlers.scheduler.placement import placement_for
from handlers.scheduler.plugins.base import share_source
from handlers.scheduler.statement import Statement
from schemas.events import ReservationMade, ReservationReleased

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

DEFAULT_STARVATION = "10m"


def _duration(ms: int) -> str:
    """``1h2m3s``, ``19m3s``, ``10.5s``."""
    seconds = ms / 1000
    hours, rest = divmod(int(seconds), 3600)
    minutes, whole = divmod(rest, 60)
    tail = f"{whole + seconds - int(seconds):g}s" if whole or seconds < 60 else ""
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + tail


class Reserve:
    def __init__(self, ssn: Session) -> None:
        self.ssn = ssn
        self.starvation = duration_argument_ms(ssn.conf.action_arguments("reserve").get("starvation", DEFAULT_STARVATION))

    def run(self) -> None:
        ssn = self.ssn
        for name in sorted(ssn.state.reservations):
            reserved = ssn.state.reservations[name]
            job = ssn.jobs.get(name)
            if job is None or job.phase == "Completed" or ssn.job_ready(job):
                self.release(name, job, "the podgroup is running" if job is not None else "the podgroup is gone")
            elif not self.place(job):
                self.lock(job, reserved)
            return  # one reservation at a time
        job = self.most_starved()
        if job is None:
            return
        nodes = self.choose_nodes(job)
        if not nodes:
            return
        waited = ssn.now - ssn.state.podgroups[job.name].starving_since
        if job.phase == "Pending":
            admit(ssn, job, "reserve")
        ssn.emit(
            ReservationMade(
                podgroup=job.name,
                job=job.job,
                queue=job.queue,
                rule="reserve",
                nodes=[ssn.nodes.names[i] for i in nodes],
                reason=f"unschedulable for {_duration(waited)}, past the {_duration(self.starvation)} starvation limit",
            )
        )
        self.lock(job, [ssn.nodes.names[i] for i in nodes])

    def release(self, name: str, job: JobInfo | None, reason: str) -> None:
        self.ssn.emit(
            ReservationReleased(
                podgroup=name,
                job=job.job if job is not None else "",
                queue=job.queue if job is not None else "",
                rule="reserve",
                reason=reason,
            )
        )

    def pending(self, job: JobInfo) -> list[TaskInfo]:
        """The pending pods the gang still needs to reach ``minMember``, in task order."""
        tasks = sorted((t for t in job.tasks if t.status == "Pending"), key=self.ssn.task_key)
        return tasks[: max(job.min_member - job.ready_num(), 1)]

    def place(self, job: JobInfo) -> bool:
        """Try the reserved gang first, on idle resources; bind it if it is whole."""
        ssn = self.ssn
        if job.unchanged or job.phase == "Pending" or not ssn.job_valid(job).passed:
            return False
        stmt = Statement(ssn)
        queue = ssn.queues[job.queue]
        for task in sorted((t for t in job.tasks if t.status == "Pending"), key=ssn.task_key):
            if not ssn.allocatable(queue, task).allowed:
                break
            choice = placement_for(ssn, task, pipeline=False).best()
            if choice is None:
                break
            stmt.allocate(task, choice[1])
            if ssn.job_ready(job):
                break
        if not ssn.job_ready(job):
            stmt.discard()
            return False
        stmt.commit("reserve")
        ssn.unschedulable.pop(job.name, None)
        self.release(job.name, job, "the gang fits")
        return True

    def lock(self, job: JobInfo, names: Iterable[str]) -> None:
        """Keep what the gang needs on its reserved nodes out of everyone else's reach this session."""
        ssn = self.ssn
        nodes = ssn.nodes
        rows = [nodes.index[n] for n in names if n in nodes.index]
        placed: list[tuple[TaskInfo, int]] = []
        if self.pending(job):
            plan = self.plan(job, rows, nodes.alloc, placed)
        else:  # no pods yet: hold the nodes whole
            plan = {i: nodes.alloc[i].copy() for i in rows}
        self.lock_devices(rows, placed, whole=not self.pending(job))
        for i in rows:
            need = plan.get(i)
            if need is None:
                continue
            on_idle = np.minimum(np.maximum(nodes.idle[i], 0), need)
            if on_idle.any():
                nodes.take(i, on_idle)
            rest = np.minimum(np.maximum(nodes.future[i], 0), need - on_idle)
            if rest.any():
                nodes.reserve(i, rest)

    def plan(
        self, job: JobInfo, rows: list[int], room: np.ndarray, placed: list[tuple[TaskInfo, int]] | None = None
    ) -> dict[int, np.ndarray]:
        """First-fit of the gang's pending pods into ``room`` of ``rows``: what each row must keep
        (``placed``, when given, gets each pod and its row)."""
        room = room.copy()
        plan: dict[int, np.ndarray] = {}
        for task in self.pending(job):
            for i in rows:
                if (room[i] >= task.vec).all() and self.ssn.static_filter(task)[0][i]:
                    room[i] -= task.vec
                    plan[i] = plan.get(i, 0) + task.vec
                    if placed is not None:
                        placed.append((task, i))
                    break
        return plan

    def lock_devices(self, rows: list[int], placed: list[tuple[TaskInfo, int]], *, whole: bool) -> None:
        """Keep the gang's GPU shares on its reserved nodes' devices (every device, when ``whole``):
        out of what is free first, then out of what is being released, as ``lock`` does."""
        devices = self.ssn.devices
        if not devices.width:
            return
        free, future = devices.gpu_free, devices.future
        changes = self.ssn.nodes.changes  # the rows placements must look at again
        if whole:
            for i in rows:
                free[i] = np.minimum(free[i], 0)
                future[i] = np.minimum(future[i], 0)
                changes.append(i)
            return
        room = np.where(free >= 0, MILLI, -1)  # the devices as allocatable: the plan's room
        for task, i in placed:
            request = task.gpu
            if request is None:
                continue
            chosen = pick(room[i], devices.mem_free[i], request)
            for d in chosen:
                room[i, d] -= request.milli
                on_idle = min(max(int(free[i, d]), 0), request.milli)
                free[i, d] -= on_idle
                future[i, d] -= on_idle
                future[i, d] -= min(max(int(future[i, d]), 0), request.milli - on_idle)
            if chosen:
                changes.append(i)

    def most_starved(self) -> JobInfo | None:
        ssn = self.ssn
        found: list[tuple[int, JobInfo]] = []
        for job in ssn.jobs.values():
            since = ssn.state.podgroups[job.name].starving_since
            if since < 0 or ssn.now - since < self.starvation or job.phase == "Completed" or ssn.job_ready(job):
                continue
            if not any(t.status == "Pending" for t in job.tasks) and not job.min_resources:
                continue
            if not self.within_queue(job):
                continue
            found.append((since, job))
        if not found:
            return None
        found.sort(key=lambda pair: (pair[0], ssn.job_key(pair[1])))
        return found[0][1]

    def within_queue(self, job: JobInfo) -> bool:
        """Its queue is open and could run the gang: within its deserved share (admitted podgroups,
        when ``proportion`` says), within its capability (podgroups not admitted yet)."""
        ssn = self.ssn
        queue = ssn.queues.get(job.queue)
        if queue is None or queue.state != "Open":
            return False
        if job.phase != "Pending":
            return self.within_share(job)
        if not queue.capability:
            return True
        held: dict[str, float] = {}
        for other in ssn.jobs.values():
            if other.queue == job.queue:
                for d, v in other.allocated.items():
                    held[d] = held.get(d, 0) + v
                if other.phase == "Inqueue":
                    for d, v in other.min_resources.items():
                        held[d] = held.get(d, 0) + v
        capability = queue.capability
        return all(held.get(d, 0) + need <= capability[d] for d, need in job.min_resources.items() if d in capability)

    def within_share(self, job: JobInfo) -> bool:
        """A gang larger than its queue's deserved share waits for fairness, not for room: reclaim's case.

        The queue's other jobs do not count: they finish, and their share is the gang's to take then.
        """
        source = share_source(self.ssn.plugins)  # ``proportion`` or ``capacity``, if configured
        if source is None:
            return True
        deserved = source.deserved(job.queue)
        held: dict[str, float] = dict(job.allocated)
        for task in self.pending(job):
            for d, v in task.req.items():
                if d != "pods":
                    held[d] = held.get(d, 0) + v
        return all(v <= deserved.get(d, 0) + 1e-6 for d, v in held.items() if v > 0)

    def choose_nodes(self, job: JobInfo) -> list[int]:
        """The fewest nodes, most idle first, whose allocatable resources hold the gang."""
        ssn = self.ssn
        nodes = ssn.nodes
        tasks = self.pending(job)
        if tasks:
            ok = np.ones(len(nodes), dtype=bool)
            for task in tasks:
                ok &= ssn.static_filter(task)[0]
        else:
            ok = ~nodes.unschedulable
        rows = np.nonzero(ok)[0].tolist()
        idle = nodes.idle.clip(min=0).sum(axis=1) / np.maximum(nodes.alloc.sum(axis=1), 1)
        rows.sort(key=lambda i: (-idle[i], i))
        chosen: list[int] = []
        for i in rows:
            chosen.append(i)
            if tasks:
                if len(tasks) <= self._placed(job, chosen, nodes.alloc):
                    return sorted(chosen)
            else:
                total = nodes.alloc[chosen].sum(axis=0)
                need = nodes.vector(job.min_resources)
                if (total >= need).all():
                    return sorted(chosen)
        return []

    def _placed(self, job: JobInfo, rows: list[int], room: np.ndarray) -> int:
        room = room.copy()
        placed = 0
        for task in self.pending(job):
            for i in rows:
                if (room[i] >= task.vec).all():
                    room[i] -= task.vec
                    placed += 1
                    break
        return placed


def execute(ssn: Session) -> None:
    Reserve(ssn).run()
