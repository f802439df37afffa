"""The records of the cluster state: nodes, queues, podgroups, pods.

Where it sits: ``projections.cluster`` folds the log into a ``ClusterState``
made of these records; the scheduler (``handlers.scheduler``) opens each
session over it without changing it. Records are plain mutable objects with
slots: the fold updates them in place, event by event.

Pod statuses use Volcano's task status names: ``Pending`` (waiting for a
node), ``Pipelined`` (reserved on a node whose resources are being released),
``Bound``, ``Running``, ``Releasing`` (deletion requested while it holds a
node), ``Succeeded``, ``Failed``. A node's ``used`` counts every pod that holds
it (Bound, Running, Releasing); ``releasing`` is the part of ``used`` that is
leaving; ``pipelined`` is promised to pipelined pods.
"""

from __future__ import annotations

from collections import Counter

from projections.cluster_devices import GpuRequest, NodeDevices
from schemas.events.runtimeclass import RuntimeClassAdded
from schemas.hypernode import HyperNode
from schemas.resources import Affinity, Taint, Toleration

Resources = dict[str, int]

# Statuses in which a pod holds resources on its node.
HOLDING = frozenset({"Bound", "Running", "Releasing"})
# Statuses that are over for good.
TERMINAL = frozenset({"Succeeded", "Failed"})

# Kubernetes' default pod capacity of a node that does not state one.
DEFAULT_NODE_PODS = 110


def add_into(target: Resources, amount: Resources, sign: int = 1) -> None:
    """``target += sign * amount`` in place (a missing key is 0; a key that reaches 0 goes)."""
    for name, value in amount.items():
        total = target.get(name, 0) + sign * value
        if total:
            target[name] = total
        else:
            target.pop(name, None)


def hold(state: ClusterState, node: NodeRecord, target: Resources, amount: Resources, sign: int = 1) -> None:
    """``add_into`` for a node's ``used`` or ``releasing``: also notes the node as changed
    (``ClusterState.touch_node``) and keeps ``held_dims``, the resources some node holds."""
    held = state.held_dims
    for name, value in amount.items():
        before = target.get(name, 0)
        total = before + sign * value
        if total:
            target[name] = total
            if not before:
                held[name] += 1
        elif before:
            del target[name]
            held[name] -= 1
            if not held[name]:
                del held[name]
    state.touch_node(node.name)


class NodeRecord:
    """The cluster state's record of one node (``...Record``: a fold's state of one object)."""

    __slots__ = ("name", "allocatable", "labels", "taints", "unschedulable", "used", "releasing", "pipelined")

    def __init__(self, name: str) -> None:
        self.name = name
        self.allocatable: Resources = {}
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.used: Resources = {}
        self.releasing: Resources = {}
        self.pipelined: Resources = {}


class QueueRecord:
    """The cluster state's record of one queue, as the scheduler weighs it."""

    __slots__ = (
        "name",
        "weight",
        "capability",
        "guarantee",
        "deserved",
        "priority",
        "state",
        "created_at",
        "reclaimable",
        "parent",
    )

    def __init__(self, name: str, created_at: int) -> None:
        self.name = name
        self.created_at = created_at
        self.weight = 1
        self.capability: Resources = {}
        self.guarantee: Resources = {}
        self.deserved: Resources = {}
        self.priority = 0
        self.state = "Open"
        self.reclaimable = True
        # ``spec.parent``: the queue above this one in the hierarchy ("" at the top).
        self.parent = ""


