"""The job state machine: what each phase does with an action.

Where it sits: the heart of the job controller (``handlers.job``). A trigger
becomes a ``Request`` (an action, after policies); ``execute`` runs it in the
job's current phase, the way Volcano's controller does in
``pkg/controllers/job/state``:

* Pending and Running run restarts (RestartJob/RestartTask/RestartPod ->
  Restarting), soft kills (AbortJob/TerminateJob/CompleteJob -> Aborting/
  Terminating/Completing, keeping succeeded and failed pods) and otherwise
  sync: request missing pods, remove scaled-away ones, move on pod counts.
* Restarting fails the job once ``retryCount`` reaches ``maxRetry`` and goes
  back to Pending once enough killed pods are gone.
* Aborting/Aborted resume (ResumeJob -> Restarting); Aborting, Completing and
  Terminating settle into Aborted/Completed/Terminated once nothing is left
  pending, running or terminating.

A phase change is followed by a sync in the new phase within the same batch,
so Restarting -> Pending also requests the replacement pods at once.
"""

from __future__ import annotations

from handlers.job.draft import SYNC, Draft, Request
from handlers.job.pods import pod_key, pod_request
from handlers.job.timers import arm_ttl
from projections.job_records import (
    ABORTED,
    ABORTING,
    COMPLETED,
    COMPLETING,
    FAILED,
    FINAL_PHASES,
    LIVE_PHASES,
    PENDING,
    POD_SUCCEEDED,
    RESTARTING,
    RUNNING,
    TERMINATED,
    TERMINATING,
    JobPodRecord,
    task_min_available,
)
from schemas.events import JobUpdateRequested, PodDeletionRequested
from schemas.resources import TaskSpec

RESTART_ACTIONS = ("RestartJob", "RestartTask", "RestartPod")
SOFT_KILLS = {"AbortJob": ABORTING, "TerminateJob": TERMINATING, "CompleteJob": COMPLETING}
SETTLES = {ABORTING: ABORTED, COMPLETING: COMPLETED, TERMINATING: TERMINATED}
_MAX_STEPS = 8


def execute(d: Draft, req: Request) -> None:
    """Run ``req`` in the job's phase, then sync through any phase it moved to."""
    start = before = d.job.phase
    _step(d, req)
    for _ in range(_MAX_STEPS):
        if d.job.phase == before:
            break
        before = d.job.phase
        _step(d, SYNC)
    if d.job.phase in FINAL_PHASES and start not in FINAL_PHASES:
        _on_final(d)


def _step(d: Draft, req: Request) -> None:
    phase = d.job.phase
    if phase in LIVE_PHASES:
        if req.action in RESTART_ACTIONS:
            _restart(d, req)
        elif req.action in SOFT_KILLS:
            _soft_kill(d, SOFT_KILLS[req.action], req)
        else:
            _sync(d, req)
    elif phase == RESTARTING:
        _restarting(d)
    elif phase in (ABORTING, ABORTED) and req.action == "ResumeJob":
        _resume(d, req)
    elif phase in SETTLES:
        counts = d.job.counts()
        if counts.pending + counts.running + counts.terminating == 0:
            d.set_phase(SETTLES[phase], reason=SETTLES[phase],
                        message="no pod is left pending, running or terminating", action=d.job.phase_action)


# --- killing ------------------------------------------------------------------------


def delete_pods(d: Draft, pods: list[JobPodRecord], reason: str) -> None:
    for pod in pods:
        if not pod.terminating:
            d.emit(PodDeletionRequested(pod=pod.key, job=d.job.key, reason=reason))


def _soft_targets(d: Draft) -> list[JobPodRecord]:
    """Pods a soft kill deletes: everything that has not finished."""
    return [p for p in d.job.pods.values() if not p.terminating and not p.finished]


def _soft_kill(d: Draft, target: str, req: Request) -> None:
    d.set_phase(target, reason=req.reason or req.action, message=req.message, action=req.action, version=1)
    delete_pods(d, _soft_targets(d), req.action)


def _restart(d: Draft, req: Request) -> None:
    job = d.job
    if req.action == "RestartJob":
        victims = [p for p in job.pods.values() if not p.terminating]
        task = ""
    elif req.action == "RestartTask":
        victims = [p for p in job.pods.values() if p.task == req.task and not p.terminating]
        task = req.task
    else:
        pod = job.pods.get(req.pod)
        victims = [pod] if pod is not None and not pod.terminating else []
        task = req.task
    d.set_phase(
        RESTARTING,
        reason=req.reason or req.action,
        message=req.message,
        action=req.action,
        task=task,
        retry=1,
        version=1 if req.action == "RestartJob" else 0,
    )
    delete_pods(d, victims, req.action)


