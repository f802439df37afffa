"""How one event changes one job record: pod observations and the controller's decisions.

Where it sits: called by the fold (``projections.jobs``) for events read
from the log, and by the job controller while it builds a batch, on its
private copy of the record, so that each decision it takes sees the ones
before it. One function per event type, looked up in a table. Decisions
replace pod and timer records instead of changing them, because a private
copy shares those records with the projection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from projections.dispatch import FoldTable
from projections.job_records import (
    FINAL_PHASES,
    POD_FAILED,
    POD_PENDING,
    POD_RUNNING,
    POD_SUCCEEDED,
    POD_UNKNOWN,
    RUNNING,
    JobPodRecord,
    JobRecord,
    TimerRecord,
)
from schemas.events import (
    ConfigMapDeletionRequested,
    ConfigMapRequested,
    JobCommandAccepted,
    JobPhaseChanged,
    JobUpdated,
    PodBound,
    PodCreated,
    PodDeleted,
    PodDeletionRequested,
    PodEvicted,
    PodEvictionRequested,
    PodFailed,
    PodGroupCreated,
    PodGroupDeleted,
    PodReady,
    PodRequested,
    PodRestarted,
    PodStarted,
    PodSucceeded,
    PodUnknown,
    SecretDeletionRequested,
    SecretRequested,
    ServiceDeletionRequested,
    ServiceRequested,
    TimerCancelled,
    TimerScheduled,
)
from schemas.events.base import Event
from schemas.events.pod import PodEvent

TASK_SCOPED_ACTIONS = frozenset({"RestartTask", "RestartPod"})

# A decision's fold: ``(record, event, recorded_at, trigger_position)``; changes ``record`` in place.
_DECISIONS: FoldTable[JobRecord, [int, int], None] = FoldTable()
# An observation's fold: ``(pod, event, recorded_at)``; changes ``pod`` in place.
_OBSERVATIONS: FoldTable[JobPodRecord, [int], None] = FoldTable()

NamedResourceRequest = ServiceRequested | ConfigMapRequested | SecretRequested
NamedResourceDeletion = ServiceDeletionRequested | ConfigMapDeletionRequested | SecretDeletionRequested
# The controller's decisions about one job (``job`` names it); its timers name theirs as ``owner``.
JobDecision = (
    JobUpdated | JobCommandAccepted | JobPhaseChanged | PodGroupCreated | PodGroupDeleted | PodRequested
    | PodDeletionRequested | NamedResourceRequest | NamedResourceDeletion
)


def policy_timer_name(job: str, event: str, pod: str, incarnation: int, action: str) -> str:
    return f"{job}|{event}|{pod}|{incarnation}|{action}"


def ttl_timer_name(job: str, position: int) -> str:
    return f"{job}|ttl|{position}"


def parse_timer(timer: str, fire_at: int) -> TimerRecord:
    parts = timer.split("|")
    if len(parts) == 3 and parts[1] == "ttl":
        return TimerRecord(timer=timer, fire_at=fire_at, purpose="ttl")
    if len(parts) == 5:
        return TimerRecord(
            timer=timer,
            fire_at=fire_at,
            purpose="policy",
            event=parts[1],
            pod=f"{parts[0].split('/', 1)[0]}/{parts[2]}",
            incarnation=int(parts[3]),
            action=parts[4],
        )
    return TimerRecord(timer=timer, fire_at=fire_at, purpose="unknown")


# --- the controller's decisions -------------------------------------------------


def _phase_changed(rec: JobRecord, ev: JobPhaseChanged, at: int, _: int) -> None:
    rec.phase = ev.phase
    rec.reason = ev.reason
    rec.message = ev.message
    rec.transition_at = at
    rec.phase_action = ev.action
    rec.phase_task = ev.task
    rec.retry_count = ev.retry_count
    rec.version = ev.version
    rec.conditions.append((ev.phase, at))
    if ev.phase == "Restarting" and ev.action in TASK_SCOPED_ACTIONS and ev.task:
        rec.task_retries[ev.task] = rec.task_retries.get(ev.task, 0) + 1
    if ev.phase == RUNNING and rec.running_since is None:
        rec.running_since = at
    if ev.phase in FINAL_PHASES:
        rec.finished_at = at


def _podgroup_created(rec: JobRecord, ev: PodGroupCreated, at: int, _: int) -> None:
    rec.podgroup = ev.podgroup
    rec.podgroup_created = True


def _podgroup_deleted(rec: JobRecord, ev: PodGroupDeleted, at: int, _: int) -> None:
    rec.podgroup_created = False
    rec.enqueued = False


def _pod_requested(rec: JobRecord, ev: PodRequested, at: int, trigger: int) -> None:
    rec.put_pod(JobPodRecord(
        key=ev.pod,
        name=ev.manifest.metadata.name,
        task=ev.task,
        index=ev.index,
        version=rec.version,
        incarnation=trigger,
        requests=dict(ev.requests),
        since=at,
    ))


def _pod_deletion_requested(rec: JobRecord, ev: PodDeletionRequested, at: int, _: int) -> None:
    pod = rec.pods.get(ev.pod)
    if pod is not None:
        rec.put_pod(dataclasses.replace(pod, terminating=True))


def _timer_scheduled(rec: JobRecord, ev: TimerScheduled, at: int, _: int) -> None:
    rec.timers[ev.timer] = parse_timer(ev.timer, ev.fire_at)


def _timer_cancelled(rec: JobRecord, ev: TimerCancelled, at: int, _: int) -> None:
    rec.timers.pop(ev.timer, None)


def _resource(kind: str, plugin: str) -> Callable[[JobRecord, NamedResourceRequest, int, int], None]:
    def apply(rec: JobRecord, ev: NamedResourceRequest, at: int, _: int) -> None:
        rec.resources[f"{kind}/{ev.name}"] = plugin

    return apply


def _resource_gone(kind: str) -> Callable[[JobRecord, NamedResourceDeletion, int, int], None]:
    def apply(rec: JobRecord, ev: NamedResourceDeletion, at: int, _: int) -> None:
        rec.resources.pop(f"{kind}/{ev.name}", None)

    return apply


def _updated(rec: JobRecord, ev: JobUpdated, at: int, _: int) -> None:
    rec.previous_manifest = rec.manifest
    rec.manifest = ev.manifest


def _command_accepted(rec: JobRecord, ev: JobCommandAccepted, at: int, trigger: int) -> None:
    rec.commands.setdefault(ev.command, trigger)


_DECISIONS.on(JobUpdated, _updated)
_DECISIONS.on(JobCommandAccepted, _command_accepted)
_DECISIONS.on(JobPhaseChanged, _phase_changed)
_DECISIONS.on(PodGroupCreated, _podgroup_created)
_DECISIONS.on(PodGroupDeleted, _podgroup_deleted)
_DECISIONS.on(PodRequested, _pod_requested)
_DECISIONS.on(PodDeletionRequested, _pod_deletion_requested)
_DECISIONS.on(TimerScheduled, _timer_scheduled)
_DECISIONS.on(TimerCancelled, _timer_cancelled)
_DECISIONS.on(ServiceRequested, _resource("Service", "svc"))
_DECISIONS.on(ConfigMapRequested, _resource("ConfigMap", "svc"))
_DECISIONS.on(SecretRequested, _resource("Secret", "ssh"))
_DECISIONS.on(ServiceDeletionRequested, _resource_gone("Service"))
_DECISIONS.on(ConfigMapDeletionRequested, _resource_gone("ConfigMap"))
_DECISIONS.on(SecretDeletionRequested, _resource_gone("Secret"))
DECISIONS = _DECISIONS.folds


def apply_decision(rec: JobRecord, event: Event, recorded_at: int, trigger: int) -> None:
    fn = DECISIONS.get(type(event))
    if fn is not None:
        fn(rec, event, recorded_at, trigger)


# --- what the cluster reports about pods -----------------------------------------


def _set_phase(pod: JobPodRecord, phase: str, at: int) -> None:
    if pod.phase != phase:
        pod.phase = phase
        pod.since = at


def _created(pod: JobPodRecord, ev: PodCreated, at: int) -> None:
    pod.created = True


def _started(pod: JobPodRecord, ev: PodStarted, at: int) -> None:
    pod.created = True
    pod.node = ev.node
    _set_phase(pod, POD_RUNNING, at)


def _ready(pod: JobPodRecord, ev: PodReady, at: int) -> None:
    pod.ready = True
    if pod.phase == POD_PENDING:
        _set_phase(pod, POD_RUNNING, at)


def _succeeded(pod: JobPodRecord, ev: PodSucceeded, at: int) -> None:
    pod.ready = False
    pod.exit_code = 0
    _set_phase(pod, POD_SUCCEEDED, at)


def _failed(pod: JobPodRecord, ev: PodFailed, at: int) -> None:
    pod.ready = False
    pod.exit_code = ev.exit_code
    _set_phase(pod, POD_FAILED, at)


def _restarted(pod: JobPodRecord, ev: PodRestarted, at: int) -> None:
    pod.ready = False
    pod.restarts = max(pod.restarts, ev.restart_count)
    pod.exit_code = ev.exit_code


def _evicted(pod: JobPodRecord, ev: PodEvicted, at: int) -> None:
    pod.evicted = True


def _unknown(pod: JobPodRecord, ev: PodUnknown, at: int) -> None:
    pod.ready = False
    _set_phase(pod, POD_UNKNOWN, at)


def _bound(pod: JobPodRecord, ev: PodBound, at: int) -> None:
    pod.node = ev.node


def _eviction_requested(pod: JobPodRecord, ev: PodEvictionRequested, at: int) -> None:
    pod.eviction = f"{ev.reason} (for {ev.preemptor})" if ev.preemptor else ev.reason


_OBSERVATIONS.on(PodCreated, _created)
_OBSERVATIONS.on(PodStarted, _started)
_OBSERVATIONS.on(PodReady, _ready)
_OBSERVATIONS.on(PodSucceeded, _succeeded)
_OBSERVATIONS.on(PodFailed, _failed)
_OBSERVATIONS.on(PodRestarted, _restarted)
_OBSERVATIONS.on(PodEvicted, _evicted)
_OBSERVATIONS.on(PodUnknown, _unknown)
_OBSERVATIONS.on(PodBound, _bound)
_OBSERVATIONS.on(PodEvictionRequested, _eviction_requested)
OBSERVATIONS = _OBSERVATIONS.folds
# What the cluster reports about a pod (and PodDeleted), as ``apply_pod_event`` takes it.
PodObservation = PodEvent | PodBound | PodEvictionRequested


def apply_pod_event(rec: JobRecord, event: PodObservation, recorded_at: int) -> JobPodRecord | None:
    """Apply a pod observation; returns the pod record it concerned (if known).

    ``PodDeleted`` removes the record, which frees the pod's name for the next
    incarnation; the removed record is returned so the caller can tell an
    expected deletion from an unexpected one.
    """
    key = event.pod
    pod = rec.pods.get(key)
    if pod is None:
        return None
    if isinstance(event, PodDeleted):
        return rec.drop_pod(key)
    fn = OBSERVATIONS.get(type(event))
    if fn is not None:
        rec.recount(pod, lambda: fn(pod, event, recorded_at))
    return pod


__all__ = [
    "apply_decision",
    "apply_pod_event",
    "parse_timer",
    "policy_timer_name",
    "ttl_timer_name",
]
