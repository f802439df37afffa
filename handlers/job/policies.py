"""From a pod observation to a lifecycle action, through the job's policies.

Where it sits: the job controller calls ``pod_request`` for every pod
observation about one of its pods. It names the policy event Volcano would
raise (``PodFailed`` with the exit code, ``PodEvicted`` — also for a pod
deleted by someone else —, ``Unknown``, ``TaskCompleted`` when a task's
replicas have all succeeded, ``TaskFailed`` when a task's container restarts
reach its maxRetry), finds the policy that answers it and runs its action,
now or, with a ``timeout``, when the timer fires. Events about a pod the
controller is already deleting, or from a pod of an older job version, only
sync: a kill must not trigger a policy.
"""

from __future__ import annotations

from handlers.job.draft import SYNC, Draft, Request
from handlers.job.matching import (
    ANY,
    POD_EVICTED,
    POD_FAILED,
    TASK_COMPLETED,
    TASK_FAILED,
    UNKNOWN,
    events_of,
    match_policy,
)
from handlers.job.states import execute
from handlers.job.timers import arm_policy
from projections.job_records import JobPodRecord
from schemas.events import PodDeleted, PodEvicted, PodFailed, PodRestarted, PodSucceeded, PodUnknown
from schemas.events.pod import PodEvent


def _current(d: Draft, pod: JobPodRecord) -> bool:
    return not pod.terminating and pod.version == d.job.version


def _restart_limit(d: Draft, task: str) -> int:
    spec = d.job.task(task)
    own = spec.max_retry if spec is not None else 0
    return own or d.job.manifest.spec.max_retry


def pod_request(d: Draft, ev: PodEvent) -> Request:
    """The policy event (if any) the pod observation ``ev`` (the draft's trigger) raises."""
    if isinstance(ev, PodDeleted):
        gone = d.job.last_deleted
        pod = gone[1] if gone is not None and gone[0] == d.trigger.position else None
        if pod is None or pod.evicted or pod.finished or not _current(d, pod):
            return SYNC
        why = f"evicted by the scheduler: {pod.eviction}" if pod.eviction else "deleted unexpectedly"
        return Request(event=POD_EVICTED, task=pod.task, pod=pod.key, reason=POD_EVICTED,
                       message=f"pod {pod.key} was {why}")
    pod = d.job.pods.get(ev.pod)
    if pod is None or not _current(d, pod):
        return SYNC
    if isinstance(ev, PodFailed):
        return Request(event=POD_FAILED, task=pod.task, pod=pod.key, exit_code=ev.exit_code, reason=POD_FAILED,
                       message=f"pod {pod.key} failed with exit code {ev.exit_code}")
    if isinstance(ev, PodEvicted):
        why = f": {ev.reason}" if ev.reason else ""
        return Request(event=POD_EVICTED, task=pod.task, pod=pod.key, reason=POD_EVICTED,
                       message=f"pod {pod.key} was evicted{why}")
    if isinstance(ev, PodUnknown):
        return Request(event=UNKNOWN, task=pod.task, pod=pod.key, reason=UNKNOWN,
                       message=f"pod {pod.key} is in an unknown state")
    if isinstance(ev, PodSucceeded):
        spec = d.job.task(pod.task)
        done = d.job.counts(pod.task).succeeded
        if spec is not None and spec.replicas > 0 and done >= spec.replicas:
            return Request(event=TASK_COMPLETED, task=pod.task, pod=pod.key, reason=TASK_COMPLETED,
                           message=f"all {spec.replicas} pods of task {pod.task} succeeded")
        return SYNC
    if isinstance(ev, PodRestarted):
        limit = _restart_limit(d, pod.task)
        restarts = sum(p.restarts for p in d.job.pods_of(pod.task))
        if limit > 0 and restarts >= limit:
            return Request(event=TASK_FAILED, task=pod.task, pod=pod.key, reason=TASK_FAILED,
                           message=f"containers of task {pod.task} restarted {restarts} times, maxRetry is {limit}")
        code = ev.exit_code or None
        return Request(task=pod.task, pod=pod.key, exit_code=code, reason="PodRestarted",
                       message=f"a container of pod {pod.key} restarted with exit code {ev.exit_code}")
    return SYNC


def apply_policies(d: Draft, req: Request) -> None:
    """Run the action the first matching policy names (or sync when none does)."""
    if not req.event and req.exit_code is None:
        execute(d, req)
        return
    policy = match_policy(d.job, req.task, req.event, req.exit_code)
    if policy is None:
        execute(d, Request(task=req.task, pod=req.pod))
        return
    if policy.timeout and req.pod and req.event:
        arm_policy(d, req, policy)
        execute(d, SYNC)
        return
    events = events_of(policy)
    source = req.event if req.event and (req.event in events or ANY in events) else f"exitCode {policy.exit_code}"
    execute(
        d,
        Request(
            action=policy.action,
            event=req.event,
            task=req.task,
            pod=req.pod,
            exit_code=req.exit_code,
            reason=req.reason,
            message=f"{req.message}; policy {source} -> {policy.action}",
        ),
    )
