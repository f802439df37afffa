"""Requests change nothing but through their answers, over the whole pipeline.

Where it sits: the integration proof that every fold applies facts only.
Random sequences of valid and invalid requests about queues, jobs and nodes
go through the composition root's handlers (queue, job and node controllers,
scheduler), the timers, the scheduling trigger and the simulated kubelet, on
a real SQLite log in a temporary directory, with a live projector writing a
real SQLite read-model store. After each request is settled,
``tests.support.facts.check_requests_change_nothing`` checks that

1. every projection (jobs, queues, nodes, cluster, the read models'
   ``ViewSet``, the kube status writer's fold) folded from position 0 equals
   the same fold with every request record skipped (positions kept as in the
   log), and the read-model store holds the rows of a fold of the facts
   alone;
2. a refused request (or one answered with nothing) leaves every projection
   byte-identical (canonical JSON) and every read-model table identical,
   except the audit table ``audit_view``: the timeline of a job or queue
   records the request and its refusal and is meant to grow. (The store's
   ``tracking`` positions and encoded ``snapshots`` are bookkeeping and are
   not compared either. ``tests/support/facts.py`` lists the cursor fields
   of the folds left out, and why);

and ``replay --verify`` (``eventbatch.verify.verify``, in process) finds
every recorded decision reproduced, none missing and no handler failure. A
deterministic tour of every kind of refusal runs ``eventbatch replay
--verify`` as a subprocess once, at its end.

A twin test plants the old bug (a cluster fold that also applies
``QueueCreateRequested`` as if it were ``QueueCreated``) into the projections
the same checker folds, and shows the checker failing on it. A scenario test
runs ``examples/fair-share.yaml`` with a refused duplicate of queue
``research`` and requires exactly the run of the example without it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eventbatch.app import build_pipeline, default_handlers, scheduling_relevance
from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.codec import decode as decode_record
from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from eventbatch.readmodels import Projector, ReadModelStore
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from eventbatch.sim.report import build_report
from eventbatch.verify import verify
from projections import cluster as cluster_fold
from schemas.envelope import Envelope
from schemas.events import (
    JobCommandRequested,
    JobDeleteRequested,
    JobFlowDeleteRequested,
    JobFlowSubmitRequested,
    JobSubmitRequested,
    JobTemplateSubmitRequested,
    JobUpdateRequested,
    NodeAdded,
    NodeAddRequested,
    NodeCordonRequested,
    NodeDrainRequested,
    NodeRemoveRequested,
    PodGroupDeleteRequested,
    PodGroupSubmitRequested,
    PodSubmitRequested,
    PriorityClassAdded,
    QueueCommandRequested,
    QueueCreated,
    QueueCreateRequested,
    QueueDeleteRequested,
    QueueUpdateRequested,
)
from schemas.events.base import Event
from schemas.loaders import decode_manifest
from schemas.resources import Command, Job, Node, NodeStatus, ObjectMeta, OwnerReference, Queue
from schemas.scenario import load_scenario
from tests.support.facts import (
    PROJECTIONS,
    Answer,
    Projection,
    ReadModels,
    check_requests_change_nothing,
    records_of,
    with_fold,
)

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = Settings(cluster="sim", sim_startup_ms=1_000, debounce_ms=50)
NAMESPACE = "default"

# --- manifests ------------------------------------------------------------------------


def queue_manifest(name: str, weight: int = 1, *, parent: str = "", closed: bool = False) -> Queue:
    raw: dict = {
        "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue",
        "metadata": {"name": name, "uid": f"uid-queue-{name}"}, "spec": {"weight": weight},
    }
    if parent:
        raw["spec"]["parent"] = parent
    if closed:
        raw["status"] = {"state": "Closed"}
    return decode_manifest(raw)


def job_manifest(name: str, queue: str, *, replicas: int = 1, minutes: int = 1, exit_code: int = 0) -> Job:
    annotations = {"eventbatch.io/sim-duration": f"{minutes}m"}
    if exit_code:
        annotations["eventbatch.io/sim-exit-code"] = str(exit_code)
    return decode_manifest({
        "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-job-{name}"},
        "spec": {
            "queue": queue, "minAvailable": replicas, "maxRetry": 2,
            "policies": [{"exitCode": 3, "action": "RestartJob"}],
            "tasks": [{"name": "main", "replicas": replicas, "template": {
                "metadata": {"annotations": annotations},
                "spec": {"containers": [{"name": "main", "image": "busybox",
                                         "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
            }}],
        },
    })


def operator_manifest(kind: str, name: str, *, group: str = "", scheduler: str = "volcano") -> Any:
    """Another operator's PodGroup, or its plain pod in PodGroup ``group``."""
    if kind == "PodGroup":
        return decode_manifest({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                                "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {"minMember": 1}})
    return decode_manifest({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "annotations": {
            "scheduling.k8s.io/group-name": group, "eventbatch.io/sim-duration": "1m"}},
        "spec": {"schedulerName": scheduler, "containers": [{"name": "c", "image": "busybox",
                                                              "resources": {"requests": {"cpu": "1"}}}]},
    })


def node_manifest(name: str) -> Node:
    allocatable = {"cpu": "4", "memory": "16Gi", "pods": "110"}
    return Node(metadata=ObjectMeta(name=name, labels={"kubernetes.io/hostname": name}),
                status=NodeStatus(capacity=allocatable, allocatable=allocatable))


def command(uid: str, job: str, action: str) -> Command:
    return Command(
        metadata=ObjectMeta(name=uid, namespace=NAMESPACE, uid=uid), action=action,
        target_object=OwnerReference(api_version="batch.volcano.sh/v1alpha1", kind="Job", name=job), reason="test",
    )


def _spec(manifest: Job, **changes) -> Job:
    return msgspec.structs.replace(manifest, spec=msgspec.structs.replace(manifest.spec, **changes))


def _tasks(manifest: Job, change: Callable) -> Job:
    return _spec(manifest, tasks=[change(t) for t in manifest.spec.tasks])


def _image(task, image: str):
    template = task.template
    containers = [msgspec.structs.replace(c, image=image) for c in template.spec.containers]
    spec = msgspec.structs.replace(template.spec, containers=containers)
    return msgspec.structs.replace(task, template=msgspec.structs.replace(template, spec=spec))


def updated(manifest: Job, kind: str) -> Job:
    """``manifest`` changed the way ``kind`` says: a mutable field (``scale``, ``min``,
    ``priority``), nothing (``same``), or something a live job keeps (``image``, ``queue``,
    ``retries``) or cannot take (``min-too-big``)."""
    replicas = sum(t.replicas for t in manifest.spec.tasks)
    if kind == "scale":
        wanted = 1 if replicas >= 3 else replicas + 1
        return _spec(_tasks(manifest, lambda t: msgspec.structs.replace(t, replicas=wanted, min_available=wanted)),
                     min_available=min(manifest.spec.min_available, wanted))
    if kind == "min":
        return _spec(manifest, min_available=1 if manifest.spec.min_available != 1 else replicas)
    if kind == "priority":
        return _spec(manifest, priority_class_name="" if manifest.spec.priority_class_name else "high")
    if kind == "same":
        return manifest
    if kind == "image":
        return _tasks(manifest, lambda t: _image(t, "busybox:1.37"))
    if kind == "queue":
        return _spec(manifest, queue="batch" if manifest.spec.queue != "batch" else "research")
    if kind == "retries":
        return _spec(manifest, max_retry=manifest.spec.max_retry + 1)
    if kind == "min-too-big":
        return _spec(manifest, min_available=replicas + 1)
    raise ValueError(kind)


UPDATES = ("scale", "min", "priority", "same", "image", "queue", "retries", "min-too-big")

# --- the pipeline on a log, one checked request at a time ---------------------------------


class Bench:
    """The composition root's pipeline on a virtual clock, a live read-model store, and
    the check after every request."""

    def __init__(self, log: EventLog, read_models: ReadModels) -> None:
        self.log = log
        self.read_models = read_models
        self.clock = VirtualClock()
        self.pipeline = build_pipeline(
            log=log, clock=self.clock, handlers=default_handlers(SETTINGS), settings=SETTINGS,
            is_relevant=scheduling_relevance(), cluster="sim",
        )
        self.answers: list[Answer] = []
        self.command_ids = (f"cmd-{i}" for i in itertools.count())
        self.issued: list[str] = []  # command ids, in the order they were sent

    async def start(self) -> None:
        """Two nodes and a priority class (facts, as a cluster adapter would observe
        them), then the default queue (a request, checked like every other)."""
        await self.append(PriorityClassAdded(name="high", value=1000),
                          *(NodeAdded(node=n, manifest=node_manifest(n)) for n in ("n0", "n1")))
        await self.pipeline.settle()
        answer = await self.request(QueueCreateRequested(queue="default", manifest=queue_manifest("default")))
        assert [a.type for a in answer.answers] == ["QueueCreated", "QueueStateChanged"]

    async def append(self, *events: Event) -> None:
        await self.log.append([Envelope.wrap(e, recorded_at=self.clock.now()) for e in events])

    async def request(self, event: Event, *, projections: Sequence[Projection] = PROJECTIONS) -> Answer:
        """Append one request, settle the pipeline, check everything."""
        position = await self.log.end_position()
        await self.append(event)
        await self.pipeline.settle()
        answer = await check_requests_change_nothing(
            self.log, position, read_models=self.read_models, projections=projections)
        report = await verify(self.log, default_handlers(SETTINGS))
        assert report.ok, [d.describe() for d in report.divergences]
        assert report.clean, (report.failures, report.quarantined, report.unknown_types)
        self.answers.append(answer)
        return answer

    async def wait(self, seconds: int) -> None:
        """Let the cluster go on: the clock moves to each deadline within ``seconds``
        (pods start, run, finish; timers fire), and then to the end of it."""
        limit = self.clock.now() + seconds * 1000
        await self.pipeline.settle()
        while (deadline := self.pipeline.next_deadline()) is not None and deadline <= limit:
            self.clock.advance_to(max(deadline, self.clock.now()))
            await self.pipeline.settle()
        self.clock.advance_to(max(limit, self.clock.now()))
        await self.pipeline.settle()

    def job(self, name: str) -> Job | None:
        record = self.pipeline.runner("job-controller").state.jobs.get(f"{NAMESPACE}/{name}")
        return record.manifest if record is not None else None

    def queue(self, name: str) -> Queue | None:
        info = self.pipeline.runner("queue-controller").state.queues.get(name)
        return info.manifest if info is not None else None

    def new_command(self, job: str, action: str, *, again: bool = False) -> JobCommandRequested:
        uid = self.issued[-1] if again and self.issued else next(self.command_ids)
        self.issued.append(uid)
        return JobCommandRequested(job=f"{NAMESPACE}/{job}", command=command(uid, job, action))


# --- random requests ----------------------------------------------------------------------

QUEUES = ("default", "research", "batch", "late", "ghost")  # "ghost" is never created
JOBS = ("a", "b", "ghost")  # "ghost" is never submitted
NODES = ("n0", "n1", "n2", "ghost")  # n0 and n1 exist from the start; "ghost" never does
ACTIONS = ("AbortJob", "ResumeJob", "RestartJob", "TerminateJob", "CompleteJob", "SuspendJob")

queue_create = st.tuples(st.just("queue-create"), st.sampled_from(QUEUES[:4]), st.integers(1, 9),
                         st.booleans(), st.sampled_from((False, False, True)))
queue_update = st.tuples(st.just("queue-update"), st.sampled_from(QUEUES), st.integers(1, 9), st.booleans())
queue_command = st.tuples(st.just("queue-command"), st.sampled_from(QUEUES),
                          st.sampled_from(("open", "close", "close", "drain")))
queue_delete = st.tuples(st.just("queue-delete"), st.sampled_from(QUEUES))
job_submit = st.tuples(st.just("job-submit"), st.sampled_from(JOBS[:2]), st.sampled_from(QUEUES),
                       st.integers(1, 3), st.integers(1, 3), st.sampled_from((0, 0, 3)))
job_update = st.tuples(st.just("job-update"), st.sampled_from(JOBS), st.sampled_from(UPDATES))
job_command = st.tuples(st.just("job-command"), st.sampled_from(JOBS), st.sampled_from(ACTIONS), st.booleans())
job_delete = st.tuples(st.just("job-delete"), st.sampled_from(JOBS))
node_request = st.one_of(
    st.tuples(st.just("node-add"), st.sampled_from(NODES[:3])),
    st.tuples(st.just("node-cordon"), st.sampled_from(NODES), st.booleans()),
    st.tuples(st.just("node-drain"), st.sampled_from(NODES)),
    st.tuples(st.just("node-remove"), st.sampled_from(NODES)),
)
wait = st.tuples(st.just("wait"), st.sampled_from((2, 30, 90, 200)))
# Jobs and queues are asked about more often than nodes; time passes between them.
operations = st.one_of(
    job_submit, job_submit, job_command, job_command, job_command, job_update, job_update, job_delete,
    queue_create, queue_create, queue_update, queue_command, queue_command, queue_delete,
    node_request, wait, wait,
)


def request_of(op: tuple, bench: Bench) -> Event | None:
    """The request an operation stands for (None for ``wait``), built from what the
    controllers hold now: an update starts from the current manifest, if any."""
    kind, name, *args = op
    if kind == "queue-create":
        weight, child, closed = args
        parent = "research" if child and name not in ("research", "default") else ""
        return QueueCreateRequested(queue=name, manifest=queue_manifest(name, weight, parent=parent, closed=closed))
    if kind == "queue-update":
        weight, move = args
        current = bench.queue(name) or queue_manifest(name)
        spec = msgspec.structs.replace(current.spec, weight=weight)
        if move:  # spec.parent may not change
            spec = msgspec.structs.replace(spec, parent="" if spec.parent else "batch")
        return QueueUpdateRequested(queue=name, manifest=msgspec.structs.replace(current, spec=spec))
    if kind == "queue-command":
        return QueueCommandRequested(queue=name, action=args[0])
    if kind == "queue-delete":
        return QueueDeleteRequested(queue=name)
    if kind == "job-submit":
        queue, replicas, minutes, exit_code = args
        manifest = job_manifest(name, queue, replicas=replicas, minutes=minutes, exit_code=exit_code)
        return JobSubmitRequested(job=f"{NAMESPACE}/{name}", manifest=manifest)
    if kind == "job-update":
        current = bench.job(name) or job_manifest(name, "default")
        return JobUpdateRequested(job=f"{NAMESPACE}/{name}", manifest=updated(current, args[0]))
    if kind == "job-command":
        action, again = args
        return bench.new_command(name, action, again=again)
    if kind == "job-delete":
        return JobDeleteRequested(job=f"{NAMESPACE}/{name}", reason="test")
    if kind == "node-add":
        return NodeAddRequested(node=name, manifest=node_manifest(name))
    if kind == "node-cordon":
        return NodeCordonRequested(node=name, unschedulable=args[0])
    if kind == "node-drain":
        return NodeDrainRequested(node=name)
    if kind == "node-remove":
        return NodeRemoveRequested(node=name)
    assert kind == "wait"
    return None


async def run_operations(bench: Bench, ops: Sequence[tuple]) -> None:
    for op in ops:
        event = request_of(op, bench)
        if event is None:
            await bench.wait(op[1])
        else:
            await bench.request(event)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.tuples(job_submit, st.lists(operations, min_size=5, max_size=20)).map(lambda t: [t[0], *t[1]]))
