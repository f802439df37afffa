"""Cluster projection, pods: their lifecycle and what they hold on their nodes.

Where it sits: part of ``projections.cluster`` (which owns the ``FOLDS``
table); one fold function per pod event, from the job controller's
``PodRequested`` through the scheduler's ``PodBound``/``PodPipelined`` to the
cluster's observations. Stale decisions are ignored and counted in
``state.stale``.
"""

from __future__ import annotations

import msgspec

from projections.cluster_devices import devices_of, gpu_request, pick_first
from projections.cluster_model import HOLDING, TERMINAL, ClusterState, PodRecord, add_into, hold
from projections.cluster_runtime import price_pod
from schemas import events as ev
from schemas.envelope import Envelope

_signature = msgspec.json.Encoder()

PREEMPTABLE = "volcano.sh/preemptable"

# Annotations (on the pod or its PodGroup) that make where a pod should go
# depend on its own job: data locality, task topology. Pods carrying one, or
# whose PodGroup asks for a network topology, get a signature of their own job
# and task so the scheduler never shares their node filters and scores with
# another job, or with another role of the same job.
JOB_PLACEMENT_ANNOTATIONS = (
    "eventbatch.io/data-locality",
    "volcano.sh/task-topology-affinity",
    "volcano.sh/task-topology-anti-affinity",
)


def has_pod_affinity(pod: PodRecord) -> bool:
    """Whether the pod has inter-pod affinity or anti-affinity terms (required or preferred)."""
    affinity = pod.affinity
    return affinity is not None and bool(affinity.pod_affinity or affinity.pod_anti_affinity)


def _touch(state: ClusterState, pod: PodRecord) -> None:
    group = state.podgroups.get(pod.podgroup)
    if group is not None:
        group.epoch += 1


def _hold_devices(state: ClusterState, pod: PodRecord, named: list[int], how: str) -> None:
    """Note the GPU devices of its node ``pod`` now holds (``how``: held, releasing, pipelined):
    those its decision ``named``, else picked as the scheduler would (best fit)."""
    request = pod.gpu
    node = state.nodes.get(pod.node)
    if request is None or node is None:
        return
    record = devices_of(state.devices, node.name, node.allocatable, node.labels)
    if record is None:
        return
    if len(named) == request.count and all(0 <= d < record.count for d in named):
        chosen = tuple(sorted(named))
    else:
        chosen = pick_first(record, request)
    pod.devices = chosen
    record.pods[pod.name] = (chosen, request.milli, request.memory, how)


def _drop_devices(state: ClusterState, pod: PodRecord) -> None:
    record = state.devices.get(pod.node) if pod.gpu is not None else None
    if record is not None:
        record.pods.pop(pod.name, None)
    pod.devices = ()


def _release(state: ClusterState, pod: PodRecord) -> None:
    """Give back whatever ``pod`` holds or was promised on its node."""
    if pod.gpu is not None:
        _drop_devices(state, pod)
    node = state.nodes.get(pod.node) if pod.node else None
    if node is not None:
        if pod.status in HOLDING:
            hold(state, node, node.used, pod.requests, -1)
            if pod.status == "Releasing":
                hold(state, node, node.releasing, pod.requests, -1)
            state.capacity_epoch += 1
        elif pod.status == "Pipelined":
            add_into(node.pipelined, pod.requests, -1)
            state.capacity_epoch += 1


def pod_requested(state: ClusterState, e: ev.PodRequested, env: Envelope) -> None:
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
    pod.gpu = gpu_request(requests)
    spec = e.manifest.spec
    pod.priority = e.priority or (spec.priority or 0)
    pod.node_selector = dict(spec.node_selector)
    pod.affinity = spec.affinity
    pod.tolerations = tuple(spec.tolerations)
    pod.runtime_class = spec.runtime_class_name
    price_pod(state, pod, spec)
    pod.annotations = dict(e.manifest.metadata.annotations)
    meta = e.manifest.metadata
    flag = meta.annotations.get(PREEMPTABLE, meta.labels.get(PREEMPTABLE, "true"))
    pod.preemptable = flag.strip().lower() != "false"
    # Kubernetes' priority admission gives a pod without a preemptionPolicy its PriorityClass's.
    policy = spec.extra.get("preemptionPolicy")
    if policy is None:
        policy = "Never" if spec.priority_class_name in state.never_preempting_classes else ""
    pod.never_preempts = policy == "Never"
    group = state.podgroups.get(e.podgroup)
    own = any(key in pod.annotations for key in JOB_PLACEMENT_ANNOTATIONS) or (
        group is not None
        and (group.network_topology is not None or any(key in group.annotations for key in JOB_PLACEMENT_ANNOTATIONS))
    )
    mine = (e.podgroup, e.task) if own else ""
    pod.signature = _signature.encode(
        (sorted(pod.node_selector.items()), pod.affinity, pod.tolerations, pod.runtime_class, mine)
    )
    pod.namespace = meta.namespace or (e.pod.split("/", 1)[0] if "/" in e.pod else "default")
    pod.labels = dict(meta.labels)
    if has_pod_affinity(pod):
        state.pod_affinity_pods[e.pod] = None
    else:
        state.pod_affinity_pods.pop(e.pod, None)
    state.pods_by_group.setdefault(e.podgroup, {})[e.pod] = None
    state.pods_by_job.setdefault(e.job, {})[e.pod] = None
    _touch(state, pod)


