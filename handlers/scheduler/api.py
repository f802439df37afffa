"""The session's snapshot model: ``TaskInfo``, ``JobInfo``, ``QueueInfo``, ``NodeArrays``.

Where it sits: ``snapshot.build`` copies the ``ClusterState`` into these at
session open; plugins read them through their hooks, actions change them only
through a ``Statement``. Nothing here outlives the session, so a session can
change its copy freely while the cluster state stays as the log left it.

Nodes are kept as arrays (one row per node, sorted by name; one column per
resource) so that filtering and scoring run over all nodes at once; a row's
index is its rank by name, which is also the final tie-break.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np

from projections.cluster_model import PodRecord
from schemas.resources import Taint

# Volcano's "allocated" task statuses, plus Succeeded: the tasks a gang counts as ready.
READY = frozenset({"Allocated", "Bound", "Running", "Succeeded"})
ALLOCATED = frozenset({"Allocated", "Bound", "Running"})
VALID = READY | {"Pending", "Pipelined"}
# Why nothing can be placed or admitted in a cluster without nodes (kube-scheduler's wording).
NO_NODES = "0/0 nodes are available: the cluster has no nodes"


# A pod's requests as a sorted tuple: what the session keys per-request work by.
RequestsKey: TypeAlias = tuple[tuple[str, int], ...]
# (role, requests, placement-constraint signature): tasks alike for placement.
RoleKey: TypeAlias = tuple[str, RequestsKey, bytes]


def share(allocated: Mapping[str, float], total: Mapping[str, float]) -> float:
    """The dominant share: the largest ``allocated / total`` over resources."""
    best = 0.0
    for name, amount in allocated.items():
        whole = total.get(name, 0)
        if whole > 0:
            value = amount / whole
        else:
            value = 1.0 if amount > 0 else 0.0
        if value > best:
            best = value
    return best


class StatusCounts(Counter[str]):
    """A ``Counter`` of task statuses that is cheap to make: the snapshot makes two per job
    every session, and ``Counter.__init__`` (an ``update`` of nothing) costs more than the
    rest of the job's copy."""

    __slots__ = ()
    __init__ = dict.__init__  # an empty one: no ``update`` of nothing


def is_best_effort(requests: Mapping[str, int]) -> bool:
    """A pod that asks for nothing but a pod slot."""
    return not any(v > 0 for k, v in requests.items() if k != "pods")


class TaskInfo:
    """One pod, as the session sees it."""

    __slots__ = (
        "name",
        "job",
        "role",
        "index",
        "created_at",
        "priority",
        "req",
        "vec",
        "nz",
        "role_key",
        "signature",
        "best_effort",
        "status",
        "node",
        "prev_status",
        "prev_node",
        "record",
        "gpu",
        "devices",
    )

    def __init__(
        self,
        record: PodRecord,
        job: JobInfo,
        vec: np.ndarray,
        nz: np.ndarray,
        best_effort: bool,
        requests_key: RequestsKey,
    ) -> None:
        self.name = record.name
        self.job = job
        self.role = record.task
        self.index = record.index
        self.created_at = record.created_at
        self.priority = record.priority
        self.req = record.requests
        self.signature = record.signature
        # What depends on the requests alone, computed once per distinct requests by the snapshot:
        # the requests as a vector over the session's resource columns, its non-zero columns.
        self.vec = vec
        self.nz = nz
        self.best_effort = best_effort
        self.role_key: RoleKey = (record.task, requests_key, record.signature)
        self.record = record
        self.prev_status = record.status
        self.prev_node = record.node
        # A pipelined reservation lasts one session, as in Volcano: the pod is
        # placed again from Pending and keeps its node if that is still best.
        self.status = "Pending" if record.status == "Pipelined" else record.status
        self.node = -1
        # What it asks of GPU devices (None: nothing), and the devices of its node it holds.
        self.gpu = record.gpu
        self.devices: tuple[int, ...] = () if record.status == "Pipelined" else record.devices


