"""Cluster projection, RuntimeClasses: what a pod's ``runtimeClassName`` adds to its requests.

Where it sits: part of ``projections.cluster`` (which registers these folds
in its ``FOLDS`` table; ``cluster_pods.pod_requested`` calls
``price_pod``). ``ClusterState.runtime_classes`` holds the last
``RuntimeClassAdded`` of each class; the scheduler's ``predicates`` plugin
reads its ``node_selector`` and ``tolerations``.

Overhead is added as Kubernetes' RuntimeClass admission plugin adds
``overhead.podFixed`` to a pod's ``spec.overhead``, which kube-scheduler
counts in the pod's requests: a pod that states its own ``overhead`` keeps
it (the admission plugin would refuse a different one). Kubernetes fixes a
pod's overhead when the pod is created; here a pod waiting for a node
(``Pending``) takes its class's overhead as the log has it now, so a class
added or changed after the pod was requested applies to it, and one removed
takes its overhead back (the pod then fits no node until the class is
back). A pod that holds or was promised a node keeps what it was placed
with, so what it gives back is what it took.
"""

from __future__ import annotations

from projections.cluster_model import ClusterState, PodRecord, Resources, add_into
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.resources import PodSpec


def price_pod(state: ClusterState, pod: PodRecord, spec: PodSpec) -> None:
    """Add the overhead of the pod's RuntimeClass (if any, and if the pod states none) to its requests."""
    if "overhead" in spec.extra:
        pod.class_overhead = None
        return
    known = state.runtime_classes.get(pod.runtime_class) if pod.runtime_class else None
    pod.class_overhead = dict(known.overhead) if known is not None else {}
    add_into(pod.requests, pod.class_overhead)


def _reprice(state: ClusterState, name: str, overhead: Resources) -> None:
    for pod in state.pods.values():
        if pod.runtime_class != name or pod.status != "Pending" or pod.class_overhead is None:
            continue
        if pod.class_overhead == overhead:
            continue
        add_into(pod.requests, pod.class_overhead, -1)
        add_into(pod.requests, overhead)
        pod.class_overhead = dict(overhead)
        group = state.podgroups.get(pod.podgroup)
        if group is not None:
            group.epoch += 1


def runtime_class_added(state: ClusterState, e: ev.RuntimeClassAdded, _: Envelope) -> None:
    state.runtime_classes[e.name] = e
    _reprice(state, e.name, e.overhead)
    state.capacity_epoch += 1  # pods that fitted nowhere may fit now


def runtime_class_removed(state: ClusterState, e: ev.RuntimeClassRemoved, _: Envelope) -> None:
    if state.runtime_classes.pop(e.name, None) is None:
        state.stale[type(e).__name__] += 1
        return
    _reprice(state, e.name, {})
    state.capacity_epoch += 1
