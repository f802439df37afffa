"""The cluster projection: folds the log into the ``ClusterState`` the scheduler reads.

Where it sits: between the log and ``handlers.scheduler``. Nodes, queues,
priority classes, podgroups and pods arrive as events (observations from the
cluster adapter, intents and decisions of the job controller, the scheduler's
own decisions); each event type has one small fold function in ``FOLDS``.

The fold is pure and deterministic. A decision that no longer applies when it
is folded (a bind for a pod already deleted, onto a node already gone, an
enqueue of a podgroup already gone) changes nothing and is counted in
``state.stale`` under its event type.
"""

from __future__ import annotations

from collections.abc import Callable

from projections.cluster_model import (
    DEFAULT_NODE_PODS,
    HOLDING,
    TERMINAL,
    ClusterState,
    NodeRecord,
    PodGroupRecord,
    PodRecord,
    QueueRecord,
    add_into,
)
import msgspec

from schemas import events as ev
from schemas.envelope import Envelope
from schemas.quantity import QuantityError, to_resources

__all__ = ["ClusterState", "FOLDS", "fold", "initial"]


_signature = msgspec.json.Encoder()


def initial() -> ClusterState:
    return ClusterState()


def fold(state: ClusterState, envelope: Envelope) -> ClusterState:
    """Apply one event; events this projection does not read are skipped."""
    step = FOLDS.get(envelope.type)
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


def _node_removed(state: ClusterState, e: ev.NodeRemoved, _: Envelope) -> None:
    if state.nodes.pop(e.node, None) is not None:
        state.capacity_epoch += 1


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
    if e.global_default:
        state.default_priority_class = e.name
    elif state.default_priority_class == e.name:
        state.default_priority_class = ""
    state.capacity_epoch += 1


def _priority_removed(state: ClusterState, e: ev.PriorityClassRemoved, _: Envelope) -> None:
    state.priority_classes.pop(e.name, None)
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
    spec = e.manifest.spec
    group.job = e.job
    group.queue = spec.queue or "default"
    group.min_member = spec.min_member
    group.min_task_member = dict(spec.min_task_member)
    group.min_resources = dict(e.min_resources)
    group.priority_class = spec.priority_class_name
    group.annotations = dict(e.manifest.metadata.annotations)
    group.epoch += 1


def _podgroup_deleted(state: ClusterState, e: ev.PodGroupDeleted, _: Envelope) -> None:
    if state.podgroups.pop(e.podgroup, None) is not None:
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
    if e.phase == "Inqueue":
        group.inqueue_at = env.recorded_at


def _unschedulable(state: ClusterState, e: ev.PodGroupUnschedulable, env: Envelope) -> None:
    """Remember the situation it was found in; drop the group's pipelined reservations."""
    group = _group_of(state, e)
    if group is None:
        return
    group.unschedulable = (state.fingerprint(group), env.recorded_at, e.reason, e.message)
    for name in state.pods_by_group.get(e.podgroup, {}):
        pod = state.pods[name]
        if pod.status == "Pipelined":
            node = state.nodes.get(pod.node)
            if node is not None:
                add_into(node.pipelined, pod.requests, -1)
            pod.status, pod.node = "Pending", ""


# --- pods ----------------------------------------------------------------


def _touch(state: ClusterState, pod: PodRecord) -> None:
    group = state.podgroups.get(pod.podgroup)
    if group is not None:
        group.epoch += 1


def _release(state: ClusterState, pod: PodRecord) -> None:
    """Give back whatever ``pod`` holds or was promised on its node."""
    node = state.nodes.get(pod.node) if pod.node else None
    if node is not None:
        if pod.status in HOLDING:
            add_into(node.used, pod.requests, -1)
            if pod.status == "Releasing":
                add_into(node.releasing, pod.requests, -1)
            state.capacity_epoch += 1
        elif pod.status == "Pipelined":
            add_into(node.pipelined, pod.requests, -1)
            state.capacity_epoch += 1


