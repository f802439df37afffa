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

from projections.dispatch import FoldTable
from schemas import events as ev

FINISHED = frozenset({"Succeeded", "Failed", "Evicted", "Deleted"})


class PodViewRecord:
    """The read models' record of one pod, which its PodView row is rendered from."""

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


def _placed(phase: str) -> Callable[[PodViewRecord, ev.PodBound | ev.PodPipelined, int], None]:
    def apply(pod: PodViewRecord, e: ev.PodBound | ev.PodPipelined, at: int) -> None:
        if pod.phase in FINISHED or pod.phase == "Running":
            return
        pod.phase, pod.node = phase, e.node
        if phase == "Bound":
            pod.bound_at = at

    return apply


def _bind_failed(pod: PodViewRecord, e: ev.PodBindFailed, at: int) -> None:
    if pod.phase == "Bound" and pod.node == e.node:
        pod.phase, pod.node, pod.bound_at = "Pending", "", None
        pod.reason = e.reason or "bind failed"


def _started(pod: PodViewRecord, e: ev.PodStarted, at: int) -> None:
    if pod.phase in FINISHED:
        return
    pod.phase, pod.node, pod.started_at = "Running", e.node, at


def _failed(pod: PodViewRecord, e: ev.PodFailed, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.exit_code = e.exit_code
    pod.finish("Failed", at, e.reason or f"exit code {e.exit_code}")


def _succeeded(pod: PodViewRecord, e: ev.PodSucceeded, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.exit_code = 0
    pod.finish("Succeeded", at)


def _restarted(pod: PodViewRecord, e: ev.PodRestarted, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.reason = f"restarted {e.restart_count} time(s), last exit {e.exit_code}"


def _unknown(pod: PodViewRecord, e: ev.PodUnknown, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.phase, pod.reason = "Unknown", e.reason


def _deletion_requested(pod: PodViewRecord, e: ev.PodDeletionRequested, at: int) -> None:
    if pod.phase not in FINISHED:
        pod.reason = f"deletion requested: {e.reason}" if e.reason else "deletion requested"


def _evicted(pod: PodViewRecord, e: ev.PodEvicted, at: int) -> None:
    pod.finish("Evicted", at, e.reason or "evicted")


def _deleted(pod: PodViewRecord, e: ev.PodDeleted, at: int) -> None:
    pod.finish("Deleted", at, e.reason)


# ``apply(pod, event, recorded_at)``, by event class: what a pod event does to the pod's PodView row.
_TABLE: FoldTable[PodViewRecord, [int], None] = FoldTable()
_TABLE.on(ev.PodBound, _placed("Bound"))
_TABLE.on(ev.PodPipelined, _placed("Pipelined"))
_TABLE.on(ev.PodBindFailed, _bind_failed)
_TABLE.on(ev.PodStarted, _started)
_TABLE.on(ev.PodSucceeded, _succeeded)
_TABLE.on(ev.PodFailed, _failed)
_TABLE.on(ev.PodRestarted, _restarted)
_TABLE.on(ev.PodEvicted, _evicted)
_TABLE.on(ev.PodUnknown, _unknown)
_TABLE.on(ev.PodDeletionRequested, _deletion_requested)
_TABLE.on(ev.PodDeleted, _deleted)
APPLY = _TABLE.folds
