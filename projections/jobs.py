"""The jobs projection: folds the log into the state the job controller decides on.

Where it sits: between the log and the job lifecycle handler
(``handlers.job``), and behind ``job_status`` (the Volcano ``JobStatus`` of a
job at any position). It folds facts only: the controller's own answers to
requests (``JobCreated``, ``JobUpdated``, ``JobCommandAccepted``, phase
changes, pod requests and deletions, timers), the scheduler's decisions
(``PodGroupEnqueued``, ``PodGroupPhaseChanged``, ``PodBound``), pod
observations, timer firings and priority classes. Requests
(``JobSubmitRequested``, ...) and refusals change nothing here: the
controller decides on them. One small function per event type; events about
pods or jobs it does not know are ignored and counted in
``JobsState.ignored``.
"""

from __future__ import annotations

from projections.dispatch import FoldTable
from projections.job_apply import (
    DECISIONS,
    OBSERVATIONS,
    JobDecision,
    PodObservation,
    apply_decision,
    apply_pod_event,
)
from projections.job_records import JobRecord, JobsState
from projections.job_status import job_status
from schemas.envelope import Envelope
from schemas.events import (
    ConfigMapDeletionRequested,
    ConfigMapRequested,
    JobCommandAccepted,
    JobCreated,
    JobPhaseChanged,
    JobRemoved,
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
    PodGroupEnqueued,
    PodGroupPhaseChanged,
    PodReady,
    PodRequested,
    PodRestarted,
    PodStarted,
    PodSucceeded,
    PodUnknown,
    PriorityClassAdded,
    PriorityClassRemoved,
    SecretDeletionRequested,
    SecretRequested,
    ServiceDeletionRequested,
    ServiceRequested,
    TimerCancelled,
    TimerFired,
    TimerScheduled,
)
from schemas.events.base import Event
from schemas.resources import Command, Job, key_of

HANDLER = "job-controller"

__all__ = ["HANDLER", "JobsState", "command_id", "fold", "initial_state", "job_status", "new_record", "owner_of"]


def initial_state() -> JobsState:
    return JobsState()


def command_id(command: Command) -> str:
    """A Command runs at most once; this is what identifies it."""
    return command.metadata.uid or key_of(command.metadata)


def owner_of(state: JobsState, event: Event) -> str | None:
    """The key of the job an event concerns, if the projection knows it."""
    if hasattr(event, "podgroup") and not hasattr(event, "manifest"):
        return state.podgroup_owner.get(event.podgroup)
    if hasattr(event, "pod") and not isinstance(event, PodRequested):
        return state.pod_owner.get(event.pod)
    if isinstance(event, TimerFired):
        return state.timer_owner.get(event.timer)
    return getattr(event, "job", None) or getattr(event, "owner", None)


def fold(state: JobsState, env: Envelope) -> JobsState:
    state.now = max(state.now, env.recorded_at)
    cause = env.causation
    if cause is not None and cause.handler == HANDLER:
        mark = (cause.position, cause.index)
        if mark <= state.last_answer:
            state.ignored += 1
            return state
        state.last_answer = mark
    fn = _FOLDS.get(type(env.payload))
    if fn is not None:
        fn(state, env.payload, env)
    return state


# --- the controller's answers to requests ------------------------------------------


def new_record(key: str, manifest: Job, env: Envelope) -> JobRecord:
    """The record of a job the controller created in answer to the request ``env`` caused."""
    trigger = env.causation.position if env.causation is not None else env.position
    return JobRecord(key=key, manifest=manifest, submitted_position=trigger, submitted_at=env.recorded_at)


def _created(state: JobsState, ev: JobCreated, env: Envelope) -> None:
    if ev.job in state.jobs:
        state.ignored += 1
        return
    state.jobs[ev.job] = new_record(ev.job, ev.manifest, env)


def _priority_added(state: JobsState, ev: PriorityClassAdded, _: Envelope) -> None:
    state.priority_classes[ev.name] = ev.value
    if ev.global_default:
        state.global_default_priority = ev.value


def _priority_removed(state: JobsState, ev: PriorityClassRemoved, _: Envelope) -> None:
    state.priority_classes.pop(ev.name, None)


# --- the scheduler's decisions and the cluster's observations ---------------------------


def _enqueued(state: JobsState, ev: PodGroupEnqueued, _: Envelope) -> None:
    rec = _job_of(state, ev)
    if rec is not None:
        rec.enqueued = True


def _podgroup_phase(state: JobsState, ev: PodGroupPhaseChanged, _: Envelope) -> None:
    rec = _job_of(state, ev)
    if rec is None:
        return
    if ev.phase == "Pending":
        rec.enqueued = False
    elif ev.phase in ("Inqueue", "Running"):
        rec.enqueued = True