def _pod_requested(state: ClusterState, e: ev.PodRequested, env: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is not None and pod.status not in ("Pending", *TERMINAL):
        state.stale[type(e).__name__] += 1
        return
    if pod is None:
        pod = state.pods[e.pod] = PodRecord(e.pod, env.recorded_at)
    pod.status, pod.node = "Pending", ""
    pod.job, pod.podgroup, pod.task, pod.index = e.job, e.podgroup, e.task, e.index
    requests = dict(e.requests)
    if requests.get("pods", 0) < 1:
        requests["pods"] = 1
    pod.requests = requests
    spec = e.manifest.spec
    pod.priority = e.priority or (spec.priority or 0)
    pod.node_selector = dict(spec.node_selector)
    pod.affinity = spec.affinity
    pod.tolerations = tuple(spec.tolerations)
    pod.runtime_class = spec.runtime_class_name
    pod.signature = _signature.encode(
        (sorted(pod.node_selector.items()), pod.affinity, pod.tolerations, pod.runtime_class)
    )
    state.pods_by_group.setdefault(e.podgroup, {})[e.pod] = None
    state.pods_by_job.setdefault(e.job, {})[e.pod] = None
    _touch(state, pod)


def _pod_bound(state: ClusterState, e: ev.PodBound, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    node = state.nodes.get(e.node)
    if pod is None or node is None or pod.status not in ("Pending", "Pipelined"):
        state.stale[type(e).__name__] += 1
        return
    if pod.status == "Pipelined":
        _release(state, pod)
    pod.status, pod.node = "Bound", e.node
    add_into(node.used, pod.requests)


def _pod_pipelined(state: ClusterState, e: ev.PodPipelined, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    node = state.nodes.get(e.node)
    if pod is None or node is None or pod.status not in ("Pending", "Pipelined"):
        state.stale[type(e).__name__] += 1
        return
    if pod.status == "Pipelined":
        _release(state, pod)
    pod.status, pod.node = "Pipelined", e.node
    add_into(node.pipelined, pod.requests)


def _pod_started(state: ClusterState, e: ev.PodStarted, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is None or pod.status in TERMINAL or pod.status == "Running":
        state.stale[type(e).__name__] += 1
        return
    if pod.status == "Bound" and pod.node == e.node:
        pod.status = "Running"
        return
    # Started somewhere we did not put it (or before we saw the bind): adopt it.
    was_releasing = pod.status == "Releasing"
    _release(state, pod)
    node = state.nodes.get(e.node)
    pod.node = e.node
    pod.status = "Releasing" if was_releasing else "Running"
    if node is not None:
        add_into(node.used, pod.requests)
        if was_releasing:
            add_into(node.releasing, pod.requests)
    _touch(state, pod)


def _pod_finished(state: ClusterState, e: ev.PodEvent, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is None or pod.status in TERMINAL:
        state.stale[type(e).__name__] += 1
        return
    _release(state, pod)
    pod.status = "Succeeded" if isinstance(e, ev.PodSucceeded) else "Failed"
    _touch(state, pod)


def _drop_pod(state: ClusterState, pod: PodRecord) -> None:
    _release(state, pod)
    del state.pods[pod.name]
    state.pods_by_group.get(pod.podgroup, {}).pop(pod.name, None)
    state.pods_by_job.get(pod.job, {}).pop(pod.name, None)
    _touch(state, pod)


def _pod_deleted(state: ClusterState, e: ev.PodDeleted, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is None:
        state.stale[type(e).__name__] += 1
        return
    _drop_pod(state, pod)


def _pod_bind_failed(state: ClusterState, e: ev.PodBindFailed, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is None or pod.status != "Bound" or pod.node != e.node:
        state.stale[type(e).__name__] += 1
        return
    _release(state, pod)
    pod.status, pod.node = "Pending", ""
    _touch(state, pod)


def _pod_deletion_requested(state: ClusterState, e: ev.PodDeletionRequested, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is None or pod.status in TERMINAL or pod.status == "Releasing":
        state.stale[type(e).__name__] += 1
        return
    if pod.status in HOLDING:
        node = state.nodes.get(pod.node)
        if node is not None:
            add_into(node.releasing, pod.requests)
            state.capacity_epoch += 1
    else:
        _release(state, pod)
        pod.node = ""
    pod.status = "Releasing"
    _touch(state, pod)


def _job_removed(state: ClusterState, e: ev.JobRemoved, _: Envelope) -> None:
    for name in list(state.pods_by_job.pop(e.job, {})):
        pod = state.pods.get(name)
        if pod is not None:
            _drop_pod(state, pod)
    for name in [n for n, g in state.podgroups.items() if g.job == e.job]:
        del state.podgroups[name]
        state.pods_by_group.pop(name, None)
        state.capacity_epoch += 1


Fold = Callable[[ClusterState, ev.Event, Envelope], None]

FOLDS: dict[str, Fold] = {
    "NodeAdded": _node_upsert,
    "NodeUpdated": _node_upsert,
    "NodeRemoved": _node_removed,
    "QueueCreated": _queue_upsert,
    "QueueUpdated": _queue_upsert,
    "QueueStateChanged": _queue_state,
    "QueueDeleted": _queue_deleted,
    "PriorityClassAdded": _priority_added,
    "PriorityClassRemoved": _priority_removed,
    "PodGroupCreated": _podgroup_upsert,
    "PodGroupUpdated": _podgroup_upsert,
    "PodGroupDeleted": _podgroup_deleted,
    "PodGroupEnqueued": _enqueued,
    "PodGroupPhaseChanged": _phase_changed,
    "PodGroupUnschedulable": _unschedulable,
    "PodRequested": _pod_requested,
    "PodBound": _pod_bound,
    "PodPipelined": _pod_pipelined,
    "PodStarted": _pod_started,
    "PodSucceeded": _pod_finished,
    "PodFailed": _pod_finished,
    "PodEvicted": _pod_finished,
    "PodDeleted": _pod_deleted,
    "PodBindFailed": _pod_bind_failed,
    "PodDeletionRequested": _pod_deletion_requested,
    "JobRemoved": _job_removed,
}
