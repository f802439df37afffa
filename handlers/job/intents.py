"""User requests about a job: submission, commands, updates, deletion; TTL expiry.

Where it sits: the job controller (``handlers.job.handler``) routes each
request here and answers it with facts or a refusal; a refusal changes
nothing. A submission creates the job (``JobCreated``) unless a live job has
the key (``JobSubmitRefused``). Commands (AbortJob, ResumeJob, RestartJob,
TerminateJob, CompleteJob) run at most once each (``JobCommandAccepted``) and
are refused with a reason (``JobCommandRefused``) when they cannot apply. An
update may change only minAvailable, task replicas and priorityClassName
(``JobUpdated``); anything else is refused (``JobUpdateRefused``) and the job
is left as it was.
"""

from __future__ import annotations

from handlers.job.draft import Draft, Request
from handlers.job.matching import JOB_UPDATED
from handlers.job.plugins import active, job_resources, svc_configmap
from handlers.job.pods import podgroup
from handlers.job.policies import apply_policies
from handlers.job.states import delete_pods, execute
from handlers.job.timers import cancel_all, holds
from projections.job_records import ABORTED, ABORTING, FINAL_PHASES, LIVE_PHASES, PENDING
from projections.job_update import update_problems
from projections.jobs import command_id
from schemas.admission_rules import JOB_ACTIONS
from schemas.events import (
    ConfigMapDeletionRequested,
    JobCommandAccepted,
    JobCommandRefused,
    JobCommandRequested,
    JobCreated,
    JobDeleteRequested,
    JobRemoved,
    JobSubmitRequested,
    JobUpdated,
    JobUpdateRefused,
    JobUpdateRequested,
    PodGroupDeleted,
    SecretDeletionRequested,
    ServiceDeletionRequested,
    TimerFired,
)
from schemas.resources import Job


def on_submitted(d: Draft, ev: JobSubmitRequested) -> None:
    """``d.job`` is the new job's record (the handler refused a key already taken)."""
    d.emit(JobCreated(job=d.job.key, manifest=d.job.manifest))
    d.set_phase(PENDING, reason="Submitted", message="waiting for the queue to admit the PodGroup")
    d.emit(podgroup(d.job, d.state))
    for resource in job_resources(d.job):
        d.emit(resource)
    execute(d, Request())


def refusal(job: str, ev: JobCommandRequested, reason: str) -> JobCommandRefused:
    return JobCommandRefused(job=job, command=command_id(ev.command), action=ev.command.action, reason=reason)


def command_problem(d: Draft, ev: JobCommandRequested) -> str:
    """Why the command cannot run, or "" when it can."""
    job, cmd = d.job, ev.command
    cid = command_id(cmd)
    first = job.commands.get(cid)
    if first is not None:
        return f"command {cid} already ran (requested at position {first}); a command runs at most once"
    namespace = cmd.metadata.namespace or "default"
    if namespace != job.namespace:
        return (
            f"command {cid} is in namespace {namespace} but job {job.key} is in namespace "
            f"{job.namespace}; a command acts only on jobs in its own namespace"
        )
    return action_problem(cmd.action, job.key, job.phase)


def action_problem(action: str, key: str, phase: str) -> str:
    """Why a command with ``action`` cannot run on job ``key`` in ``phase``, or ""."""
    if action not in JOB_ACTIONS:
        return f"unknown action {action!r}; expected one of {', '.join(JOB_ACTIONS)}"
    if phase in FINAL_PHASES:
        return f"job {key} is {phase}; a finished job takes no commands"
    if action == "ResumeJob" and phase not in (ABORTING, ABORTED):
        return f"job {key} is {phase}; only an aborted (suspended) job can be resumed"
    if action != "ResumeJob" and phase not in LIVE_PHASES:
        return f"job {key} is {phase}; {action} applies to a Pending or Running job"
    return ""


def on_command(d: Draft, ev: JobCommandRequested) -> None:
    problem = command_problem(d, ev)
    if problem:
        d.emit(refusal(d.job.key, ev, problem))
        return
    cmd = ev.command
    d.emit(JobCommandAccepted(job=d.job.key, command=command_id(cmd), action=cmd.action))
    message = f"{cmd.action} by command {command_id(cmd)}" + (f": {cmd.message}" if cmd.message else "")
    execute(d, Request(action=cmd.action, reason=cmd.reason or "CommandIssued", message=message))


def update_refusal(phase: str, key: str, current: Job, wanted: Job) -> str:
    """Why an update of the job cannot apply, or "" when it can (unchanged included)."""
    if phase in FINAL_PHASES:
        return f"job {key} is {phase}; a finished job cannot be updated"
    return "; ".join(update_problems(current, wanted))


def on_updated(d: Draft, ev: JobUpdateRequested) -> None:
    job = d.job
    problem = update_refusal(job.phase, job.key, job.manifest, ev.manifest)
    if problem:
        d.emit(JobUpdateRefused(job=job.key, reason=problem))
        return
    if ev.manifest == job.manifest:
        return  # unchanged: nothing to do, nothing to record
    d.emit(JobUpdated(job=job.key, manifest=ev.manifest))
    d.emit(podgroup(job, d.state, update=True))
    old = job.previous_manifest
    if "svc" in active(job) and old is not None and [t.replicas for t in old.spec.tasks] != [
        t.replicas for t in job.manifest.spec.tasks
    ]:
        d.emit(svc_configmap(job))
    apply_policies(d, Request(event=JOB_UPDATED, reason=JOB_UPDATED, message=f"job {job.key} was updated"))


def remove(d: Draft, reason: str) -> None:
    """Delete everything the job owns, then the job itself."""
    job = d.job
    delete_pods(d, list(job.pods.values()), reason)
    cancel_all(d)
    if job.podgroup_created:
        d.emit(PodGroupDeleted(podgroup=job.podgroup, job=job.key))
    gone = {
        "Service": ServiceDeletionRequested,
        "ConfigMap": ConfigMapDeletionRequested,
        "Secret": SecretDeletionRequested,
    }
    for resource in list(job.resources):
        kind, name = resource.split("/", 1)
        d.emit(gone[kind](name=name, job=job.key))
    d.emit(JobRemoved(job=job.key, reason=reason))


def on_delete(d: Draft, ev: JobDeleteRequested) -> None:
    remove(d, "Deleted")


def on_timer(d: Draft, ev: TimerFired) -> None:
    timer = d.job.timers.get(ev.timer)
    if timer is None or timer.fired_position != d.trigger.position:
        return
    if timer.purpose == "ttl":
        if d.job.phase in FINAL_PHASES:
            remove(d, "TTLExpired")
        return
    pod = d.job.pods.get(timer.pod)
    if pod is None or not holds(d, timer):
        return
    execute(
        d,
        Request(
            action=timer.action,
            event=timer.event,
            task=pod.task,
            pod=pod.key,
            reason=timer.event,
            message=f"pod {pod.key} stayed {timer.event} past its timeout; policy -> {timer.action}",
        ),
    )
