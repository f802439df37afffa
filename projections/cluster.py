"""The cluster projection: folds the log into the ``ClusterState`` the scheduler reads.

Where it sits: between the log and ``handlers.scheduler``. Nodes, queues,
priority classes, podgroups and pods arrive as events (observations from the
cluster adapter, intents and decisions of the job controller, the scheduler's
own decisions); each event type has one small fold function in ``FOLDS``
(pods' in ``projections.cluster_pods``, the records in
``projections.cluster_model``).

The fold is pure and deterministic. A decision that no longer applies when it
is folded (a bind for a pod already deleted, onto a node already gone, an
enqueue of a podgroup already gone) changes nothing and is counted in
``state.stale`` under its event type.
"""

from __future__ import annotations

from projections import cluster_hypernodes
from projections import cluster_pods as pods
from projections import cluster_runtime as runtime
from projections.cluster_model import (
    DEFAULT_NODE_PODS,
    ClusterState,
    NodeRecord,
    PodGroupRecord,
    QueueRecord,
    add_into,
)
from projections.dispatch import FoldTable
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.quantity import QuantityError, to_resources

__all__ = ["ClusterState", "FOLDS", "fold", "initial"]


def initial() -> ClusterState:
    return ClusterState()


def fold(state: ClusterState, envelope: Envelope) -> ClusterState:
    """Apply one event; events this projection does not read are skipped."""
    step = FOLDS.get(type(envelope.payload))
    if step is not None:
        step(state, envelope.payload, envelope)
    state.position = envelope.position
    return state


def _resources(state: ClusterState, quantities: dict[str, str], what: str) -> dict[str, int]:
    try:
        return to_resources(quantities)
    except QuantityError:
        state.invalid[what] += 1
        return {}


# --- nodes ---------------------------------------------------------------


def _node_upsert(state: ClusterState, e: ev.NodeAdded | ev.NodeUpdated, _: Envelope) -> None:
    node = state.nodes.get(e.node)
    if node is None:
        node = state.nodes[e.node] = NodeRecord(e.node)
    status = e.manifest.status
    node.allocatable = _resources(state, status.allocatable or status.capacity, "NodeAllocatable")
    node.allocatable.setdefault("pods", DEFAULT_NODE_PODS)
    node.labels = dict(e.manifest.metadata.labels)
    node.taints = tuple(e.manifest.spec.taints)
    node.unschedulable = e.manifest.spec.unschedulable
    state.capacity_epoch += 1
    state.node_epoch += 1


def _node_removed(state: ClusterState, e: ev.NodeRemoved, _: Envelope) -> None:
    node = state.nodes.pop(e.node, None)
    if node is not None:
        for name in (*node.used, *node.releasing):  # what it held is no longer held anywhere
            state.held_dims[name] -= 1
            if not state.held_dims[name]:
                del state.held_dims[name]
        state.node_touched.pop(e.node, None)
        state.capacity_epoch += 1
        state.node_epoch += 1


# --- queues and priority classes -------------------------------------------


def _queue_upsert(state: ClusterState, e: ev.QueueCreated | ev.QueueUpdated, env: Envelope) -> None:
    queue = state.queues.get(e.queue)
    if queue is None:
        queue = state.queues[e.queue] = QueueRecord(e.queue, env.recorded_at)
        if e.manifest.status is not None and e.manifest.status.state:
            queue.state = e.manifest.status.state
    spec = e.manifest.spec
    queue.weight = max(spec.weight, 1)
    queue.capability = _resources(state, spec.capability, "QueueCapability")
    queue.guarantee = _resources(state, spec.guarantee.resource, "QueueGuarantee")
    queue.deserved = _resources(state, spec.deserved, "QueueDeserved")
    queue.priority = spec.priority
    queue.reclaimable = spec.reclaimable is not False
    queue.parent = spec.parent if spec.parent != e.queue else ""
    _bump_queue(state, e.queue)


def _queue_state(state: ClusterState, e: ev.QueueStateChanged, _: Envelope) -> None:
    queue = state.queues.get(e.queue)
    if queue is None:
        state.stale[type(e).__name__] += 1
        return
    queue.state = e.state
    _bump_queue(state, e.queue)