async def test_random_requests_change_nothing_but_through_their_answers(tmp_path_factory, ops) -> None:
    tmp_path = tmp_path_factory.mktemp("requests")
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log, ReadModels(log, tmp_path) as read_models:
        bench = Bench(log, read_models)
        await bench.start()
        await run_operations(bench, ops)
        # and the cluster goes on to the end of what it was given, checked once more
        await bench.wait(600)
        await bench.request(QueueDeleteRequested(queue="ghost"))
    assert len(bench.answers) == 2 + sum(op[0] != "wait" for op in ops)
    for answer in bench.answers:  # what was covered: --hypothesis-show-statistics
        event(f"{answer.request.type} -> {answer.answers[0].type if answer.answers else 'nothing'}")


# --- every kind of refusal, once, in order --------------------------------------------------


def expect(answer: Answer, first: str | None, reason: str = "") -> None:
    """The request was answered first with ``first`` (None: with nothing), giving ``reason``."""
    said = answer.describe()
    assert (answer.answers[0].type if answer.answers else None) == first, said
    assert reason in said, said
    if first is not None and first.endswith("Refused"):
        assert answer.refused, said


async def test_every_kind_of_refusal_changes_nothing_and_the_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with open_log(f"sqlite:///{path}") as log, ReadModels(log, tmp_path) as read_models:
        bench = Bench(log, read_models)
        request = bench.request
        await bench.start()

        # queues: a duplicate with another weight, an unknown name, a move, a bad action, a protected delete
        expect(await request(QueueCreateRequested(queue="research", manifest=queue_manifest("research", 1))),
               "QueueCreated")
        expect(await request(QueueCreateRequested(queue="research", manifest=queue_manifest("research", 7))),
               "QueueRequestRefused", "queue already exists")
        assert bench.pipeline.runner("scheduler").state.queues["research"].weight == 1
        expect(await request(QueueUpdateRequested(queue="research", manifest=queue_manifest("research", parent="batch"))),
               "QueueRequestRefused", "spec.parent cannot change")
        expect(await request(QueueUpdateRequested(queue="research", manifest=queue_manifest("research", 1))), None)
        expect(await request(QueueUpdateRequested(queue="ghost", manifest=queue_manifest("ghost"))),
               "QueueRequestRefused", "queue not found")
        expect(await request(QueueCommandRequested(queue="ghost", action="close")), "QueueRequestRefused", "not found")
        expect(await request(QueueDeleteRequested(queue="ghost")), "QueueRequestRefused", "queue not found")
        expect(await request(QueueCommandRequested(queue="research", action="drain")),
               "QueueRequestRefused", "action must be open or close")
        expect(await request(QueueDeleteRequested(queue="default")), "QueueRequestRefused", "cannot be deleted")
        expect(await request(QueueCommandRequested(queue="default", action="open")), None)

        # jobs: a duplicate submission; a job whose queue comes after it, in a queue created Closed
        expect(await request(JobSubmitRequested(job="default/a", manifest=job_manifest("a", "default", replicas=2,
                                                                                        minutes=5))), "JobCreated")
        expect(await request(JobSubmitRequested(job="default/a", manifest=job_manifest("a", "research"))),
               "JobSubmitRefused", "already exists")
        expect(await request(JobSubmitRequested(job="default/early", manifest=job_manifest("early", "late"))),
               "JobCreated")
        expect(await request(QueueCreateRequested(queue="late", manifest=queue_manifest("late", closed=True))),
               "QueueCreated")
        assert bench.pipeline.runner("queue-controller").state.queues["late"].state == "Closed"
        expect(await request(QueueDeleteRequested(queue="late")), "QueueRequestRefused", "still has 1 podgroup(s)")

        await bench.wait(30)
        assert bench.pipeline.runner("job-controller").state.jobs["default/a"].phase == "Running"
        await bench.wait(20)  # time passes: a refusal must not move the running job's clock
        expect(await request(bench.new_command("a", "ResumeJob")), "JobCommandRefused",
               "only an aborted (suspended) job can be resumed")
        for kind, reason in (("image", "tasks[0] (main) other than replicas"), ("queue", "changed: queue"),
                             ("retries", "changed: maxRetry"), ("min-too-big", "minAvailable 3 must be between")):
            expect(await request(JobUpdateRequested(job="default/a", manifest=updated(bench.job("a"), kind))),
                   "JobUpdateRefused", reason)
        expect(await request(JobUpdateRequested(job="default/a", manifest=updated(bench.job("a"), "same"))), None)
        expect(await request(JobUpdateRequested(job="default/a", manifest=updated(bench.job("a"), "scale"))),
               "JobUpdated")
        expect(await request(JobUpdateRequested(job="default/a", manifest=updated(bench.job("a"), "priority"))),
               "JobUpdated")

        # suspend and resume; the same command twice
        expect(await request(bench.new_command("a", "AbortJob")), "JobCommandAccepted")
        expect(await request(bench.new_command("a", "AbortJob", again=True)), "JobCommandRefused", "already ran")
        await bench.wait(30)
        expect(await request(bench.new_command("a", "RestartJob")), "JobCommandRefused", "applies to a Pending or Running job")
        expect(await request(bench.new_command("a", "ResumeJob")), "JobCommandAccepted")
        await bench.wait(30)

        # unknown jobs
        expect(await request(bench.new_command("ghost", "RestartJob")), "JobCommandRefused", "not found")
        expect(await request(JobUpdateRequested(job="default/ghost", manifest=job_manifest("ghost", "default"))),
               "JobUpdateRefused", "not found")
        expect(await request(JobDeleteRequested(job="default/ghost")), "JobDeleteRefused", "not found")

        # a queue closed and opened while idle; closed while busy: Closing, not deletable, then Closed
        expect(await request(QueueCommandRequested(queue="research", action="close")), "QueueStateChanged", "Closed")
        expect(await request(QueueCommandRequested(queue="research", action="open")), "QueueStateChanged")
        expect(await request(JobSubmitRequested(job="default/b", manifest=job_manifest("b", "research", minutes=2))),
               "JobCreated")
        await bench.wait(30)
        expect(await request(QueueCommandRequested(queue="research", action="close")), "QueueStateChanged", "Closing")
        expect(await request(QueueDeleteRequested(queue="research")), "QueueRequestRefused",
               "only a Closed queue can be deleted; research is Closing")
        await bench.wait(200)
        assert bench.pipeline.runner("queue-controller").state.queues["research"].state == "Closed"
        expect(await request(QueueDeleteRequested(queue="research")), "QueueDeleted")
        expect(await request(QueueCommandRequested(queue="research", action="open")), "QueueRequestRefused", "not found")

        # nodes
        expect(await request(NodeAddRequested(node="n0", manifest=node_manifest("n0"))),
               "NodeRequestRefused", "already exists")
        for event in (NodeCordonRequested(node="ghost", unschedulable=True), NodeDrainRequested(node="ghost"),
                      NodeRemoveRequested(node="ghost")):
            expect(await request(event), "NodeRequestRefused", "node ghost not found")
        expect(await request(NodeCordonRequested(node="n1", unschedulable=True)), "NodeUpdated")
        expect(await request(NodeCordonRequested(node="n1", unschedulable=True)), None)
        expect(await request(NodeAddRequested(node="n2", manifest=node_manifest("n2"))), "NodeAdded")

        # other operators' PodGroups and plain pods (the podgroup controller)
        pg = operator_manifest("PodGroup", "pg")
        expect(await request(PodGroupSubmitRequested(podgroup="default/pg", manifest=pg)), "PodGroupCreated")
        expect(await request(PodGroupSubmitRequested(podgroup="default/pg", manifest=pg)), None)
        owned = bench.pipeline.runner("job-controller").state.jobs["default/a"].podgroup
        expect(await request(PodGroupSubmitRequested(podgroup=owned, manifest=pg)), "PodGroupRefused", "belongs to job default/a")
        expect(await request(PodGroupDeleteRequested(podgroup="default/ghost")), "PodGroupRefused", "not found")
        expect(await request(PodSubmitRequested(pod="default/p1", manifest=operator_manifest("Pod", "p1", group="pg"))),
               "PodRequested")
        expect(await request(PodSubmitRequested(pod="default/p1", manifest=operator_manifest("Pod", "p1", group="pg"))),
               "PodRefused", "pod default/p1 exists")
        expect(await request(PodSubmitRequested(pod="default/p2", manifest=operator_manifest(
            "Pod", "p2", group="pg", scheduler="default-scheduler"))), "PodRefused", "for scheduler default-scheduler")

        # JobFlows and JobTemplates (the JobFlow controller)
        flow = decode_manifest({"apiVersion": "flow.volcano.sh/v1alpha1", "kind": "JobFlow",
                                "metadata": {"name": "flow", "namespace": NAMESPACE},
                                "spec": {"flows": [{"name": "step"}]}})
        expect(await request(JobFlowSubmitRequested(jobflow="default/flow", manifest=flow)),
               "JobFlowRefused", "spec.flows[0].name: jobtemplate default/step not found")
        step = decode_manifest({"apiVersion": "flow.volcano.sh/v1alpha1", "kind": "JobTemplate",
                                "metadata": {"name": "step", "namespace": NAMESPACE},
                                "spec": msgspec.to_builtins(job_manifest("step", "default").spec)})
        expect(await request(JobTemplateSubmitRequested(template="default/step", manifest=step)), "JobTemplateCreated")
        expect(await request(JobFlowSubmitRequested(jobflow="default/flow", manifest=flow)), "JobFlowCreated")
        expect(await request(JobFlowDeleteRequested(jobflow="default/ghost")), "JobFlowRefused", "not found")

        # finished jobs take no commands and no updates; deletes go through
        await bench.wait(900)
        assert bench.pipeline.runner("job-controller").state.jobs["default/a"].phase == "Completed"
        expect(await request(bench.new_command("a", "AbortJob")), "JobCommandRefused", "a finished job takes no commands")
        expect(await request(JobUpdateRequested(job="default/a", manifest=updated(bench.job("a"), "scale"))),
               "JobUpdateRefused", "a finished job cannot be updated")
        for job in ("default/a", "default/early"):
            removed = await request(JobDeleteRequested(job=job))
            assert removed.answers[-1].type == "JobRemoved", removed.describe()
        expect(await request(QueueDeleteRequested(queue="late")), "QueueDeleted")
        refused = sum(a.refused for a in bench.answers)
        assert refused == 33, refused

        # HyperNodes (the hypernode controller): one that would break the tree is refused
        from schemas.events import HyperNodeApplyRequested, HyperNodeDeleteRequested

        def hypernode(name: str, tier: int, kind: str, *members: str) -> HyperNodeApplyRequested:
            manifest = decode_manifest({
                "apiVersion": "topology.volcano.sh/v1alpha1", "kind": "HyperNode", "metadata": {"name": name},
                "spec": {"tier": tier, "members": [{"type": kind, "selector": {"exactMatch": {"name": m}}} for m in members]},
            })
            return HyperNodeApplyRequested(hypernode=name, manifest=manifest)

        expect(await request(hypernode("s0", 1, "Node", "n0", "n1")), "HyperNodeAdded")
        expect(await request(hypernode("s0", 1, "Node", "n0", "n1")), None)
        expect(await request(hypernode("p0", 2, "HyperNode", "s0")), "HyperNodeAdded")
        expect(await request(hypernode("p1", 2, "HyperNode", "s0")), "HyperNodeRequestRefused",
               "hypernode s0 already belongs to hypernode p0")
        expect(await request(hypernode("s0", 3, "HyperNode", "p0")), "HyperNodeRequestRefused", "a cycle")
        expect(await request(hypernode("p0", 1, "HyperNode", "s0")), "HyperNodeRequestRefused", "not below")
        expect(await request(HyperNodeDeleteRequested(hypernode="ghost")), "HyperNodeRequestRefused", "not found")
        expect(await request(HyperNodeDeleteRequested(hypernode="p0")), "HyperNodeRemoved")

        # CronJobs (the CronJob controller): a refused one, and a delete of none, change nothing
        from schemas.events import CronJobDeleteRequested, CronJobSubmitRequested

        cron = decode_manifest({
            "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": NAMESPACE},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": msgspec.to_builtins(job_manifest("n", "default").spec)}},
        })
        expect(await request(CronJobSubmitRequested(cronjob="default/nightly", manifest=cron)), "CronJobCreated")
        expect(await request(CronJobSubmitRequested(cronjob="default/nightly", manifest=cron)), None)
        expect(await request(CronJobSubmitRequested(cronjob="default/other", manifest=cron)),
               "CronJobRefused", "the manifest is CronJob default/nightly")
        expect(await request(CronJobDeleteRequested(cronjob="default/ghost")), "CronJobRefused", "not found")
        expect(await request(CronJobDeleteRequested(cronjob="default/nightly")), "TimerCancelled")

    # the command line agrees: every recorded decision is reproduced, nothing failed
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{path}", "replay", "--verify", "-o", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = msgspec.json.decode(result.stdout)
    assert report["ok"] and report["clean"], report
    assert all(h["decisions_matched"] > 0 for h in report["handlers"].values()), report["handlers"]