def _pod_event(state: JobsState, ev: PodObservation, env: Envelope) -> None:
    rec = _job_of(state, ev)
    pod = apply_pod_event(rec, ev, env.recorded_at) if rec is not None else None
    if rec is None or pod is None:
        state.ignored += 1
        return
    if isinstance(ev, PodDeleted):
        state.pod_owner.pop(ev.pod, None)
        rec.last_deleted = (env.position, pod)
        state.deleted_owner = (env.position, rec.key)


def _timer_fired(state: JobsState, ev: TimerFired, env: Envelope) -> None:
    rec = _job_of(state, ev)
    timer = rec.timers.get(ev.timer) if rec is not None else None
    if timer is None or timer.fired_position >= 0:
        state.ignored += 1
        return
    timer.fired_position = env.position


# --- the controller's own decisions ------------------------------------------------


def _decision(state: JobsState, ev: JobDecision, env: Envelope) -> None:
    rec = state.jobs.get(ev.job)
    if rec is None:
        state.ignored += 1
        return
    trigger = env.causation.position if env.causation is not None else env.position
    apply_decision(rec, ev, env.recorded_at, trigger)
    if isinstance(ev, PodRequested):
        state.pod_owner[ev.pod] = rec.key
    elif isinstance(ev, PodGroupCreated):
        state.podgroup_owner[ev.podgroup] = rec.key
    elif isinstance(ev, TimerScheduled):
        state.timer_owner[ev.timer] = rec.key


def _timer_decision(state: JobsState, ev: TimerScheduled | TimerCancelled, env: Envelope) -> None:
    rec = state.jobs.get(ev.owner)
    if rec is None:
        return
    apply_decision(rec, ev, env.recorded_at, env.position)
    if isinstance(ev, TimerScheduled):
        state.timer_owner[ev.timer] = rec.key
    else:
        state.timer_owner.pop(ev.timer, None)


def _removed(state: JobsState, ev: JobRemoved, _: Envelope) -> None:
    rec = state.jobs.pop(ev.job, None)
    if rec is None:
        return
    for key in rec.pods:
        state.pod_owner.pop(key, None)
    for timer in rec.timers:
        state.timer_owner.pop(timer, None)
    if rec.podgroup:
        state.podgroup_owner.pop(rec.podgroup, None)


def _job_of(state: JobsState, event: Event) -> JobRecord | None:
    key = owner_of(state, event)
    return state.jobs.get(key) if key else None


_TABLE: FoldTable[JobsState, [Envelope], None] = FoldTable()
_TABLE.on(JobCreated, _created)
_TABLE.on(JobRemoved, _removed)
_TABLE.on(PriorityClassAdded, _priority_added)
_TABLE.on(PriorityClassRemoved, _priority_removed)
_TABLE.on(PodGroupEnqueued, _enqueued)
_TABLE.on(PodGroupPhaseChanged, _podgroup_phase)
_TABLE.on(TimerFired, _timer_fired)
_TABLE.on(PodDeleted, _pod_event)
# The pod observations ``apply_pod_event`` folds (``PodObservation``).
_TABLE.on(PodCreated, _pod_event)
_TABLE.on(PodStarted, _pod_event)
_TABLE.on(PodReady, _pod_event)
_TABLE.on(PodSucceeded, _pod_event)
_TABLE.on(PodFailed, _pod_event)
_TABLE.on(PodRestarted, _pod_event)
_TABLE.on(PodEvicted, _pod_event)
_TABLE.on(PodUnknown, _pod_event)
_TABLE.on(PodBound, _pod_event)
_TABLE.on(PodEvictionRequested, _pod_event)
# The controller's own decisions, folded by ``apply_decision`` (``JobDecision``, and its timers').
_TABLE.on(JobUpdated, _decision)
_TABLE.on(JobCommandAccepted, _decision)
_TABLE.on(JobPhaseChanged, _decision)
_TABLE.on(PodGroupCreated, _decision)
_TABLE.on(PodGroupDeleted, _decision)
_TABLE.on(PodRequested, _decision)
_TABLE.on(PodDeletionRequested, _decision)
_TABLE.on(ServiceRequested, _decision)
_TABLE.on(ConfigMapRequested, _decision)
_TABLE.on(SecretRequested, _decision)
_TABLE.on(ServiceDeletionRequested, _decision)
_TABLE.on(ConfigMapDeletionRequested, _decision)
_TABLE.on(SecretDeletionRequested, _decision)
_TABLE.on(TimerScheduled, _timer_decision)
_TABLE.on(TimerCancelled, _timer_decision)
if not OBSERVATIONS.keys() | DECISIONS.keys() <= _TABLE.folds.keys():
    raise ValueError("the jobs projection does not fold every event apply_pod_event and apply_decision fold")
_FOLDS = _TABLE.folds