def _queue_deleted(state: ClusterState, e: ev.QueueDeleted, _: Envelope) -> None:
    state.queues.pop(e.queue, None)
    _bump_queue(state, e.queue)


def _bump_queue(state: ClusterState, queue: str) -> None:
    state.queue_epochs[queue] = state.queue_epochs.get(queue, 0) + 1


def _priority_added(state: ClusterState, e: ev.PriorityClassAdded, _: Envelope) -> None:
    state.priority_classes[e.name] = e.value
    if e.preemption_policy == "Never":
        state.never_preempting_classes.add(e.name)
    else:
        state.never_preempting_classes.discard(e.name)
    if e.global_default:
        state.default_priority_class = e.name
    elif state.default_priority_class == e.name:
        state.default_priority_class = ""
    state.capacity_epoch += 1


def _priority_removed(state: ClusterState, e: ev.PriorityClassRemoved, _: Envelope) -> None:
    state.priority_classes.pop(e.name, None)
    state.never_preempting_classes.discard(e.name)
    if state.default_priority_class == e.name:
        state.default_priority_class = ""
    state.capacity_epoch += 1


# --- podgroups -----------------------------------------------------------


def _podgroup_upsert(state: ClusterState, e: ev.PodGroupCreated | ev.PodGroupUpdated, env: Envelope) -> None:
    group = state.podgroups.get(e.podgroup)
    if group is None:
        group = state.podgroups[e.podgroup] = PodGroupRecord(e.podgroup, env.recorded_at)
        status = e.manifest.status
        if status is not None and status.phase:
            group.phase = status.phase
        group.job = e.job
        state.groups_by_job.setdefault(e.job, {})[e.podgroup] = None
    elif group.job != e.job:
        _unindex_group(state, group)
        group.job = e.job
        state.groups_by_job.setdefault(e.job, {})[e.podgroup] = None
    spec = e.manifest.spec
    group.queue = spec.queue or "default"
    group.min_member = spec.min_member
    group.min_task_member = dict(spec.min_task_member)
    group.min_resources = dict(e.min_resources)
    group.wanted = {k: v for k, v in group.min_resources.items() if k != "pods" and v}
    group.priority_class = spec.priority_class_name
    group.annotations = dict(e.manifest.metadata.annotations)
    topology = spec.network_topology
    group.network_topology = (topology.mode or "hard", topology.highest_tier_allowed or 0) if topology else None
    group.epoch += 1
    state.relive(e.podgroup)


def _unindex_group(state: ClusterState, group: PodGroupRecord) -> None:
    named = state.groups_by_job.get(group.job)
    if named is not None:
        named.pop(group.name, None)
        if not named:
            del state.groups_by_job[group.job]


def _podgroup_deleted(state: ClusterState, e: ev.PodGroupDeleted, _: Envelope) -> None:
    group = state.podgroups.pop(e.podgroup, None)
    if group is not None:
        _unindex_group(state, group)
        state.live_groups.discard(e.podgroup)
        state.capacity_epoch += 1


def _group_of(state: ClusterState, e: ev.PodGroupDecision) -> PodGroupRecord | None:
    group = state.podgroups.get(e.podgroup)
    if group is None:
        state.stale[type(e).__name__] += 1
    return group


def _enqueued(state: ClusterState, e: ev.PodGroupEnqueued, env: Envelope) -> None:
    group = _group_of(state, e)
    if group is None:
        return
    if group.phase != "Pending":
        state.stale[type(e).__name__] += 1
        return
    group.phase = "Inqueue"
    group.inqueue_at = env.recorded_at


def _phase_changed(state: ClusterState, e: ev.PodGroupPhaseChanged, env: Envelope) -> None:
    group = _group_of(state, e)
    if group is None:
        return
    if e.previous and e.previous != group.phase:
        state.stale[type(e).__name__] += 1
        return
    if group.phase == "Inqueue" and e.phase == "Pending":
        state.capacity_epoch += 1  # the reservation is given back
    group.phase = e.phase
    state.relive(e.podgroup)
    if e.phase in ("Running", "Completed"):
        group.starving_since = -1
    if e.phase == "Inqueue":
        group.inqueue_at = env.recorded_at