def _place(state: ClusterState, e: ev.PodBound | ev.PodPipelined, status: str) -> None:
    """Bind or pipeline a pending (or already pipelined) pod onto ``e.node``."""
    pod = state.pods.get(e.pod)
    node = state.nodes.get(e.node)
    if pod is None or node is None or pod.status not in ("Pending", "Pipelined"):
        state.stale[type(e).__name__] += 1
        return
    if pod.status == "Pipelined":
        _release(state, pod)
    pod.status, pod.node = status, e.node
    if state.pod_affinity_pods:
        state.capacity_epoch += 1  # a pod more in a topology domain: an affinity term may be met now
    if status == "Bound":
        hold(state, node, node.used, pod.requests)
    else:
        add_into(node.pipelined, pod.requests)
    if pod.gpu is not None:
        _hold_devices(state, pod, e.devices, "held" if status == "Bound" else "pipelined")


def pod_bound(state: ClusterState, e: ev.PodBound, _: Envelope) -> None:
    _place(state, e, "Bound")


def pod_pipelined(state: ClusterState, e: ev.PodPipelined, _: Envelope) -> None:
    _place(state, e, "Pipelined")


def pod_started(state: ClusterState, e: ev.PodStarted, _: Envelope) -> None:
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
        hold(state, node, node.used, pod.requests)
        if was_releasing:
            hold(state, node, node.releasing, pod.requests)
        if pod.gpu is not None:
            _hold_devices(state, pod, [], "releasing" if was_releasing else "held")
    _touch(state, pod)


def pod_finished(state: ClusterState, e: ev.PodEvent, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is None or pod.status in TERMINAL:
        state.stale[type(e).__name__] += 1
        return
    _release(state, pod)
    pod.status = "Succeeded" if isinstance(e, ev.PodSucceeded) else "Failed"
    state.pod_affinity_pods.pop(pod.name, None)
    _touch(state, pod)


def _drop_pod(state: ClusterState, pod: PodRecord) -> None:
    _release(state, pod)
    del state.pods[pod.name]
    state.pod_affinity_pods.pop(pod.name, None)
    state.pods_by_group.get(pod.podgroup, {}).pop(pod.name, None)
    state.pods_by_job.get(pod.job, {}).pop(pod.name, None)
    _touch(state, pod)


def pod_deleted(state: ClusterState, e: ev.PodDeleted, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is None:
        state.stale[type(e).__name__] += 1
        return
    _drop_pod(state, pod)


def pod_bind_failed(state: ClusterState, e: ev.PodBindFailed, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is None or pod.status != "Bound" or pod.node != e.node:
        state.stale[type(e).__name__] += 1
        return
    _release(state, pod)
    pod.status, pod.node = "Pending", ""
    _touch(state, pod)


def pod_deletion_requested(state: ClusterState, e: ev.PodDeletionRequested | ev.PodEvictionRequested, _: Envelope) -> None:
    pod = state.pods.get(e.pod)
    if pod is None or pod.status in TERMINAL or pod.status == "Releasing":
        state.stale[type(e).__name__] += 1
        return
    if pod.status in HOLDING:
        node = state.nodes.get(pod.node)
        if node is not None:
            hold(state, node, node.releasing, pod.requests)
            state.capacity_epoch += 1
        record = state.devices.get(pod.node) if pod.gpu is not None else None
        if record is not None and pod.name in record.pods:
            held = record.pods[pod.name]
            record.pods[pod.name] = (*held[:3], "releasing")
    else:
        _release(state, pod)
        pod.node = ""
    pod.status = "Releasing"
    _touch(state, pod)


def job_removed(state: ClusterState, e: ev.JobRemoved, _: Envelope) -> None:
    for name in list(state.pods_by_job.pop(e.job, {})):
        pod = state.pods.get(name)
        if pod is not None:
            _drop_pod(state, pod)
    for name in state.groups_by_job.pop(e.job, {}):
        if state.podgroups.pop(name, None) is not None:
            state.pods_by_group.pop(name, None)
            state.live_groups.discard(name)
            state.capacity_epoch += 1