class PodGroupRecord:
    """The cluster state's record of one podgroup."""

    __slots__ = (
        "name",
        "job",
        "queue",
        "min_member",
        "min_task_member",
        "min_resources",
        "wanted",
        "priority_class",
        "annotations",
        "phase",
        "created_at",
        "inqueue_at",
        "epoch",
        "unschedulable",
        "network_topology",
        "starving_since",
    )

    def __init__(self, name: str, created_at: int) -> None:
        self.name = name
        self.created_at = created_at
        self.job = ""
        self.queue = "default"
        self.min_member = 0
        self.min_task_member: dict[str, int] = {}
        self.min_resources: Resources = {}
        # ``min_resources`` without the pod count and zero amounts: what a session
        # weighs the podgroup by (read only there).
        self.wanted: Resources = {}
        self.priority_class = ""
        self.annotations: dict[str, str] = {}
        self.phase = "Pending"
        self.inqueue_at = -1
        # ``spec.networkTopology`` as (mode, highestTierAllowed or 0), or None.
        self.network_topology: tuple[str, int] | None = None
        # Bumped whenever the podgroup or one of its pods changes.
        self.epoch = 0
        # (fingerprint, recorded_at, reason, message) of the last
        # PodGroupUnschedulable, or None.
        self.unschedulable: tuple[tuple[int, int, int], int, str, str] | None = None
        # recorded_at of the first PodGroupUnschedulable since it last ran, or -1.
        self.starving_since = -1


class PodRecord:
    """The cluster state's record of one pod, as the scheduler places it (the job controller's is ``JobPodRecord``)."""

    __slots__ = (
        "name",
        "job",
        "podgroup",
        "task",
        "index",
        "requests",
        "priority",
        "node_selector",
        "affinity",
        "tolerations",
        "runtime_class",
        "class_overhead",
        "status",
        "node",
        "created_at",
        "signature",
        "annotations",
        "preemptable",
        "never_preempts",
        "namespace",
        "labels",
        "gpu",
        "devices",
    )

    def __init__(self, name: str, created_at: int) -> None:
        self.name = name
        self.created_at = created_at
        # What it asks of GPU devices (``projections.cluster_devices``), None: no GPU; and the
        # devices of its node it holds or is promised (indices), () while it has none.
        self.gpu: GpuRequest | None = None
        self.devices: tuple[int, ...] = ()
        # The placement constraints as one comparable value: pods with equal
        # signatures pass and fail the same node filters.
        self.signature = b""
        self.job = ""
        self.podgroup = ""
        self.task = ""
        self.index = 0
        self.requests: Resources = {}
        self.priority = 0
        self.node_selector: dict[str, str] = {}
        self.affinity: Affinity | None = None
        self.tolerations: tuple[Toleration, ...] = ()
        self.runtime_class = ""
        # What its RuntimeClass added to ``requests`` (None: the pod states its own overhead).
        self.class_overhead: Resources | None = {}
        self.annotations: dict[str, str] = {}
        # False when labelled or annotated ``volcano.sh/preemptable: "false"``.
        self.preemptable = True
        # ``preemptionPolicy: Never`` (the pod's own, else its PriorityClass's): it evicts nobody.
        self.never_preempts = False
        self.status = "Pending"
        self.node = ""
        # The pod's namespace and labels: what inter-pod affinity terms select pods by.
        self.namespace = ""
        self.labels: dict[str, str] = {}


