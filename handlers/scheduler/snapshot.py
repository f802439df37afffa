"""Session open: copy the cluster state into the session's own model.

Where it sits: first step of every session (``session.Session``). Reads the
``ClusterState`` folded by ``projections.cluster`` and never writes to it;
everything the session later changes lives in the copy built here.

Nodes are ordered by name whatever order the log added them in, so that the
same cluster always gives the same arrays and ties break by node name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from handlers.scheduler.api import READY, JobInfo, NodeArrays, QueueInfo, StatusCounts, TaskInfo, is_best_effort
from projections.cluster_model import ClusterState

# The job controller names, on the PodGroup, the tasks whose pods wait for
# other tasks (``dependsOn``): until they have pods the gang leaves them out.
DEPENDENT_TASKS = "eventbatch.io/dependent-tasks"


@dataclass
class Snapshot:
    nodes: NodeArrays
    jobs: dict[str, JobInfo]  # by podgroup name, sorted
    queues: dict[str, QueueInfo]  # by name, sorted
    total: dict[str, int]  # sum of node allocatable


@dataclass
class _StaticNodes:
    """What changes only with the nodes themselves, reused until ``node_epoch`` moves."""

    key: tuple
    node_dims: frozenset[str]  # what the nodes offer, whatever pods ask for
    names: list[str]
    records: list
    alloc: np.ndarray
    labels: list[dict[str, str]]
    taints: list[tuple]
    unschedulable: np.ndarray


def _static_nodes(state: ClusterState, dims: list[str]) -> _StaticNodes:
    key = (state.node_epoch, tuple(dims))
    cached = state.node_cache
    if isinstance(cached, _StaticNodes) and cached.key == key:
        return cached
    names = sorted(state.nodes)
    col = {d: j for j, d in enumerate(dims)}
    records = [state.nodes[name] for name in names]
    alloc = np.zeros((len(names), len(dims)), dtype=np.int64)
    for i, rec in enumerate(records):
        for d, v in rec.allocatable.items():
            alloc[i, col[d]] = v
    static = _StaticNodes(
        key=key,
        node_dims=frozenset(d for rec in records for d in rec.allocatable),
        names=names,
        records=records,
        alloc=alloc,
        labels=[rec.labels for rec in records],
        taints=[rec.taints for rec in records],
        unschedulable=np.array([rec.unschedulable for rec in records], dtype=bool),
    )
    state.node_cache = static
    return static


def _nodes(state: ClusterState, dims: list[str]) -> NodeArrays:
    static = _static_nodes(state, dims)
    col = {d: j for j, d in enumerate(dims)}
    shape = static.alloc.shape
    used = np.zeros(shape, dtype=np.int64)
    releasing = np.zeros(shape, dtype=np.int64)
    for i, rec in enumerate(static.records):
        if rec.used:  # zero amounts are dropped by the fold: most idle nodes skip here
            for d, v in rec.used.items():
                used[i, col[d]] = v
        if rec.releasing:
            for d, v in rec.releasing.items():
                releasing[i, col[d]] = v
    idle = static.alloc - used
    return NodeArrays(
        names=static.names,
        dims=dims,
        alloc=static.alloc.copy(),
        used=used,
        idle=idle,
        future=idle + releasing,
        labels=static.labels,
        taints=static.taints,
        unschedulable=static.unschedulable.copy(),
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
    """Podgroups that take part in a session: not completed, their job not finished."""
    finished = state.finished_jobs
    return [
        name
        for name in sorted(state.podgroups)
        if state.podgroups[name].phase != "Completed" and state.podgroups[name].job not in finished
    ]


def _dims(state: ClusterState, live: list[str]) -> list[str]:
    """Every resource a node offers or a live pod asks for, sorted."""
    cached = state.node_cache
    if isinstance(cached, _StaticNodes) and cached.key[0] == state.node_epoch:
        dim_set = set(cached.node_dims)
    else:
        dim_set = set()
        for rec in state.nodes.values():
            dim_set.update(rec.allocatable)
    for rec in state.nodes.values():
        if rec.used:
            dim_set.update(rec.used)
        if rec.releasing:
            dim_set.update(rec.releasing)
    for group in live:
        for pod_name in state.pods_by_group.get(group, ()):
            dim_set.update(state.pods[pod_name].requests)
    return sorted(dim_set)


# Pod statuses that hold a node: a job whose pods are all in one of them has nothing to
# place, and its tasks are built only when asked for (``JobInfo.tasks``).
HOLDING = frozenset({"Bound", "Running"})
assert HOLDING <= READY


def _task(pod, job: JobInfo, nodes: NodeArrays, vectors: dict) -> TaskInfo:
    """One pod as the session's task: its resource vector, role key and node row."""
    requests = pod.requests
    key = tuple(sorted(requests.items()))
    triple = vectors.get(key)
    if triple is None:
        vec = nodes.vector(requests)
        triple = vectors[key] = (vec, np.nonzero(vec)[0], is_best_effort(requests))
    task = TaskInfo(pod, job, triple[2])
    task.vec, task.nz = triple[0], triple[1]
    task.role_key = (task.role, key, task.signature)
    status = task.status
    if status == "Releasing" and not pod.node:
        task.status = "Deleting"  # never placed, on its way out: counts for nothing
    elif status in ("Bound", "Running", "Releasing"):
        task.node = nodes.index.get(pod.node, -1)
    return task


