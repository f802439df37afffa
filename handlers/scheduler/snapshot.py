"""Session open: copy the cluster state into the session's own model.

Where it sits: first step of every session (``session.Session``). Reads the
``ClusterState`` folded by ``projections.cluster`` and never writes to it;
everything the session later changes lives in the copy built here.

Nodes are ordered by name whatever order the log added them in, so that the
same cluster always gives the same arrays and ties break by node name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from handlers.scheduler.api import READY, JobInfo, NodeArrays, QueueInfo, TaskInfo
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


def _nodes(state: ClusterState, dims: list[str]) -> NodeArrays:
    names = sorted(state.nodes)
    n, r = len(names), len(dims)
    col = {d: j for j, d in enumerate(dims)}
    alloc = np.zeros((n, r), dtype=np.int64)
    used = np.zeros((n, r), dtype=np.int64)
    releasing = np.zeros((n, r), dtype=np.int64)
    labels, taints = [], []
    unschedulable = np.zeros(n, dtype=bool)
    for i, name in enumerate(names):
        rec = state.nodes[name]
        for d, v in rec.allocatable.items():
            alloc[i, col[d]] = v
        for d, v in rec.used.items():
            if v:
                used[i, col[d]] = v
        for d, v in rec.releasing.items():
            if v:
                releasing[i, col[d]] = v
        labels.append(rec.labels)
        taints.append(rec.taints)
        unschedulable[i] = rec.unschedulable
    idle = alloc - used
    return NodeArrays(
        names=names,
        dims=dims,
        alloc=alloc,
        used=used,
        idle=idle,
        future=idle + releasing,
        labels=labels,
        taints=taints,
        unschedulable=unschedulable,
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


def build(state: ClusterState) -> Snapshot:
    dim_set: set[str] = set()
    for rec in state.nodes.values():
        dim_set.update(rec.allocatable)
        dim_set.update(rec.used)
        dim_set.update(rec.releasing)
    for pod in state.pods.values():
        dim_set.update(pod.requests)
    dims = sorted(dim_set)
    nodes = _nodes(state, dims)
    total = {d: int(v) for d, v in zip(dims, nodes.alloc.sum(axis=0).tolist())}

    queues: dict[str, QueueInfo] = {}
    for name in sorted(state.queues):
        rec = state.queues[name]
        q = QueueInfo(name)
        q.weight, q.capability, q.guarantee, q.deserved = rec.weight, rec.capability, rec.guarantee, rec.deserved
        q.priority, q.state, q.created_at = rec.priority, rec.state, rec.created_at
        queues[name] = q

    vectors: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    jobs: dict[str, JobInfo] = {}
    for name in sorted(state.podgroups):
        rec = state.podgroups[name]
        if rec.phase == "Completed" or rec.job in state.finished_jobs:
            continue  # history: holds nothing, decides nothing
        job = JobInfo(name)
        job.job, job.queue = rec.job, rec.queue
        job.min_member, job.min_task_member = rec.min_member, rec.min_task_member
        job.min_resources = {k: v for k, v in rec.min_resources.items() if k != "pods" and v}
        job.priority = state.priority_of(rec.priority_class)
        job.created_at, job.phase, job.annotations = rec.created_at, rec.phase, rec.annotations
        job.inqueue_at = rec.inqueue_at
        allocated = job.allocated
        for pod_name in state.pods_by_group.get(name, ()):
            pod = state.pods[pod_name]
            task = TaskInfo(pod, job)
            key = tuple(sorted(pod.requests.items()))
            pair = vectors.get(key)
            if pair is None:
                vec = nodes.vector(pod.requests)
                pair = vectors[key] = (vec, np.nonzero(vec)[0])
            task.vec, task.nz = pair
            task.role_key = (task.role, key, task.signature)
            if task.status == "Releasing" and not pod.node:
                task.status = "Deleting"  # never placed, on its way out: counts for nothing
            if task.status in ("Bound", "Running", "Releasing"):
                task.node = nodes.index.get(pod.node, -1)
                if task.status != "Releasing":
                    for d, v in pod.requests.items():
                        if d != "pods":
                            allocated[d] = allocated.get(d, 0) + v
            job.tasks.append(task)
            job.counts[task.status] += 1
            job.ready += task.status in READY
            roles = job.role_counts.get(task.role)
            if roles is None:
                roles = job.role_counts[task.role] = Counter()
            roles[task.status] += 1
        _leave_out_dependents(job)
        jobs[name] = job
    return Snapshot(nodes=nodes, jobs=jobs, queues=queues, total=total)