def _restarting(d: Draft) -> None:
    job = d.job
    spec = job.manifest.spec
    if job.retry_count >= spec.max_retry:
        d.set_phase(FAILED, reason="MaxRetryExceeded",
                    message=f"retried {job.retry_count} times, maxRetry is {spec.max_retry}")
        return
    task = job.task(job.phase_task) if job.phase_task else None
    if task is not None and task.max_retry > 0 and job.task_retries.get(task.name, 0) >= task.max_retry:
        retried = job.task_retries[task.name]
        d.set_phase(FAILED, reason="MaxRetryExceeded",
                    message=f"task {task.name} retried {retried} times, maxRetry is {task.max_retry}")
        return
    if job.total_replicas() - job.counts().terminating >= spec.min_available:
        d.set_phase(PENDING, reason="Restarted", message="enough pods are gone to start again")


def _resume(d: Draft, req: Request) -> None:
    d.set_phase(RESTARTING, reason=req.reason or "Resumed", message=req.message, action="ResumeJob",
                retry=1, version=1)
    delete_pods(d, _soft_targets(d), "ResumeJob")


# --- syncing ------------------------------------------------------------------------


def released(d: Draft, task: TaskSpec) -> bool:
    """Whether a task's ``dependsOn`` is met: enough pods of the tasks it names are
    Ready or Succeeded (any one of them with ``iteration: any``, all otherwise)."""
    dep = task.depends_on
    if dep is None or not dep.name:
        return True
    met = []
    for name in dep.name:
        other = d.job.task(name)
        if other is None:
            met.append(True)
            continue
        done = sum(
            1 for p in d.job.pods_of(name) if not p.terminating and (p.ready or p.phase == POD_SUCCEEDED)
        )
        met.append(done >= task_min_available(other))
    return any(met) if dep.iteration == "any" else all(met)


def _reconcile_pods(d: Draft) -> None:
    job = d.job
    wanted = {t.name: t.replicas for t in job.manifest.spec.tasks}
    if not isinstance(d.trigger.payload, JobUpdateRequested) and all(
        job.task_pod_count(task) == replicas for task, replicas in wanted.items()
    ):
        return  # every index is there and nothing beyond: no need to look at each pod
    present = dict.fromkeys(wanted, 0)
    extra = []
    for pod in job.pods.values():
        if pod.index < wanted.get(pod.task, 0):
            present[pod.task] += 1
        elif not pod.terminating:
            extra.append(pod)
    delete_pods(d, extra, "ScaledDown")
    if not job.enqueued:
        return  # delayed pod creation: no pod before the queue admits the PodGroup
    for task in job.manifest.spec.tasks:
        if present[task.name] >= task.replicas or not released(d, task):
            continue
        for index in range(task.replicas):
            if pod_key(job, task.name, index) in job.pods:
                continue
            request = pod_request(job, task, index, d.state)
            d.emit(request)
            d.new_pods.append(request.pod)


def _sync(d: Draft, req: Request) -> None:
    _reconcile_pods(d)
    job = d.job
    spec = job.manifest.spec
    c = job.counts()
    if job.phase == PENDING:
        started = c.running + c.succeeded + c.failed
        if started >= spec.min_available:
            d.set_phase(RUNNING, reason="MinAvailableReached",
                        message=f"{started} pods started, minAvailable is {spec.min_available}")
        return
    replicas = job.total_replicas()
    if replicas == 0:
        return
    if spec.min_success is not None and c.succeeded >= spec.min_success:
        d.set_phase(COMPLETED, reason="MinSuccessReached",
                    message=f"{c.succeeded} pods succeeded, minSuccess is {spec.min_success}")
    elif c.succeeded + c.failed == replicas:
        phase, reason, message = _finished(d, c.succeeded)
        d.set_phase(phase, reason=reason, message=message)
    elif c.pending > replicas - spec.min_available:
        d.set_phase(PENDING, reason="NotEnoughPodsRunning",
                    message=f"{c.pending} pods pending, more than replicas - minAvailable "
                            f"({replicas - spec.min_available})")


def _finished(d: Draft, succeeded: int) -> tuple[str, str, str]:
    """Completed or Failed, once every replica has finished."""
    job = d.job
    spec = job.manifest.spec
    if spec.min_available >= sum(t.min_available or 0 for t in spec.tasks):
        for task in spec.tasks:
            if task.min_available is None:
                continue
            ok = job.counts(task.name).succeeded
            if ok < task.min_available:
                message = f"task {task.name}: {ok} succeeded, minAvailable {task.min_available}"
                return FAILED, "TaskMinAvailableNotMet", message
    if spec.min_success is not None and succeeded < spec.min_success:
        return FAILED, "MinSuccessNotMet", f"{succeeded} pods succeeded, minSuccess is {spec.min_success}"
    if succeeded >= spec.min_available:
        return COMPLETED, "Completed", f"{succeeded} pods succeeded, minAvailable is {spec.min_available}"
    return FAILED, "MinAvailableNotMet", f"only {succeeded} pods succeeded, minAvailable is {spec.min_available}"


def _on_final(d: Draft) -> None:
    """A finished job keeps no pod running, and arms its TTL."""
    delete_pods(d, _soft_targets(d), f"Job{d.job.phase}")
    arm_ttl(d)
