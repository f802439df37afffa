"""The job controller's timers: policy timeouts and ttlSecondsAfterFinished.

Where it sits: the controller never reads a clock. A policy with a
``timeout`` (``PodPending`` for 10m -> RestartTask) is decided as
``TimerScheduled``; the runtime appends ``TimerFired`` when the time comes and
the controller acts then, if the pod is still in that state. A timer whose
condition no longer holds (the pod started, was deleted, the job left
Pending/Running) is cancelled with ``TimerCancelled`` in the same batch that
changed it. A finished job with ``ttlSecondsAfterFinished`` arms a TTL timer
that removes it.
"""

from __future__ import annotations

from handlers.job.draft import Draft, Request
from handlers.job.matching import (
    POD_EVICTED,
    POD_FAILED,
    POD_PENDING,
    TASK_COMPLETED,
    UNKNOWN,
    match_policy,
)
from projections.job_apply import policy_timer_name, ttl_timer_name
from projections.job_records import LIVE_PHASES, POD_SUCCEEDED, POD_UNKNOWN, TimerRecord
from projections.job_records import POD_FAILED as PHASE_FAILED
from projections.job_records import POD_PENDING as PHASE_PENDING
from schemas.events import TimerCancelled, TimerScheduled
from schemas.quantity import duration_ms
from schemas.resources import LifecyclePolicy


def arm_ttl(d: Draft) -> None:
    ttl = d.job.manifest.spec.ttl_seconds_after_finished
    if ttl is None:
        return
    d.emit(
        TimerScheduled(
            timer=ttl_timer_name(d.job.key, d.trigger.position),
            fire_at=d.now + ttl * 1000,
            owner=d.job.key,
            purpose=f"ttlSecondsAfterFinished={ttl}: remove {d.job.key}",
        )
    )


def arm_policy(d: Draft, req: Request, policy: LifecyclePolicy) -> None:
    pod = d.job.pods.get(req.pod)
    if pod is None or policy.timeout is None:
        return
    d.emit(
        TimerScheduled(
            timer=policy_timer_name(d.job.key, req.event, pod.name, pod.incarnation, policy.action),
            fire_at=d.now + duration_ms(policy.timeout),
            owner=d.job.key,
            purpose=f"{req.event} of {pod.key} for {policy.timeout}: {policy.action}",
        )
    )


def holds(d: Draft, timer: TimerRecord) -> bool:
    """Whether the state a policy timer waits on still holds."""
    if timer.purpose != "policy":
        return True
    if d.job.phase not in LIVE_PHASES:
        return False
    pod = d.job.pods.get(timer.pod)
    if pod is None or pod.incarnation != timer.incarnation or pod.terminating:
        return False
    return {
        POD_PENDING: pod.phase == PHASE_PENDING,
        POD_FAILED: pod.phase == PHASE_FAILED,
        UNKNOWN: pod.phase == POD_UNKNOWN,
        POD_EVICTED: pod.evicted,
        TASK_COMPLETED: pod.phase == POD_SUCCEEDED,
    }.get(timer.event, True)


def settle_timers(d: Draft) -> None:
    """Cancel timers that no longer apply; arm PodPending timers for new pods."""
    for timer in list(d.job.timers.values()):
        if timer.fired_position < 0 and not holds(d, timer):
            d.emit(TimerCancelled(timer=timer.timer, owner=d.job.key))
    if d.job.phase not in LIVE_PHASES:
        return
    for key in d.new_pods:
        pod = d.job.pods.get(key)
        if pod is None or pod.terminating or pod.phase != PHASE_PENDING:
            continue
        policy = match_policy(d.job, pod.task, POD_PENDING, timed_only=True)
        if policy is not None:
            arm_policy(d, Request(event=POD_PENDING, task=pod.task, pod=key), policy)


def cancel_all(d: Draft) -> None:
    for timer in list(d.job.timers.values()):
        if timer.fired_position < 0:
            d.emit(TimerCancelled(timer=timer.timer, owner=d.job.key))
