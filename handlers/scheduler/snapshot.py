"""Session open: copy the cluster state into the session's own model.

Where it sits: first step of every session (``session.Session``). Reads the
``ClusterState`` folded by ``projections.cluster`` and never writes to it;
everything the session later changes lives in the copy built here.

Nodes are ordered by name whatever order the log added them in, so that the
same cluster always gives the same arrays and ties break by node name.

What does not change between sessions is kept on the state between them
(derived, never folded, dropped with a handler snapshot): the node arrays
(``node_cache``, brought up to date from the nodes changed since) and the copy
of each settled podgroup (``jobs_cache``: every pod holds its node), taken
again as it is while the podgroup's record, epoch and pods' statuses are the
same and the session that last had it never built its tasks (nothing of it
was placed, evicted or counted anew); only what a session may set on it
(phase, priority, the session's own marks) is set again. What the kept copies
add up to per queue (``QueueSums``) is kept with them, brought up to date from
the copies dropped and added, so that plugins need not visit each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from handlers.scheduler.api import (
    READY,
    JobInfo,
    NodeArrays,
    QueueInfo,
    RequestsKey,
    StatusCounts,
    TaskInfo,
    is_best_effort,
)
from handlers.scheduler.devices import (
    MODEL_LABEL,
    UNLIMITED,
    VGPU_CORES,
    VGPU_MEMORY,
    DeviceArrays,
    empty,
    node_device_memory,
    node_gpus,
)
from projections.cluster_model import ClusterState, PodGroupRecord, PodRecord, add_into
from schemas.resources import Resources

# The job controller names, on the PodGroup, the tasks whose pods wait for
# other tasks (``dependsOn``): until they have pods the gang leaves them out.
DEPENDENT_TASKS = "eventbatch.io/dependent-tasks"


class QueueSums:
    """What the kept copies of one queue's settled podgroups add up to (whole numbers).

    ``held``: their allocation (every pod holds its node); ``pending`` and
    ``inqueue``: the ``minResources`` of those in phase Pending / Inqueue;
    ``missing``: what those Running with their gang minimum still miss of their
    ``minResources``; ``elastic``: what they hold beyond their ``minResources``
    (``elastic``). ``proportion`` and ``overcommit`` add these to what they
    count of the session's other podgroups instead of visiting each settled one."""

    __slots__ = ("jobs", "held", "pending", "inqueue", "missing", "elastic")

    def __init__(self) -> None:
        self.jobs = 0
        self.held: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.inqueue: dict[str, int] = {}
        self.missing: dict[str, int] = {}
        self.elastic: dict[str, int] = {}


def elastic(job: JobInfo) -> dict[str, int]:
    """What the job holds beyond its ``minResources`` (Volcano's ``GetElasticResources``:
    ``ExceededPart(ji.Allocated, ji.GetMinResources())``); the pod count aside."""
    wanted = job.min_resources
    return {d: v - wanted.get(d, 0) for d, v in job.allocated.items() if d != "pods" and v > wanted.get(d, 0)}


# What a settled copy adds to its queue's sums: (queue, held, pending, inqueue, missing, elastic).
SettledPart: TypeAlias = tuple[str, Resources, Resources, Resources, Resources, Resources]
# A kept copy: the podgroup's record and epoch it was built from, the copy, its pods' records
# and their statuses then, and what it adds to its queue's sums (None until counted).
# The last, what builds its tasks if asked for (``_Build``).
KeptEntry: TypeAlias = tuple[
    PodGroupRecord, int, JobInfo, list[PodRecord], tuple[str, ...], SettledPart | None, "_Build"
]
# What depends only on a pod's requests: (vector, its non-zero columns, best effort).
Vectors: TypeAlias = dict[RequestsKey, tuple[np.ndarray, np.ndarray, bool]]


