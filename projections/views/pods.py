"""The life of each pod as the PodView shows it: phase, node, and its times.

Where it sits: part of ``projections.views``. Unlike the cluster projection
(which the scheduler reads), it keeps when a pod was requested, bound,
started and finished, its exit code and the last reason given. A pod is
kept in memory from its request until it is deleted; its row stays in the
store until its job is removed. Once a pod has finished, later events about
it change nothing, so a row never depends on where a chunk of events ended.
"""

from __future__ import annotations

from collections.abc import Callable

from schemas.envelope import Envelope

FINISHED = frozenset({"Succeeded", "Failed", "Evicted", "Deleted"})


class PodViewRecord:
    __slots__ = (
        "key", "job", "podgroup", "task", "phase", "node", "requested_at",
        "bound_at", "started_at", "finished_at", "exit_code", "reason",
    )

    def __init__(self, key: str, job: str, podgroup: str, task: str, at: int) -> None:
        self.key, self.job, self.podgroup, self.task = key, job, podgroup, task
        self.phase, self.node, self.reason = "Pending", "", ""
        self.requested_at = at
        self.bound_at: int | None = None
        self.started_at: int | None = None
        self.finished_at: int | None = None
        self.exit_code: int | None = None

    def finish(self, phase: str, at: int, reason: str = "") -> None:
        if self.phase in FINISHED:
            return
        self.phase, self.finished_at = phase, at
        if reason:
            self.reason = reason


def _placed(phase: str) -> Callable[[PodViewRecord, object, int], None]:
    def apply(pod: PodViewRecord, e, at: int) -> None:
        if pod.phase in FINISHED or pod.phase == "Running":
            return
        pod.phase, pod.node = phase, e.node
        if phase == "Bound":
            pod.bound_at = at

    return apply


def _bind_failed(pod: PodViewRecord, e, at: int) -> None:
    if pod.phase == "Bound" and pod.node == e.node:
        pod.phase, pod.node, pod.bound_at = "Pending", "", None
        pod.reason = e.reason or "bind failed"


def _started(pod: PodViewRecord, e, at: int) -> None:
    if pod.phase in FINISHED:
        return
    pod.phase, pod.node, pod.started_at = "Running", e.node, at


def _failed(pod: PodViewRecord, e, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.exit_code = e.exit_code
    pod.finish("Failed", at, e.reason or f"exit code {e.exit_code}")


def _succeeded(pod: PodViewRecord, e, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.exit_code = 0
    pod.finish("Succeeded", at)


def _restarted(pod: PodViewRecord, e, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.reason = f"restarted {e.restart_count} time(s), last exit {e.exit_code}"


def _unknown(pod: PodViewRecord, e, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.phase, pod.reason = "Unknown", e.reason


def _deletion_requested(pod: PodViewRecord, e, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.reason = f"deletion requested: {e.reason}" if e.reason else "deletion requested"


APPLY: dict[str, Callable[[PodViewRecord, object, int], None]] = {
    "PodBound": _placed("Bound"),
    "PodPipelined": _placed("Pipelined"),
    "PodBindFailed": _bind_failed,
    "PodStarted": _started,
    "PodSucceeded": _succeeded,
    "PodFailed": _failed,
    "PodRestarted": _restarted,
    "PodEvicted": lambda pod, e, at: pod.finish("Evicted", at, e.reason or "evicted"),
    "PodUnknown": _unknown,
    "PodDeletionRequested": _deletion_requested,
    "PodDeleted": lambda pod, e, at: pod.finish("Deleted", at, e.reason),
}


def fold_pod(pods: dict[str, PodViewRecord], env: Envelope) -> PodViewRecord | None:
    """Apply a pod event; returns the pod it changed (None if unknown)."""
    e = env.payload
    if env.type == "PodRequested":
        pod = pods[e.pod] = PodViewRecord(e.pod, e.job, e.podgroup, e.task, env.recorded_at)
        return pod
    pod = pods.get(e.pod)
    apply = APPLY.get(env.type)
    if pod is None or apply is None:
        return None
    apply(pod, e, env.recorded_at)
    return pod