# --- a planted fault: the old bug, a queue created by its request ---------------------------


def planted_cluster_fold(state, env: Envelope, data: bytes):
    """``projections.cluster.fold``, but a ``QueueCreateRequested`` is also applied as if it
    were the controller's ``QueueCreated`` (as log format 1 did, when the request was the fact)."""
    if env.type == "QueueCreateRequested":
        cluster_fold.FOLDS[QueueCreated](state, env.payload, env)
    return cluster_fold.fold(state, env)


PLANTED = with_fold(PROJECTIONS, "cluster", planted_cluster_fold)


async def test_the_check_catches_a_fold_that_applies_a_refused_create(tmp_path: Path) -> None:
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log, ReadModels(log, tmp_path) as read_models:
        bench = Bench(log, read_models)
        await bench.start()
        created = await bench.request(QueueCreateRequested(queue="research", manifest=queue_manifest("research", 1)))
        expect(created, "QueueCreated")
        duplicate = await log.end_position()
        with pytest.raises(AssertionError) as caught:
            await bench.request(QueueCreateRequested(queue="research", manifest=queue_manifest("research", 7)),
                                projections=PLANTED)
        message = str(caught.value)
        assert message.startswith(
            f"projection 'cluster' changed across #{duplicate} QueueCreateRequested(research) "
            "(answered: QueueRequestRefused(research: create, queue already exists))"), message
        assert "'queues'['research']['weight']: 1 != 7" in message, message

        # The log is right, the planted fold is not: the real projections pass on it, and
        # folding it the planted way gives research the refused weight.
        answer = await check_requests_change_nothing(log, duplicate)
        expect(answer, "QueueRequestRefused", "queue already exists")
        planted, real = cluster_fold.initial(), cluster_fold.initial()
        for position, data in await records_of(log):
            env = decode_record(position, data)
            planted_cluster_fold(planted, env, data)
            cluster_fold.fold(real, env)
        assert (planted.queues["research"].weight, real.queues["research"].weight) == (7, 1)

        # On an accepted create the plant is caught by the other half of the check: folding
        # every record is not folding the facts alone.
        with pytest.raises(AssertionError, match=r"^projection 'cluster' applies the request #\d+ QueueCreateRequested"):
            await check_requests_change_nothing(log, created.request.position, projections=PLANTED)