class ClusterState:
    """Everything the scheduler decides on, folded from the log.

    Dicts keep log insertion order; whoever needs an order independent of
    the log (the scheduler's node arrays) sorts by name.
    """

    def __init__(self) -> None:
        self.position = -1
        self.nodes: dict[str, NodeRecord] = {}
        self.queues: dict[str, QueueRecord] = {}
        self.podgroups: dict[str, PodGroupRecord] = {}
        self.pods: dict[str, PodRecord] = {}
        self.pods_by_group: dict[str, dict[str, None]] = {}
        self.pods_by_job: dict[str, dict[str, None]] = {}
        self.priority_classes: dict[str, int] = {}
        self.never_preempting_classes: set[str] = set()  # PriorityClasses with preemptionPolicy Never
        self.default_priority_class = ""
        # Bumped when capacity may have grown (nodes, freed pods, reservations).
        self.capacity_epoch = 0
        # Bumped when a node is added, changed or removed (not when pods come and go).
        self.node_epoch = 0
        # Derived by readers from the nodes at ``node_epoch`` (e.g. the scheduler's
        # static node arrays); never folded, safe to drop.
        self.node_cache: object = None
        # Likewise the scheduler's copies of settled podgroups, kept between sessions.
        self.jobs_cache: object = None
        self.queue_epochs: dict[str, int] = {}
        # podgroup -> nodes held for it (ReservationMade until ReservationReleased).
        self.reservations: dict[str, tuple[str, ...]] = {}
        self.stale: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()
        # Jobs in a final phase (Completed, Failed, Terminated): their podgroups
        # hold no reservation and take no part in sessions.
        self.finished_jobs: set[str] = set()
        # The scheduler's working set, kept as events are folded so that a session
        # costs what is live, never what the state has held:
        # - the podgroups that take part in sessions: not Completed, their job not finished;
        self.live_groups: set[str] = set()
        # - job -> its podgroups (a job's podgroups found without a pass over all of them);
        self.groups_by_job: dict[str, dict[str, None]] = {}
        # - node -> the ``node_seq`` of the last change to its ``used`` or ``releasing``,
        #   most recent last: a reader holding arrays as of seq S updates only the nodes
        #   changed after S (the scheduler's node arrays, ``handlers.scheduler.snapshot``);
        self.node_seq = 0
        self.node_touched: dict[str, int] = {}
        # - resource -> how many of the nodes' ``used`` and ``releasing`` hold some of it.
        self.held_dims: Counter[str] = Counter()
        # HyperNodes by name (``projections.cluster_hypernodes``), and a count bumped at each change.
        self.hypernodes: dict[str, HyperNode] = {}
        self.hypernode_epoch = 0
        # RuntimeClass name -> its latest RuntimeClassAdded (``projections.cluster_runtime``).
        self.runtime_classes: dict[str, RuntimeClassAdded] = {}
        # Pods (not finished) with inter-pod affinity or anti-affinity terms, in log order: while
        # there are none, the scheduler spends nothing on inter-pod affinity.
        self.pod_affinity_pods: dict[str, None] = {}
        # Node -> its GPU devices and which pods hold which (``projections.cluster_devices``);
        # only nodes with GPUs, made as pods are placed on them.
        self.devices: dict[str, NodeDevices] = {}

    def priority_of(self, class_name: str) -> int:
        if class_name and class_name in self.priority_classes:
            return self.priority_classes[class_name]
        if self.default_priority_class:
            return self.priority_classes.get(self.default_priority_class, 0)
        return 0

    def touch_node(self, name: str) -> None:
        """Note that the resources held on node ``name`` changed."""
        self.node_seq += 1
        touched = self.node_touched
        touched.pop(name, None)
        touched[name] = self.node_seq

    def relive(self, name: str) -> None:
        """Put podgroup ``name`` in ``live_groups`` or take it out, as it is now."""
        group = self.podgroups.get(name)
        if group is not None and group.phase != "Completed" and (
            group.job not in self.finished_jobs or self._owed_completed(group)
        ):
            self.live_groups.add(name)
        else:
            self.live_groups.discard(name)

    def _owed_completed(self, group: PodGroupRecord) -> bool:
        """A finished job's podgroup whose pods all succeeded takes part in one more session,
        which closes it as Completed (as Volcano's does), however soon the job controller
        saw the job finish; then the podgroup leaves the working set."""
        names = self.pods_by_group.get(group.name, ())
        pods = self.pods
        return 0 < len(names) >= group.min_member and all(pods[n].status == "Succeeded" for n in names)

    def fingerprint(self, group: PodGroupRecord) -> tuple[int, int, int]:
        """What must change before an unschedulable podgroup is tried again."""
        return (self.capacity_epoch, self.queue_epochs.get(group.queue, 0), group.epoch)