def _tasks(records: list, job: JobInfo, nodes: NodeArrays, vectors: dict) -> list[TaskInfo]:
    return [_task(pod, job, nodes, vectors) for pod in records]


def build(state: ClusterState) -> Snapshot:
    live = _live_groups(state)
    dims = _dims(state, live)
    nodes = _nodes(state, dims)
    total = {d: int(v) for d, v in zip(dims, nodes.alloc.sum(axis=0).tolist())}

    queues: dict[str, QueueInfo] = {}
    for name in sorted(state.queues):
        rec = state.queues[name]
        q = QueueInfo(name)
        q.weight, q.capability, q.guarantee, q.deserved = rec.weight, rec.capability, rec.guarantee, rec.deserved
        q.priority, q.state, q.created_at = rec.priority, rec.state, rec.created_at
        queues[name] = q

    # What depends only on a pod's requests, computed once per distinct requests per session.
    vectors: dict[tuple, tuple[np.ndarray, np.ndarray, bool]] = {}
    jobs: dict[str, JobInfo] = {}
    pods = state.pods
    for name in live:  # history holds nothing and decides nothing
        rec = state.podgroups[name]
        job = JobInfo(name)
        job.job, job.queue = rec.job, rec.queue
        job.min_member, job.min_task_member = rec.min_member, rec.min_task_member
        job.min_resources = {k: v for k, v in rec.min_resources.items() if k != "pods" and v}
        job.priority = state.priority_of(rec.priority_class)
        job.created_at, job.phase, job.annotations = rec.created_at, rec.phase, rec.annotations
        job.inqueue_at = rec.inqueue_at
        allocated = job.allocated
        counts, role_counts = job.counts, job.role_counts
        records = [pods[pod_name] for pod_name in state.pods_by_group.get(name, ())]
        if records and all(pod.status in HOLDING for pod in records):
            # Every pod holds its node: count it from the records and build the tasks
            # only if an action or plugin asks for them (the same tasks, built the same way).
            for pod in records:
                status = pod.status
                for d, v in pod.requests.items():
                    if d != "pods":
                        allocated[d] = allocated.get(d, 0) + v
                counts[status] += 1
                roles = role_counts.get(pod.task)
                if roles is None:
                    roles = role_counts[pod.task] = StatusCounts()
                roles[status] += 1
            job.ready += len(records)  # HOLDING statuses are READY ones
            job._deferred = partial(_tasks, records, job, nodes, vectors)
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
        _leave_out_dependents(job)
        jobs[name] = job
    return Snapshot(nodes=nodes, jobs=jobs, queues=queues, total=total)
