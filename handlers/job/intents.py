"""User intents about a job: submission, commands, updates, deletion, TTL expiry.

Where it sits: the job controller (``handlers.job.handler``) routes each
intent here. Commands (AbortJob, ResumeJob, RestartJob, TerminateJob,
CompleteJob) run at most once each and are refused with a reason
(``JobCommandRefused``) when they cannot apply. An update may change only
minAvailable, task replicas and priorityClassName; anything else is refused
(``JobUpdateRefused``) and the job is left as it was.
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
from projections.jobs import command_id
from schemas.envelope import Envelope
from schemas.events import (
    ConfigMapDeletionRequested,
    JobCommandIssued,
    JobCommandRefused,
    JobRemoved,
    JobUpdateRefused,
    PodGroupDeleted,
    SecretDeletionRequested,
    ServiceDeletionRequested,
)

COMMAND_ACTIONS = ("AbortJob", "ResumeJob", "RestartJob", "TerminateJob", "CompleteJob")


def on_submitted(d: Draft, env: Envelope) -> None:
    if d.job.submitted_position != env.position or d.job.phase:
        return  # a second submission of a live job changes nothing
    d.set_phase(PENDING, reason="Submitted", message="waiting for the queue to admit the PodGroup")
    d.emit(podgroup(d.job, d.state))
    for resource in job_resources(d.job):
        d.emit(resource)
    execute(d, Request())


def refusal(job: str, ev: JobCommandIssued, reason: str) -> JobCommandRefused:
    return JobCommandRefused(job=job, command=command_id(ev.command), action=ev.command.action, reason=reason)


def command_problem(d: Draft, ev: JobCommandIssued, position: int) -> str:
    """Why the command cannot run, or "" when it can."""
    job, cmd = d.job, ev.command
    cid = command_id(cmd)
    first = job.commands.get(cid)
    if first is not None and first != position:
        return f"command {cid} was already received at position {first}; a command runs at most once"
    namespaces = {cmd.metadata.namespace or "default"}
    if cmd.target_object is not None and cmd.target_object.namespace:
        namespaces.add(cmd.target_object.namespace)
    if namespaces != {job.namespace}:
        return (
            f"command {cid} is in namespace {sorted(namespaces)[0]} but job {job.key} is in namespace "
            f"{job.namespace}; a command acts only on jobs in its own namespace"
        )
    if cmd.action not in COMMAND_ACTIONS:
        return f"unknown action {cmd.action!r}; expected one of {', '.join(COMMAND_ACTIONS)}"
    if job.phase in FINAL_PHASES:
        return f"job {job.key} is {job.phase}; a finished job takes no commands"
    if cmd.action == "ResumeJob" and job.phase not in (ABORTING, ABORTED):
        return f"job {job.key} is {job.phase}; only an aborted (suspended) job can be resumed"
    if cmd.action != "ResumeJob" and job.phase not in LIVE_PHASES:
        return f"job {job.key} is {job.phase}; {cmd.action} applies to a Pending or Running job"
    return ""


def on_command(d: Draft, env: Envelope) -> None:
    ev: JobCommandIssued = env.payload  # type: ignore[assignment]
    problem = command_problem(d, ev, env.position)
    if problem:
        d.emit(refusal(d.job.key, ev, problem))
        return
    cmd = ev.command
    message = f"{cmd.action} by command {command_id(cmd)}" + (f": {cmd.message}" if cmd.message else "")
    execute(d, Request(action=cmd.action, reason=cmd.reason or "CommandIssued", message=message))


def on_updated(d: Draft, env: Envelope) -> None:
    job = d.job
    if job.last_update_position != env.position:
        return
    if job.last_update_problems:
        d.emit(JobUpdateRefused(job=job.key, reason="; ".join(job.last_update_problems)))
        return
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


def on_delete(d: Draft, env: Envelope) -> None:
    remove(d, "Deleted")


def on_timer(d: Draft, env: Envelope) -> None:
    timer = d.job.timers.get(env.payload.timer)  # type: ignore[attr-defined]
    if timer is None or timer.fired_position != env.position:
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