def _settled_part(job: JobInfo) -> SettledPart:
    """What a settled copy adds to its queue's sums (``QueueSums``), fixed while it is kept."""
    wanted, phase = job.min_resources, job.phase
    missing: dict[str, int] = {}
    if phase == "Running" and wanted and job.allocated_num() >= job.min_member:
        allocated = job.allocated
        for d, need in wanted.items():
            gap = need - allocated.get(d, 0)
            if gap > 0:
                missing[d] = gap
    return (
        job.queue,
        dict(job.allocated),  # a copy: a later session may place more of it on its own
        wanted if phase == "Pending" else {},
        wanted if phase == "Inqueue" else {},
        missing,
        elastic(job),
    )


def _count(sums: dict[str, QueueSums], part: SettledPart, sign: int) -> None:
    queue, held, pending, inqueue, missing, extra = part
    q = sums.get(queue)
    if q is None:
        q = sums[queue] = QueueSums()
    q.jobs += sign
    add_into(q.held, held, sign)
    add_into(q.pending, pending, sign)
    add_into(q.inqueue, inqueue, sign)
    add_into(q.missing, missing, sign)
    add_into(q.elastic, extra, sign)
    if not q.jobs:
        del sums[queue]


class _Opening:
    """The node arrays and request vectors of the session being opened, which the kept copies'
    task builders (``_Build``) read: set by each ``build``, so a kept copy's builder serves
    every session it is taken up in."""

    __slots__ = ("nodes", "vectors")

    def __init__(self) -> None:
        self.nodes: NodeArrays | None = None
        self.vectors: Vectors = {}


class _Build:
    """A settled copy's tasks, built only when asked for (``JobInfo.tasks``), over the node
    arrays of the session being opened (``_Opening``)."""

    __slots__ = ("records", "job", "opening")

    def __init__(self, records: list[PodRecord], job: JobInfo, opening: _Opening) -> None:
        self.records, self.job, self.opening = records, job, opening

    def __call__(self) -> list[TaskInfo]:
        opening = self.opening
        assert opening.nodes is not None
        return _tasks(self.records, self.job, opening.nodes, opening.vectors)


class _Kept:
    """The settled copies kept for the next session (``ClusterState.jobs_cache``) and what
    they add up to per queue, brought up to date from the copies dropped and added."""

    __slots__ = ("entries", "sums", "opening")

    def __init__(self) -> None:
        self.entries: dict[str, KeptEntry] = {}
        self.sums: dict[str, QueueSums] = {}
        self.opening = _Opening()


@dataclass
class Snapshot:
    nodes: NodeArrays
    jobs: dict[str, JobInfo]  # by podgroup name, sorted
    queues: dict[str, QueueInfo]  # by name, sorted
    total: dict[str, int]  # sum of node allocatable
    # Per queue, the sums of the settled copies taken from or kept for the cache (``QueueSums``),
    # and the session's other podgroups, in name order: ``proportion`` and ``overcommit``
    # visit those only. Read only.
    settled: dict[str, QueueSums]
    unsettled: list[JobInfo]
    # The nodes' GPU devices, in the node arrays' row order (``handlers.scheduler.devices``):
    # set by ``own``.
    devices: DeviceArrays | None = None
    # The node arrays kept between sessions, which ``nodes`` shares until ``own``.
    kept_nodes: _NodeCache | None = None

    def own(self) -> None:
        """Give the snapshot its own copies of what ``nodes`` shares with the node arrays kept
        between sessions and a session changes (used, idle, future), and its device arrays:
        before a session changes them. Allocatable and the
        unschedulable flags, which no session changes, stay shared, read only. A session that
        has nothing to place only reads the snapshot and never asks for them."""
        cache = self.kept_nodes
        if cache is None:
            return
        self.kept_nodes = None
        nodes = self.nodes
        nodes.alloc = _read_only(nodes.alloc)
        nodes.used = nodes.used.copy()
        nodes.idle = nodes.idle.copy()
        nodes.future = nodes.future.copy()
        nodes.unschedulable = _read_only(nodes.unschedulable)
        self.devices = _devices(cache)

    def share(self) -> None:
        """``own`` for a session that opens its plugins but places nothing (it only admits
        podgroups: ``session.places_nothing``): the node and device arrays kept between
        sessions, shared read only instead of copied (a write would fail, not go unseen)."""
        cache = self.kept_nodes
        if cache is None:
            return
        self.kept_nodes = None
        nodes = self.nodes
        nodes.alloc = _read_only(nodes.alloc)
        nodes.used = _read_only(nodes.used)
        nodes.idle = _read_only(nodes.idle)
        nodes.future = _read_only(nodes.future)
        nodes.unschedulable = _read_only(nodes.unschedulable)
        self.devices = _devices(cache, shared=True)


