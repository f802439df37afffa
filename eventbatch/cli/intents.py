"""Intents from the command line: submit jobs, create queues, issue commands.

Where it sits: the edge where user input becomes events. Every manifest is
loaded and validated by ``schemas.loaders`` first; an invalid file is
rejected with the field path and the reason, and nothing is appended. All the
events of one invocation are appended as one atomic batch.
"""

from __future__ import annotations

import uuid

from eventbatch.cli import CliError, views
from eventbatch.clock import SystemClock
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from schemas.events import (
    JobCommandRequested,
    JobDeleteRequested,
    JobSubmitRequested,
    QueueCommandRequested,
    QueueCreateRequested,
    QueueDeleteRequested,
)
from schemas.events.base import Event
from schemas.loaders import ManifestError, load_file
from schemas.resources import Command, Job, ObjectMeta, ObjectReference, Queue, key_of

JOB_ACTIONS = {
    "suspend": "AbortJob",
    "resume": "ResumeJob",
    "restart": "RestartJob",
    "terminate": "TerminateJob",
    "complete": "CompleteJob",
}


def register(commands) -> None:
    apply = commands.add_parser("apply", help="submit every Job, Queue and Command in a file")
    apply.add_argument("-f", "--filename", required=True, help="YAML or JSON manifest file")
    apply.set_defaults(run=_apply)

    job = commands.add_parser("job", help="submit and act on jobs")
    job_sub = job.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    submit = job_sub.add_parser("submit", help="submit a Volcano Job manifest")
    submit.add_argument("-f", "--filename", required=True)
    submit.set_defaults(run=_apply, only="Job")
    for verb, action in JOB_ACTIONS.items():
        act = job_sub.add_parser(verb, help=f"issue {action} to a job")
        act.add_argument("name", help="job name")
        act.add_argument("-n", "--namespace", default="default")
        act.set_defaults(run=_job_command, action=action)
    delete = job_sub.add_parser("delete", help="delete a job and everything it owns")
    delete.add_argument("name", help="job name")
    delete.add_argument("-n", "--namespace", default="default")
    delete.set_defaults(run=_job_delete)
    views.register_job(job_sub)

    queue = commands.add_parser("queue", help="create and operate queues")
    queue_sub = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    create = queue_sub.add_parser("create", help="create a queue from a Queue manifest")
    create.add_argument("-f", "--filename", required=True)
    create.set_defaults(run=_apply, only="Queue")
    operate = queue_sub.add_parser("operate", help="open or close a queue")
    operate.add_argument("name")
    operate.add_argument("--action", "-a", choices=["open", "close"], required=True)
    operate.set_defaults(run=_queue_operate)
    remove = queue_sub.add_parser("delete", help="delete a queue (it must be Closed and empty)")
    remove.add_argument("name")
    remove.set_defaults(run=_queue_delete)
    views.register_queue(queue_sub)


def intent_for(manifest: Job | Queue | Command) -> Event:
    """The event a manifest becomes at the edge."""
    if isinstance(manifest, Job):
        return JobSubmitRequested(job=key_of(manifest.metadata), manifest=manifest)
    if isinstance(manifest, Queue):
        return QueueCreateRequested(queue=manifest.metadata.name, manifest=manifest)
    if isinstance(manifest, Command):
        target = manifest.target_object
        if target is None:
            raise CliError(f"Command {manifest.metadata.name}: targetObject: required")
        if target.kind == "Queue":
            action = {"OpenQueue": "open", "CloseQueue": "close"}.get(manifest.action, "")
            return QueueCommandRequested(queue=target.name, action=action)
        namespace = target.namespace or manifest.metadata.namespace or "default"
        return JobCommandRequested(job=f"{namespace}/{target.name}", command=manifest)
    raise CliError(f"{type(manifest).__name__} manifests cannot be applied")


async def append_intents(settings, events: list[Event]) -> list[int]:
    now = SystemClock().now()
    async with open_log(settings.log_url) as log:
        return await log.append([Envelope.wrap(e, recorded_at=now) for e in events])


async def _apply(args, settings) -> int:
    try:
        manifests = load_file(args.filename)
    except ManifestError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{args.filename}: {exc.strerror}") from None
    only = getattr(args, "only", None)
    if only is not None:
        wrong = [m for m in manifests if type(m).__name__ != only]
        if wrong:
            raise CliError(f"{args.filename}: expected only {only} manifests, found {type(wrong[0]).__name__}")
    if not manifests:
        raise CliError(f"{args.filename}: no manifests found")
    events = [intent_for(m) for m in manifests]
    positions = await append_intents(settings, events)
    for event, position in zip(events, positions, strict=True):
        print(f"{type(event).__name__} {event.key()} at #{position}")
    return 0


async def _job_command(args, settings) -> int:
    name = f"{args.name}-{args.action.lower()}-{uuid.uuid4().hex[:8]}"
    command = Command(
        metadata=ObjectMeta(name=name, namespace=args.namespace),
        action=args.action,
        target_object=ObjectReference(
            api_version="batch.volcano.sh/v1alpha1", kind="Job", name=args.name, namespace=args.namespace
        ),
        reason="issued from the command line",
    )
    [position] = await append_intents(settings, [intent_for(command)])
    print(f"{args.action} for {args.namespace}/{args.name} issued at #{position}")
    return 0


async def _queue_operate(args, settings) -> int:
    [position] = await append_intents(settings, [QueueCommandRequested(queue=args.name, action=args.action)])
    print(f"{args.action} for queue {args.name} issued at #{position}")
    return 0


async def _job_delete(args, settings) -> int:
    key = f"{args.namespace}/{args.name}"
    [position] = await append_intents(settings, [JobDeleteRequested(job=key, reason="deleted from the command line")])
    print(f"deletion of {key} requested at #{position}")
    return 0


async def _queue_delete(args, settings) -> int:
    [position] = await append_intents(settings, [QueueDeleteRequested(queue=args.name)])
    print(f"deletion of queue {args.name} requested at #{position} (refused unless it is Closed and empty)")
    return 0