class JobInfo:
    """One podgroup and its pods."""

    __slots__ = (
        "name",
        "job",
        "queue",
        "min_member",
        "min_task_member",
        "min_resources",
        "priority",
        "created_at",
        "phase",
        "annotations",
        "_deferred",
        "_tasks",
        "counts",
        "ready",
        "role_counts",
        "allocated",
        "inqueue_at",
        "unchanged",
        "timed_out",
        "fit_errors",
        "blocked_by",
        "quiet",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.job = ""
        self.queue = ""
        self.min_member = 0
        self.min_task_member: dict[str, int] = {}
        self.min_resources: dict[str, int] = {}
        self.priority = 0
        self.created_at = 0
        self.phase = "Pending"
        self.annotations: dict[str, str] = {}
        # Builds the tasks when first asked for (see ``tasks``).
        self._deferred: Callable[[], list[TaskInfo]] | None = None
        self._tasks: list[TaskInfo] = []
        self.counts: Counter[str] = StatusCounts()
        self.ready = 0  # tasks in READY statuses, kept by set_status
        self.role_counts: dict[str, Counter[str]] = {}
        self.allocated: dict[str, int] = {}  # what its tasks holding resources ask for, summed
        self.inqueue_at = -1
        # Set by the session: skip it (unschedulable, and nothing changed since).
        self.unchanged = False
        self.timed_out = False
        self.fit_errors: FitErrors | None = None
        self.blocked_by = ""  # why tasks were not tried (queue share), when no fit error
        # The phase in which a session's close found nothing to change of this copy while its
        # tasks were unbuilt (see ``Session.close``): a kept copy closed again in that phase,
        # its tasks still unbuilt and not found unschedulable, changes nothing either.
        self.quiet = ""

    @property
    def tasks(self) -> list[TaskInfo]:
        """The job's tasks. The snapshot leaves them unbuilt for a job whose pods all hold
        their nodes (its counts, role counts and allocation are set without them): most
        sessions never look at such a job's tasks, and a busy cluster has many."""
        if self._deferred is not None:
            build, self._deferred = self._deferred, None
            self._tasks = build()
        return self._tasks

    @tasks.setter
    def tasks(self, tasks: list[TaskInfo]) -> None:
        self._deferred = None
        self._tasks = tasks

    @property
    def settled(self) -> bool:
        """Whether every task is allocated, bound or running and the tasks are not built yet."""
        return self._deferred is not None

    def set_status(self, task: TaskInfo, status: str) -> None:
        old = task.status
        self.counts[old] -= 1
        self.counts[status] += 1
        roles = self.role_counts[task.role]
        roles[old] -= 1
        roles[status] += 1
        task.status = status
        self.ready += (status in READY) - (old in READY)

    def ready_num(self) -> int:
        return self.ready

    def allocated_num(self) -> int:
        """Tasks holding resources now (succeeded ones hold none)."""
        get = self.counts.get  # not Counter's [], whose missing keys go through Python
        return get("Allocated", 0) + get("Bound", 0) + get("Running", 0)

    def waiting_num(self) -> int:
        return self.counts.get("Pipelined", 0)

    def valid_num(self) -> int:
        get = self.counts.get
        return self.ready + get("Pending", 0) + get("Pipelined", 0)

    def role_num(self, role: str, statuses: frozenset[str]) -> int:
        counts = self.role_counts.get(role)
        return sum(counts.get(s, 0) for s in statuses) if counts else 0

    def pending(self) -> list[TaskInfo]:
        return [t for t in self.tasks if t.status == "Pending"]


class QueueInfo:
    __slots__ = ("name", "weight", "capability", "guarantee", "deserved", "priority", "state", "created_at")

    def __init__(self, name: str) -> None:
        self.name = name
        self.weight = 1
        self.capability: dict[str, int] = {}
        self.guarantee: dict[str, int] = {}
        self.deserved: dict[str, int] = {}
        self.priority = 0
        self.state = "Open"
        self.created_at = 0


@dataclass
class NodeArrays:
    names: list[str]
    dims: list[str]
    alloc: np.ndarray  # (N, R) int64
    used: np.ndarray  # holding pods and this session's allocations
    idle: np.ndarray  # alloc - used
    future: np.ndarray  # idle + releasing - pipelined: what pipelining may use
    labels: list[dict[str, str]]
    taints: list[tuple[Taint, ...]]
    unschedulable: np.ndarray  # (N,) bool
    # name -> row; the snapshot passes the one it keeps between sessions (read only)
    index: dict[str, int] = field(default_factory=dict)
    # ``used`` summed over the nodes per resource as the session opened (None: not given)
    used_at_open: list[int] | None = None

    def __post_init__(self) -> None:
        if not self.index:  # not given (or no nodes: the same empty index)
            self.index = {name: i for i, name in enumerate(self.names)}
        self.dim_index = {name: j for j, name in enumerate(self.dims)}
        # Every row changed in this session, in order: cached placements
        # catch up by evaluating just these rows again.
        self.changes: list[int] = []

    def __len__(self) -> int:
        return len(self.names)

    def column(self, dim: str) -> int:
        return self.dim_index.get(dim, -1)

    def vector(self, amounts: Mapping[str, int]) -> np.ndarray:
        vec = np.zeros(len(self.dims), dtype=np.int64)
        for name, amount in amounts.items():
            j = self.dim_index.get(name)
            if j is not None:
                vec[j] = amount
        return vec

    def take(self, i: int, vec: np.ndarray) -> None:
        self.changes.append(i)
        self.used[i] += vec
        self.idle[i] -= vec
        self.future[i] -= vec

    def give(self, i: int, vec: np.ndarray) -> None:
        self.changes.append(i)
        self.used[i] -= vec
        self.idle[i] += vec
        self.future[i] += vec

    def reserve(self, i: int, vec: np.ndarray) -> None:
        self.changes.append(i)
        self.future[i] -= vec

    def unreserve(self, i: int, vec: np.ndarray) -> None:
        self.changes.append(i)
        self.future[i] += vec


class FitErrors:
    """Why one task fits no node: a reason per node, counted the way kube-scheduler prints them."""

    def __init__(self, task: str, reasons: Counter[str], nodes: int) -> None:
        self.task = task
        self.reasons = reasons
        self.nodes = nodes

    def summary(self) -> str:
        if self.nodes == 0:
            return NO_NODES
        return ", ".join(f"{count} {reason}" for reason, count in sorted(self.reasons.items()))