def _read_only(array: np.ndarray) -> np.ndarray:
    """A view of ``array`` that cannot be written through."""
    view = array.view()
    view.flags.writeable = False
    return view


class _NodeCache:
    """The node arrays as of ``seq`` (``ClusterState.node_seq``), kept on the state between
    sessions (``ClusterState.node_cache``) while ``key`` = (``node_epoch``, dims) holds.

    Names, allocatable, labels, taints and the name index change only with the nodes
    themselves (a new ``node_epoch`` builds them again); ``used`` and ``releasing`` are
    brought up to date at each session open from the nodes changed since ``seq``
    (``ClusterState.node_touched``), so opening a session costs the nodes that changed,
    not every node."""

    __slots__ = ("key", "seq", "offered", "names", "index", "records", "alloc", "total", "labels", "taints",
                 "unschedulable", "used", "releasing", "idle", "future", "col", "used_sum", "gpus", "held_devices",
                 "gpu_row",
                 "dev_free", "dev_mem", "dev_future", "dev_counts", "dev_models", "carried")

    def __init__(self, state: ClusterState, dims: list[str]) -> None:
        self.key = (state.node_epoch, tuple(dims))
        # Placements carried on between sessions on these arrays (``placement.Carried``).
        self.carried: object = None
        self.col = col = {d: j for j, d in enumerate(dims)}
        self.names = names = sorted(state.nodes)
        self.index = {name: i for i, name in enumerate(names)}
        self.records = records = [state.nodes[name] for name in names]
        self.offered = frozenset(d for rec in records for d in rec.allocatable)  # whatever pods ask for
        self.alloc = alloc = np.zeros((len(names), len(dims)), dtype=np.int64)
        for i, rec in enumerate(records):
            for d, v in rec.allocatable.items():
                alloc[i, col[d]] = v
        self.total = {d: int(v) for d, v in zip(dims, alloc.sum(axis=0).tolist(), strict=True)}
        self.labels = [rec.labels for rec in records]
        self.taints = [rec.taints for rec in records]
        self.unschedulable = np.array([rec.unschedulable for rec in records], dtype=bool)
        # The nodes' GPU devices (``handlers.scheduler.devices``), kept like ``used``: the rows
        # of the nodes with devices, (row, count, memory MiB of each device), and their arrays.
        self.held_devices = state.devices
        self.gpus: list[tuple[int, int, int]] = []
        self.dev_counts = np.zeros(len(names), dtype=np.int32)
        self.dev_models = [""] * len(names)
        for i, rec in enumerate(records):
            count = node_gpus(rec.allocatable)
            if count > 0:
                self.gpus.append((i, count, node_device_memory(rec.allocatable, count)))
                self.dev_counts[i] = count
                self.dev_models[i] = rec.labels.get(MODEL_LABEL, "")
        self.gpu_row = {i: (count, memory) for i, count, memory in self.gpus}
        width = max((count for _, count, _ in self.gpus), default=0)
        self.dev_free = np.full((len(names), width), -1, dtype=np.int32)
        self.dev_mem = np.full((len(names), width), -1, dtype=np.int64)
        self.dev_future = self.dev_free.copy()  # the rows are filled in with ``used`` (``_row``)
        self.used = np.zeros(alloc.shape, dtype=np.int64)
        self.releasing = np.zeros(alloc.shape, dtype=np.int64)
        # alloc - used and that + releasing, kept row by row with them (``_row``).
        self.idle = alloc.copy()
        self.future = alloc.copy()
        # What the nodes hold, per resource (whole numbers), kept as rows change.
        self.used_sum = [0] * len(dims)
        for i in range(len(records)):
            self._row(i)
        self.seq = state.node_seq

    def _row(self, i: int) -> None:
        rec, col = self.records[i], self.col
        used, releasing = self.used[i], self.releasing[i]
        total = self.used_sum
        for j, v in enumerate(used.tolist()):
            total[j] -= v
        used[:] = 0
        releasing[:] = 0
        for d, v in rec.used.items():
            used[col[d]] = v
            total[col[d]] += v
        for d, v in rec.releasing.items():
            releasing[col[d]] = v
        idle = self.idle[i]
        np.subtract(self.alloc[i], used, out=idle)
        np.add(idle, releasing, out=self.future[i])
        if i in self.gpu_row:
            self._device_row(i)

    def _device_row(self, i: int) -> None:
        """Row ``i``'s devices as the state's records hold them (a node with devices)."""
        count, memory = self.gpu_row[i]
        record = self.held_devices.get(self.names[i])
        if record is None or not record.pods:
            self.dev_free[i, :count] = self.dev_future[i, :count] = 1000
            self.dev_mem[i, :count] = memory if memory else UNLIMITED
            return
        # Pipelined pods are placed again each session (their promise is not counted, as on
        # the node arrays): future is what is free plus what is being released.
        f, m, rel, _ = record.rows()
        self.dev_free[i, :count] = f[:count]
        self.dev_mem[i, :count] = m[:count]
        self.dev_future[i, :count] = [a + b for a, b in zip(f[:count], rel[:count], strict=True)]

    def catch_up(self, state: ClusterState) -> None:
        """Rows of the nodes whose resources changed since ``seq``, most recent first."""
        if state.node_seq == self.seq:
            return
        index = self.index
        for name, seq in reversed(state.node_touched.items()):
            if seq <= self.seq:
                break
            self._row(index[name])
        self.seq = state.node_seq