# --- the fair-share example with a refused duplicate ------------------------------------------


async def simulate(tmp_path: Path, name: str, raw: dict):
    """The scenario through ``eventbatch.sim`` on an SQLite log; its events and read-model queues."""
    scenario_path = tmp_path / f"{name}.yaml"
    scenario_path.write_text(yaml.safe_dump(raw))
    async with open_log(f"sqlite:///{tmp_path}/{name}.db") as log:
        result = await run_scenario(load_scenario(str(scenario_path)), log=log, settings=Settings())
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
        async with ReadModelStore(tmp_path / f"{name}.views.db") as store:
            await Projector(log=log, store=store).catch_up()
            queues = {row.name: row for row in await store.rows("queue_view")}
    return result, events, queues


def binds(events: list[Envelope]) -> list[tuple[str, str]]:
    return [(e.payload.pod, e.payload.node) for e in events if e.type == "PodBound"]


async def test_a_refused_duplicate_queue_leaves_the_fair_share_of_the_example(tmp_path: Path) -> None:
    example = yaml.safe_load((ROOT / "examples" / "fair-share.yaml").read_text())
    [research] = [q for q in example["queues"] if q["metadata"]["name"] == "research"]
    weight = research["spec"]["weight"]
    duplicate = {**research, "spec": {**research["spec"], "weight": 7}}
    with_duplicate = {**example, "workload": [{"at": "0s", "apply": duplicate}, *example["workload"]]}

    plain, plain_events, plain_queues = await simulate(tmp_path, "plain", example)
    dup, dup_events, dup_queues = await simulate(tmp_path, "duplicate", with_duplicate)

    refusals = [e.payload for e in dup_events if e.type == "QueueRequestRefused"]
    assert [(r.queue, r.action, r.reason) for r in refusals] == [("research", "create", "queue already exists")]
    # the queue list (read models) and the scheduler's state keep the example's weight
    assert dup_queues["research"].weight == plain_queues["research"].weight == weight
    assert dup_queues == plain_queues
    scheduler = cluster_fold.initial()
    for env in dup_events:
        cluster_fold.fold(scheduler, env)
    assert scheduler.queues["research"].weight == weight
    # the same run: the same pods bound to the same nodes in the same order, the same report;
    # while both queues wait, research holds three times batch's CPUs (weights 1:3)
    assert binds(dup_events) == binds(plain_events)
    first_wave = [pod.split("/")[1].split("-")[0] for pod, _ in binds(dup_events)[:8]]
    assert (first_wave.count("batch"), first_wave.count("research")) == (2, 6)
    assert (dup.now, dup.stopped, dup.sessions) == (plain.now, plain.stopped, plain.sessions)
    assert dataclasses.asdict(build_report(dup_events, end=dup.now)) == dataclasses.asdict(
        build_report(plain_events, end=plain.now))

    # and the comparison can tell: had research weighed 7, the share would be another one
    heavier = {**example, "queues": [duplicate if q is research else q for q in example["queues"]]}
    _, heavier_events, _ = await simulate(tmp_path, "heavier", heavier)
    assert binds(heavier_events) != binds(plain_events)