def _unschedulable(state: ClusterState, e: ev.PodGroupUnschedulable, env: Envelope) -> None:
    """Remember the situation it was found in; drop the group's pipelined reservations."""
    group = _group_of(state, e)
    if group is None:
        return
    group.unschedulable = (state.fingerprint(group), env.recorded_at, e.reason, e.message)
    if group.starving_since < 0:
        group.starving_since = env.recorded_at
    for name in state.pods_by_group.get(e.podgroup, {}):
        pod = state.pods[name]
        if pod.status == "Pipelined":
            node = state.nodes.get(pod.node)
            if node is not None:
                add_into(node.pipelined, pod.requests, -1)
            pod.status, pod.node = "Pending", ""


def _reserved(state: ClusterState, e: ev.ReservationMade, _: Envelope) -> None:
    state.reservations[e.podgroup] = tuple(e.nodes)


def _reservation_released(state: ClusterState, e: ev.ReservationReleased, _: Envelope) -> None:
    if state.reservations.pop(e.podgroup, None) is None:
        state.stale[type(e).__name__] += 1


FINAL_JOB_PHASES = frozenset({"Completed", "Failed", "Terminated"})


def _job_phase(state: ClusterState, e: ev.JobPhaseChanged, _: Envelope) -> None:
    if e.phase in FINAL_JOB_PHASES:
        if e.job not in state.finished_jobs:
            state.finished_jobs.add(e.job)
            state.capacity_epoch += 1  # its podgroup's reservation is gone
    elif e.job in state.finished_jobs:
        state.finished_jobs.discard(e.job)
    else:
        return
    for name in state.groups_by_job.get(e.job, ()):  # it leaves the working set, or comes back
        state.relive(name)


_TABLE: FoldTable[ClusterState, [Envelope], None] = FoldTable()
_TABLE.on(ev.NodeAdded, _node_upsert)
_TABLE.on(ev.NodeUpdated, _node_upsert)
_TABLE.on(ev.NodeRemoved, _node_removed)
_TABLE.on(ev.QueueCreated, _queue_upsert)
_TABLE.on(ev.QueueUpdated, _queue_upsert)
_TABLE.on(ev.QueueStateChanged, _queue_state)
_TABLE.on(ev.QueueDeleted, _queue_deleted)
_TABLE.on(ev.PriorityClassAdded, _priority_added)
_TABLE.on(ev.PriorityClassRemoved, _priority_removed)
_TABLE.on(ev.RuntimeClassAdded, runtime.runtime_class_added)
_TABLE.on(ev.RuntimeClassRemoved, runtime.runtime_class_removed)
_TABLE.on(ev.PodGroupCreated, _podgroup_upsert)
_TABLE.on(ev.PodGroupUpdated, _podgroup_upsert)
_TABLE.on(ev.PodGroupDeleted, _podgroup_deleted)
_TABLE.on(ev.PodGroupEnqueued, _enqueued)
_TABLE.on(ev.PodGroupPhaseChanged, _phase_changed)
_TABLE.on(ev.PodGroupUnschedulable, _unschedulable)
_TABLE.on(ev.PodRequested, pods.pod_requested)
_TABLE.on(ev.PodBound, pods.pod_bound)
_TABLE.on(ev.PodPipelined, pods.pod_pipelined)
_TABLE.on(ev.PodStarted, pods.pod_started)
_TABLE.on(ev.PodSucceeded, pods.pod_finished)
_TABLE.on(ev.PodFailed, pods.pod_finished)
_TABLE.on(ev.PodEvicted, pods.pod_finished)
_TABLE.on(ev.PodDeleted, pods.pod_deleted)
_TABLE.on(ev.PodBindFailed, pods.pod_bind_failed)
_TABLE.on(ev.PodDeletionRequested, pods.pod_deletion_requested)
# An eviction is a deletion with a reason: the pod releases its node until it is gone.
_TABLE.on(ev.PodEvictionRequested, pods.pod_deletion_requested)
_TABLE.on(ev.ReservationMade, _reserved)
_TABLE.on(ev.ReservationReleased, _reservation_released)
_TABLE.on(ev.JobRemoved, pods.job_removed)
_TABLE.on(ev.JobPhaseChanged, _job_phase)
FOLDS = _TABLE.folds
FOLDS.update(cluster_hypernodes.FOLDS)  # HyperNodeAdded, HyperNodeUpdated, HyperNodeRemoved