def _node_cache(state: ClusterState, dims: list[str]) -> _NodeCache:
    cached = state.node_cache
    if isinstance(cached, _NodeCache) and cached.key == (state.node_epoch, tuple(dims)):
        cached.catch_up(state)
        return cached
    cached = state.node_cache = _NodeCache(state, dims)
    return cached


def _nodes(cache: _NodeCache, dims: list[str]) -> NodeArrays:
    """The node arrays as the cache holds them: shared with it until ``Snapshot.own`` copies what
    a session changes (``share``: read only)."""
    return NodeArrays(
        names=cache.names,
        dims=dims,
        alloc=cache.alloc,
        used=cache.used,
        idle=cache.idle,
        future=cache.future,
        labels=cache.labels,
        taints=cache.taints,
        unschedulable=cache.unschedulable,
        index=cache.index,
        used_at_open=list(cache.used_sum),
    )


def _devices(cache: _NodeCache, *, shared: bool = False) -> DeviceArrays:
    """The session's device arrays (its own copy, or with ``shared`` the cache's, read only):
    every GPU node's devices, less what the pods on them hold. Nodes without GPUs cost nothing."""
    if not cache.gpus:
        return empty(len(cache.names))
    if shared:
        mem = _read_only(cache.dev_mem)
        return DeviceArrays(
            _read_only(cache.dev_free), cache.dev_counts, cache.dev_models, mem, _read_only(cache.dev_future), mem
        )
    # Counts and models are read only: shared with the cache; what statements change is copied.
    mem = cache.dev_mem.copy()
    return DeviceArrays(
        cache.dev_free.copy(), cache.dev_counts, cache.dev_models, mem, cache.dev_future.copy(), mem.copy()
    )


def _leave_out_dependents(job: JobInfo) -> None:
    """Tasks that wait for others (``dependsOn``) and have no pod yet are not part of the gang yet."""
    named = job.annotations.get(DEPENDENT_TASKS, "")
    if not named:
        return
    for role in (part.strip() for part in named.split(",")):
        if role and role not in job.role_counts:
            job.min_member = max(0, job.min_member - job.min_task_member.get(role, 0))
            job.min_task_member = {r: n for r, n in job.min_task_member.items() if r != role}


