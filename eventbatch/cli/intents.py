"""Requests from the command line: jobs, queues, commands, other operators' PodGroups and pods.

Where it sits: the edge where user input becomes requests on the log. Every
manifest is loaded and validated by ``schemas.loaders`` first; an invalid
file is rejected with the field path and the reason, and nothing is
appended. Then each request is checked against what the read models know
(``eventbatch.cli.checks``): a request on an object that does not exist, or
one the owning handler is known to refuse, exits 2 with the reason and
appends nothing; ``--force`` appends it anyway, for a log whose read models
lag. ``apply`` of an object that exists is an update under Volcano's rules
(or "unchanged"). All the requests of one invocation are appended as one
atomic batch. The handlers stay the authority: they answer every request
with facts or a refusal.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from eventbatch.cli import CliError, views
from eventbatch.cli.checks import JobKnown, Knowledge, QueueKnown
from eventbatch.clock import SystemClock
from eventbatch.log.factory import open_log
from handlers.job.intents import action_problem, update_refusal
from handlers.queue import PROTECTED, delete_problem, parent_problem
from schemas.admission_rules import name_problem
from schemas.envelope import Envelope
from schemas.events import (
    CronJobSubmitRequested,
    HyperNodeApplyRequested,
    JobCommandRequested,
    JobDeleteRequested,
    JobFlowSubmitRequested,
    JobSubmitRequested,
    JobTemplateSubmitRequested,
    JobUpdateRequested,
    PodGroupSubmitRequested,
    PodSubmitRequested,
    QueueCommandRequested,
    QueueCreateRequested,
    QueueDeleteRequested,
    QueueUpdateRequested,
)
from schemas.events.base import Event
from schemas.hypernode import HyperNode
from schemas.loaders import ManifestError
from schemas.resources import (
    Command,
    CronJob,
    Job,
    JobFlow,
    JobTemplate,
    Manifest,
    Node,
    ObjectMeta,
    OwnerReference,
    Pod,
    PodGroup,
    Queue,
    key_of,
)

FORCE_HINT = "--force appends the request anyway"

JOB_ACTIONS = {
    "suspend": "AbortJob",
    "resume": "ResumeJob",
    "restart": "RestartJob",
    "terminate": "TerminateJob",
    "complete": "CompleteJob",
}


def register(commands) -> None:
    apply = commands.add_parser(
        "apply",
        help="create or update every Job, CronJob, JobTemplate, JobFlow, Queue and PodGroup in a file, hand "
        "its plain Pods to the scheduler, and issue its Commands (HyperNodes, network domains, are created "
        "or replaced too; node.k8s.io/v1 RuntimeClasses are added to the cluster)",
    )
    apply.add_argument(
        "-f", "--filename", required=True,
        help="YAML or JSON manifest file; - reads standard input; a directory: every *.yaml, *.yml and *.json "
        "in it (not its subdirectories), in name order. One bad file refuses them all",
    )
    _force(apply)
    apply.set_defaults(run=_apply)

    job = commands.add_parser("job", help="submit and act on jobs")
    job_sub = job.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    submit = job_sub.add_parser("submit", help="submit a Volcano Job manifest")
    submit.add_argument("-f", "--filename", required=True)
    _force(submit)
    submit.set_defaults(run=_apply, only="Job")
    for verb, action in JOB_ACTIONS.items():
        act = job_sub.add_parser(verb, help=f"issue {action} to a job")
        act.add_argument("name", help="NAME or NAMESPACE/NAME")
        act.add_argument("-n", "--namespace", default="default")
        _force(act)
        act.set_defaults(run=_job_command, action=action)
    delete = job_sub.add_parser("delete", help="delete a job and everything it owns")
    delete.add_argument("name", help="NAME or NAMESPACE/NAME")
    delete.add_argument("-n", "--namespace", default="default")
    _force(delete)
    delete.set_defaults(run=_job_delete)
    views.register_job(job_sub)

    queue = commands.add_parser("queue", help="create and operate queues")
    queue_sub = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    create = queue_sub.add_parser("create", help="create a queue from a Queue manifest")
    create.add_argument("-f", "--filename", required=True)
    _force(create)
    create.set_defaults(run=_apply, only="Queue")
    operate = queue_sub.add_parser("operate", help="open or close a queue")
    operate.add_argument("name")
    operate.add_argument("--action", "-a", choices=["open", "close"], required=True)
    _force(operate)
    operate.set_defaults(run=_queue_operate)
    remove = queue_sub.add_parser("delete", help="delete a queue (it must be Closed and empty)")
    remove.add_argument("name")
    _force(remove)
    remove.set_defaults(run=_queue_delete)
    views.register_queue(queue_sub)


def _force(parser) -> None:
    parser.add_argument(
        "--force", action="store_true",
        help="append the request without checking it against the read models (they may lag the log)",
    )


def intent_for(manifest: Manifest) -> Event:
    """The request a manifest becomes at the edge when nothing is known about its object
    (a PodGroup or a plain Pod, as other operators create them, goes to the podgroup controller)."""
    if isinstance(manifest, Node):
        from eventbatch.cli.nodes import node_request

        return node_request(manifest)
    if isinstance(manifest, Job):
        return JobSubmitRequested(job=key_of(manifest.metadata), manifest=manifest)
    if isinstance(manifest, Queue):
        return QueueCreateRequested(queue=manifest.metadata.name, manifest=manifest)
    if isinstance(manifest, Command):
        target = manifest.target_object
        if target is None:
            raise CliError(f"Command {manifest.metadata.name}: target: required")
        if target.kind == "Queue":
            action = {"OpenQueue": "open", "CloseQueue": "close"}.get(manifest.action, "")
            return QueueCommandRequested(queue=target.name, action=action)
        namespace = manifest.metadata.namespace or "default"
        return JobCommandRequested(job=f"{namespace}/{target.name}", command=manifest)
    if isinstance(manifest, PodGroup):
        return PodGroupSubmitRequested(podgroup=key_of(manifest.metadata), manifest=manifest)
    if isinstance(manifest, Pod):
        return PodSubmitRequested(pod=key_of(manifest.metadata), manifest=manifest)
    if isinstance(manifest, CronJob):
        return CronJobSubmitRequested(cronjob=key_of(manifest.metadata), manifest=manifest)
    if isinstance(manifest, JobTemplate):
        return JobTemplateSubmitRequested(template=key_of(manifest.metadata), manifest=manifest)
    if isinstance(manifest, JobFlow):
        return JobFlowSubmitRequested(jobflow=key_of(manifest.metadata), manifest=manifest)
    if isinstance(manifest, HyperNode):
        return HyperNodeApplyRequested(hypernode=manifest.metadata.name, manifest=manifest)
    raise CliError(f"{type(manifest).__name__} manifests cannot be applied")


async def append_intents(settings, events: list[Event]) -> list[int]:
    now = SystemClock().now()
    async with open_log(settings.log_url) as log:
        return await log.append([Envelope.wrap(e, recorded_at=now) for e in events])


def job_key(name: str, namespace: str) -> str:
    """``NAME`` in ``namespace``, or ``NAMESPACE/NAME`` as given; both Kubernetes names."""
    if "/" in name:
        ns, _, short = name.partition("/")
        if not ns or not short or "/" in short:
            raise CliError(f"{_shown(name)} is not a job name (expected NAME or NAMESPACE/NAME)")
        namespace, name = ns, short
    problem = name_problem(namespace, what="namespace") or name_problem(
        name, subdomain=True, max_length=63, what="job name"
    )
    if problem:
        raise CliError(problem)
    return f"{namespace}/{name}"


def queue_name(name: str) -> str:
    """A queue name from the command line: an RFC 1123 subdomain."""
    problem = name_problem(name, subdomain=True, what="queue name")
    if problem:
        raise CliError(problem)
    return name


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 80 else f"{text[:40]!r}... ({len(text)} characters)"


# --- apply: every manifest of a file becomes a request, or is unchanged, or is refused ---------


@dataclass
class Step:
    what: str  # "Job default/x", "Queue research", "Command default/c"
    event: Event | None = None  # None: unchanged
    problem: str = ""


class Planner:
    """Turns the manifests of one file into requests, checked against what the log knows."""

    def __init__(self, known: Knowledge) -> None:
        self.known = known
        self.jobs: dict[str, JobKnown | None] = {}
        self.queues: dict[str, QueueKnown | None] = {}

    async def queue(self, name: str) -> QueueKnown | None:
        if name not in self.queues:
            self.queues[name] = await self.known.queue(name)
        return self.queues[name]

    async def job(self, key: str) -> JobKnown | None:
        if key not in self.jobs:
            self.jobs[key] = await self.known.job(key)
        return self.jobs[key]

    async def step(self, manifest: Manifest) -> Step:
        if isinstance(manifest, Node):
            name = manifest.metadata.name
            if await self.known.store.rows("node_view", "name = ?", (name,)):
                return Step(f"Node {name}", problem=f"node {name} exists (eventbatch node cordon|drain|remove {name})")
            return Step(f"Node {name}", intent_for(manifest))
        if isinstance(manifest, Job):
            return await self._job(manifest)
        if isinstance(manifest, Queue):
            return await self._queue(manifest)
        if isinstance(manifest, PodGroup):
            return await self._podgroup(manifest)
        if isinstance(manifest, Pod):
            return Step(f"Pod {key_of(manifest.metadata)}", intent_for(manifest))
        if isinstance(manifest, CronJob):  # its Jobs are checked by the job controller when each run comes
            return Step(f"CronJob {key_of(manifest.metadata)}", intent_for(manifest))
        if isinstance(manifest, JobTemplate | JobFlow):  # the JobFlow controller checks templates and steps
            return Step(f"{manifest.kind} {key_of(manifest.metadata)}", intent_for(manifest))
        if isinstance(manifest, HyperNode):
            return Step(f"HyperNode {manifest.metadata.name}", intent_for(manifest))
        return await self._command(manifest)

    async def _queue_refusal(self, name: str, kinds: str) -> str:
        """Why the queue ``name`` admits no ``kinds`` (podgroups, jobs): it does not exist or is not Open ("" when it admits)."""
        queue = await self.queue(name)
        if queue is None:
            return f"spec.queue: queue {name} does not exist"
        if queue.state and queue.state != "Open":
            return f"spec.queue: queue {name} is {queue.state}; {kinds} are admitted to Open queues only"
        return ""

    async def _podgroup(self, manifest: PodGroup) -> Step:
        what = f"PodGroup {key_of(manifest.metadata)}"
        problem = await self._queue_refusal(manifest.spec.queue or "default", "podgroups")
        if problem:
            return Step(what, problem=problem)
        return Step(what, intent_for(manifest))

    async def _job(self, manifest: Job) -> Step:
        key = key_of(manifest.metadata)
        named = bool(manifest.metadata.name)  # with only generateName, every apply is a new job
        what = f"Job {key}" if named else f"Job {key}{manifest.metadata.generate_name}<generated>"
        current = await self.job(key) if named else None
        if current is not None:
            if current.manifest == manifest:
                return Step(what)
            problem = update_refusal(current.phase, key, current.manifest, manifest)
            if problem:
                return Step(what, problem=f"cannot update: {problem}")
            self.jobs[key] = JobKnown(key, manifest, current.phase, current.pending)
            return Step(what, JobUpdateRequested(job=key, manifest=manifest))
        problem = await self._queue_refusal(manifest.spec.queue or "default", "jobs")
        if problem:
            return Step(what, problem=problem)
        priority = manifest.spec.priority_class_name
        if priority and not await self.known.priority_class(priority):
            return Step(what, problem=f"spec.priorityClassName: priority class {priority} does not exist")
        for i, task in enumerate(manifest.spec.tasks):
            name = task.template.spec.priority_class_name if task.template and task.template.spec else ""
            if name and not await self.known.priority_class(name):
                return Step(what, problem=f"spec.tasks[{i}].template.spec.priorityClassName: priority class {name} does not exist")
        if named:
            self.jobs[key] = JobKnown(key, manifest, "", pending=True)
        return Step(what, JobSubmitRequested(job=key, manifest=manifest))

    async def _queue(self, manifest: Queue) -> Step:
        name = manifest.metadata.name
        what = f"Queue {name}"
        current = await self.queue(name)
        parent = manifest.spec.parent
        if current is not None:
            if current.manifest.spec == manifest.spec:
                return Step(what)
            problem = parent_problem(current.manifest.spec.parent, parent)
            if problem:
                return Step(what, problem=f"cannot update: {problem}")
            self.queues[name] = QueueKnown(name, manifest, current.state, current.live_podgroups, current.pending)
            return Step(what, QueueUpdateRequested(queue=name, manifest=manifest))
        if parent and parent != "root" and await self.queue(parent) is None:
            return Step(what, problem=f"spec.parent: queue {parent} does not exist")
        self.queues[name] = QueueKnown(name, manifest, "", pending=True)
        return Step(what, QueueCreateRequested(queue=name, manifest=manifest))

    async def _command(self, manifest: Command) -> Step:
        event = intent_for(manifest)
        what = f"Command {key_of(manifest.metadata)}"
        if isinstance(event, QueueCommandRequested):
            if not event.action:
                return Step(what, problem=f"action: {manifest.action!r} does not apply to a Queue (OpenQueue or CloseQueue)")
            if await self.queue(event.queue) is None:
                return Step(what, problem=f"target: queue {event.queue} does not exist")
            return Step(what, event)
        assert isinstance(event, JobCommandRequested)
        job = await self.job(event.job)
        if job is None:
            return Step(what, problem=f"target: job {event.job} does not exist")
        problem = action_problem(manifest.action, job.key, job.phase or "Pending")
        return Step(what, event, problem=f"action: {problem}" if problem else "")


async def _check(settings, run):
    """Run ``run(knowledge)`` over the read models caught up with the log."""
    async with views.current_store(settings) as store:
        return await run(Knowledge(store))


def _refuse(problems: list[str]) -> None:
    if problems:
        raise CliError("; ".join(problems) + f" (nothing appended; {FORCE_HINT})")


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@functools.cache
def sources_of(filename: str) -> tuple[tuple[str, str], ...]:
    """The ``(source name, text)`` of a ``-f``: ``-`` standard input, a directory every
    ``*.yaml``/``*.yml``/``*.json`` in it in name order, else the file; one ``CliError`` line
    for one that cannot be read. Read once per process (standard input can be read only once)."""
    import sys
    from pathlib import Path

    from schemas import limits
    from schemas.loaders import read_text

    try:
        if filename == "-":
            data = sys.stdin.buffer.read(limits.MAX_FILE_BYTES + 1)
            if len(data) > limits.MAX_FILE_BYTES:
                raise CliError(f"<stdin>: more than the {limits.size(limits.MAX_FILE_BYTES)} allowed")
            try:
                return (("<stdin>", data.decode("utf-8")),)
            except UnicodeDecodeError as exc:
                raise CliError(f"<stdin>: not UTF-8 text: {exc.reason}") from None
        path = Path(filename)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file())
            if not files:
                raise CliError(f"{filename}: no *.yaml, *.yml or *.json file in this directory")
        else:
            files = [path]
        return tuple((str(p), read_text(p, limits.MAX_FILE_BYTES, source=str(p))) for p in files)
    except ManifestError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{exc.filename or filename}: {exc.strerror}") from None


def manifests_of(filename: str, only: str | None = None) -> list[tuple[str, Any]]:
    """The manifests of a ``-f`` (``sources_of``) with the file each came from, all of kind
    ``only`` if given; a bad file, a kind not wanted or no manifest at all is one ``CliError``
    line naming the file."""
    from schemas.loaders import load_manifests

    manifests: list[tuple[str, Any]] = []
    for source, text in sources_of(filename):
        try:
            loaded = load_manifests(text, source=source)
        except ManifestError as exc:
            raise CliError(str(exc)) from None
        if only is not None:
            wrong = [m for m in loaded if type(m).__name__ != only]
            if wrong:
                raise CliError(f"{source}: expected only {only} manifests, found {type(wrong[0]).__name__}")
        manifests += [(source, m) for m in loaded]
    if not manifests:
        raise CliError(f"{filename}: no manifests found")
    return manifests


def runtime_classes_of(filename: str) -> tuple[list[Event], list[tuple[str, Any]]] | None:
    """A ``-f`` holding node.k8s.io/v1 RuntimeClasses: ``(their RuntimeClassAdded, the other
    manifests with their files)``; None for one without. A RuntimeClass is the cluster's setting,
    not a request: it is appended as the fact the scheduler folds (as a scenario's runtimeClasses)."""
    from schemas.loaders import _documents, decode_manifest, load_manifests
    from schemas.runtimeclass import API_VERSION, KIND, RuntimeClassError, load_runtime_class, runtime_class_added

    def is_class(doc: Any) -> bool:
        return isinstance(doc, dict) and (doc.get("apiVersion"), doc.get("kind")) == (API_VERSION, KIND)

    try:
        texts = sources_of(filename)
        parsed = [(source, text, list(_documents(text, source))) for source, text in texts]
    except (ManifestError, CliError):
        return None  # manifests_of says what is wrong with the input
    if not any(is_class(d) for _, _, docs in parsed for _, d in docs):
        return None
    classes: list[Event] = []
    others: list[tuple[str, Any]] = []
    for source, text, docs in parsed:
        if not any(is_class(d) for _, d in docs):
            try:
                others += [(source, m) for m in load_manifests(text, source=source)]
            except ManifestError as exc:
                raise CliError(str(exc)) from None
            continue
        for number, doc in docs:
            if is_class(doc):
                try:
                    classes.append(runtime_class_added(load_runtime_class(doc)))
                except RuntimeClassError as exc:
                    raise CliError(f"{source}: document {number}: RuntimeClass: {exc}") from None
                continue
            try:
                others.append((source, decode_manifest(doc, source=source, document=number)))
            except ManifestError as exc:
                raise CliError(str(exc)) from None
    return classes, others


async def _apply(args, settings) -> int:
    split = runtime_classes_of(args.filename) if getattr(args, "only", None) is None else None
    classes, loaded = split if split is not None else ([], manifests_of(args.filename, getattr(args, "only", None)))
    manifests = [m for _, m in loaded]
    if args.force:
        steps = [Step(type(m).__name__, intent_for(m)) for m in manifests]
    else:

        async def plan(known: Knowledge) -> list[Step]:
            planner = Planner(known)
            return [await planner.step(m) for m in manifests]

        steps = await _check(settings, plan)
        _refuse([f"{source}: {s.what}: {s.problem}" for (source, _), s in zip(loaded, steps, strict=True) if s.problem])
    steps = [Step(f"RuntimeClass {c.key()}", c) for c in classes] + steps
    events = [s.event for s in steps if s.event is not None]
    positions = await append_intents(settings, events) if events else []
    at = iter(positions)
    for step in steps:
        if step.event is None:
            print(f"{step.what} unchanged")
        else:
            print(f"{type(step.event).__name__} {step.event.key()} at #{next(at)}")
    return 0


async def _job_command(args, settings) -> int:
    key = job_key(args.name, args.namespace)
    namespace, _, name = key.partition("/")
    if not args.force:

        async def check(known: Knowledge) -> None:
            job = await known.job(key)
            if job is None:
                raise CliError(f"job {key} not found (nothing appended; {FORCE_HINT})")
            problem = action_problem(args.action, key, job.phase or "Pending")
            _refuse([problem] if problem else [])

        await _check(settings, check)
    command = Command(
        metadata=ObjectMeta(name=f"{name}-{args.action.lower()}-{uuid.uuid4().hex[:8]}", namespace=namespace),
        action=args.action,
        target_object=OwnerReference(api_version="batch.volcano.sh/v1alpha1", kind="Job", name=name),
        reason="issued from the command line",
    )
    [position] = await append_intents(settings, [intent_for(command)])
    print(f"{args.action} for {key} requested at #{position}")
    return 0


async def _queue_operate(args, settings) -> int:
    queue_name(args.name)
    if not args.force:

        async def check(known: Knowledge) -> bool:
            queue = await known.queue(args.name)
            if queue is None:
                raise CliError(f"queue {args.name} not found (nothing appended; {FORCE_HINT})")
            wanted = "Open" if args.action == "open" else ("Closed", "Closing")
            return queue.state == wanted or queue.state in wanted

        if await _check(settings, check):
            print(f"queue {args.name} unchanged (already {'Open' if args.action == 'open' else 'closed'})")
            return 0
    [position] = await append_intents(settings, [QueueCommandRequested(queue=args.name, action=args.action)])
    print(f"{args.action} for queue {args.name} requested at #{position}")
    return 0


async def _job_delete(args, settings) -> int:
    key = job_key(args.name, args.namespace)
    if not args.force:

        async def check(known: Knowledge) -> None:
            if await known.job(key) is None:
                raise CliError(f"job {key} not found (nothing appended; {FORCE_HINT})")

        await _check(settings, check)
    [position] = await append_intents(settings, [JobDeleteRequested(job=key, reason="deleted from the command line")])
    print(f"deletion of {key} requested at #{position}")
    return 0


async def queue_delete_problem(known: Knowledge, name: str) -> str:
    """Why the queue controller will refuse to delete ``name``, or "" (its own rule)."""
    queue = await known.queue(name)
    if queue is None and name not in PROTECTED:
        return f"queue {name} not found"
    if queue is None:
        return delete_problem(name, None, 0, [])
    return delete_problem(name, queue.state, queue.live_podgroups, await known.children(name))


async def _queue_delete(args, settings) -> int:
    queue_name(args.name)
    if not args.force:

        async def check(known: Knowledge) -> None:
            problem = await queue_delete_problem(known, args.name)
            _refuse([problem] if problem else [])

        await _check(settings, check)
    [position] = await append_intents(settings, [QueueDeleteRequested(queue=args.name)])
    print(f"deletion of queue {args.name} requested at #{position}")
    return 0