def _live_groups(state: ClusterState) -> list[str]:
    """Podgroups that take part in a session, by name: not completed, their job not finished
    (``ClusterState.live_groups``, kept by the fold)."""
    return sorted(state.live_groups)


def _dims(state: ClusterState, live: list[str]) -> list[str]:
    """Every resource a node offers or holds, or a live pod asks for, sorted."""
    cached = state.node_cache
    if isinstance(cached, _NodeCache) and cached.key[0] == state.node_epoch:
        dim_set = set(cached.offered)
    else:
        dim_set = set()
        for rec in state.nodes.values():
            dim_set.update(rec.allocatable)
    dim_set.update(state.held_dims)
    pods = state.pods
    by_group = state.pods_by_group
    for group in live:
        for pod_name in by_group.get(group, ()):
            dim_set.update(pods[pod_name].requests)
    return sorted(dim_set)


# Pod statuses that hold a node: a job whose pods are all in one of them has nothing to
# place, and its tasks are built only when asked for (``JobInfo.tasks``).
HOLDING = frozenset({"Bound", "Running"})
assert HOLDING <= READY


def _task(pod: PodRecord, job: JobInfo, nodes: NodeArrays, vectors: Vectors) -> TaskInfo:
    """One pod as the session's task: its resource vector, role key and node row."""
    requests = pod.requests
    key = tuple(sorted(requests.items()))
    triple = vectors.get(key)
    if triple is None:
        vec = nodes.vector(requests)
        if pod.gpu is not None:
            # A vGPU's cores and memory are per device, tested against the devices
            # (``handlers.scheduler.devices``), not against a node total.
            for dim in (VGPU_CORES, VGPU_MEMORY):
                j = nodes.dim_index.get(dim)
                if j is not None:
                    vec[j] = 0
        triple = vectors[key] = (vec, np.nonzero(vec)[0], is_best_effort(requests))
    task = TaskInfo(pod, job, triple[0], triple[1], triple[2], key)
    status = task.status
    if status == "Releasing" and not pod.node:
        task.status = "Deleting"  # never placed, on its way out: counts for nothing
    elif status in ("Bound", "Running", "Releasing"):
        task.node = nodes.index.get(pod.node, -1)
    return task


def _tasks(records: list[PodRecord], job: JobInfo, nodes: NodeArrays, vectors: Vectors) -> list[TaskInfo]:
    return [_task(pod, job, nodes, vectors) for pod in records]


def build(state: ClusterState) -> Snapshot:
    live = _live_groups(state)
    dims = _dims(state, live)
    node_cache = _node_cache(state, dims)
    nodes = _nodes(node_cache, dims)
    total = dict(node_cache.total)

    queues: dict[str, QueueInfo] = {}
    for name in sorted(state.queues):
        queue = state.queues[name]
        q = QueueInfo(name)
        q.weight, q.capability, q.guarantee, q.deserved = queue.weight, queue.capability, queue.guarantee, queue.deserved
        q.priority, q.state, q.created_at = queue.priority, queue.state, queue.created_at
        queues[name] = q

    # What depends only on a pod's requests, computed once per distinct requests per session.
    vectors: Vectors = {}
    jobs: dict[str, JobInfo] = {}
    pods, podgroups, by_group = state.pods, state.podgroups, state.pods_by_group
    priorities: dict[str, int] = {}  # priority class -> value, looked up once per session
    # The copy of a settled podgroup (every pod holding its node) is kept on the state for the
    # next session (``ClusterState.jobs_cache``, derived: dropped with a snapshot) and taken
    # again while its record, pods and their statuses are the ones it was built from.
    found = state.jobs_cache
    cache = found if type(found) is _Kept else _Kept()
    kept = cache.entries
    opening = cache.opening
    opening.nodes, opening.vectors = nodes, vectors
    keep: dict[str, KeptEntry] = {}
    unsettled: list[JobInfo] = []
    added: list[SettledPart] = []
    for name in live:  # history holds nothing and decides nothing
        rec = podgroups[name]
        priority = priorities.get(rec.priority_class)
        if priority is None:
            priority = priorities[rec.priority_class] = state.priority_of(rec.priority_class)
        entry = kept.get(name)
        if entry is not None and entry[0] is rec and entry[1] == rec.epoch:
            job, records, statuses = entry[2], entry[3], entry[4]
            if job._deferred is not None and (
                records[0].status is statuses[0]  # one-pod podgroups, the most common: no generator
                if len(records) == 1
                else all(p.status is s for p, s in zip(records, statuses, strict=True))
            ):
                # Nothing of it changed since the last session, which only read it (its
                # tasks were never built, so nothing was placed, evicted or counted anew).
                job.priority = priority
                job.phase, job.inqueue_at = rec.phase, rec.inqueue_at
                job.unchanged = job.timed_out = False
                job.fit_errors = None
                job.blocked_by = ""
                job._deferred = entry[6]
                jobs[name] = job
                keep[name] = entry
                continue
        job = JobInfo(name)
        job.job, job.queue = rec.job, rec.queue
        job.min_member, job.min_task_member = rec.min_member, rec.min_task_member
        job.min_resources = rec.wanted  # the state's own dict: sessions never change it
        job.priority = priority
        job.created_at, job.phase, job.annotations = rec.created_at, rec.phase, rec.annotations
        job.inqueue_at = rec.inqueue_at
        allocated = job.allocated
        counts, role_counts = job.counts, job.role_counts
        records = [pods[pod_name] for pod_name in by_group.get(name, ())]
        settled = bool(records)
        for pod in records:
            if pod.status not in HOLDING:
                settled = False
                break
        if settled:
            # Every pod holds its node: count it from the records and build the tasks
            # only if an action or plugin asks for them (the same tasks, built the same way).
            for pod in records:
                status = pod.status
                for d, v in pod.requests.items():
                    if d != "pods":
                        allocated[d] = allocated.get(d, 0) + v
                counts[status] = counts.get(status, 0) + 1
                roles = role_counts.get(pod.task)
                if roles is None:
                    roles = role_counts[pod.task] = StatusCounts()
                roles[status] = roles.get(status, 0) + 1
            job.ready += len(records)  # HOLDING statuses are READY ones
            job._deferred = builder = _Build(records, job, opening)
            keep[name] = (rec, rec.epoch, job, records, tuple(pod.status for pod in records), None, builder)
        else:
            tasks = job.tasks
            for pod in records:
                task = _task(pod, job, nodes, vectors)
                status = task.status
                if status in ("Bound", "Running"):
                    for d, v in pod.requests.items():
                        if d != "pods":
                            allocated[d] = allocated.get(d, 0) + v
                tasks.append(task)
                counts[status] += 1
                if status in READY:
                    job.ready += 1
                roles = role_counts.get(task.role)
                if roles is None:
                    roles = role_counts[task.role] = StatusCounts()
                roles[status] += 1
        if DEPENDENT_TASKS in rec.annotations:
            _leave_out_dependents(job)
        jobs[name] = job
        entry = keep.get(name)
        if entry is None:
            unsettled.append(job)
        else:
            part = _settled_part(job)
            keep[name] = (*entry[:5], part, entry[6])
            added.append(part)
    # The sums over the kept copies: those not taken again leave them, the new ones join.
    sums = cache.sums
    for name, entry in kept.items():
        if keep.get(name) is not entry and entry[5] is not None:  # every kept entry was counted
            _count(sums, entry[5], -1)
    for part in added:
        _count(sums, part, 1)
    cache.entries = keep
    state.jobs_cache = cache
    return Snapshot(
        nodes=nodes, jobs=jobs, queues=queues, total=total, settled=sums, unsettled=unsettled,
        kept_nodes=node_cache,
    )
