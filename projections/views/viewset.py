"""``ViewSet``: every read model folded together, with per-chunk change sets.

Where it sits: the pure heart of ``eventbatch.readmodels`` (which stores what
``flush`` returns) and of ``eventbatch replay --to/--at`` (which folds a prefix
and renders it). ``fold_records`` takes log records as stored (decoded by
``projections.views.wire``, which skips what no view shows); ``fold`` takes a
decoded envelope. One small function per event type updates the records of
``projections.views.state`` and marks the rows the event touches; ``flush``
renders only the final value of each touched row, so a chunk of events that
updates one row many times writes it once.

The audit timeline keeps each event's record as it is on the log, under the
job and the queue it belongs to; it is rendered when read
(``projections.views.audit``). A decision whose trigger belongs to another
timeline (or to none, as a scheduling request) keeps that trigger's record
too, so the timeline can say what answered what after the log is compacted.

Every row is a function of the log prefix alone: whether events arrive in one
chunk or many, the rows after the same position are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# The handlers' projections' own names and rules, so the two folds cannot drift apart.
from projections.cluster_model import DEFAULT_NODE_PODS, HOLDING, TERMINAL, add_into
from projections.job_records import FINAL_PHASES as FINAL_JOB_PHASES
from projections.jobs import HANDLER as JOB_CONTROLLER
from projections.views import wire
from projections.views.pods import APPLY as POD_LIFE, PodLife
from projections.views.render import Aggregates, node_row, pod_row, queue_row, resources_json
from projections.views.rows import JobRow, NodeRow, PodGroupRow, PodRow, PriorityClassRow, QueueRow
from projections.views.state import GroupLine, JobLine, JobPod, NodeLine, PodHold, QueueLine
from schemas.envelope import Causation, Envelope, encode_record
from schemas.events import REGISTRY, REQUESTS
from schemas.quantity import QuantityError, to_resources

# How many recent records are kept to find a decision's trigger in.
RECENT_RECORDS = 20_000

# Records that change no job: requests (facts answer them) and refusals. They
# join the job's timeline but do not move its clock (``JobLine.last_at``): a
# refused command must not change how long a running job is shown to have run.
CHANGE_NOTHING = REQUESTS | frozenset(tag for tag in REGISTRY if tag.endswith("Refused"))

Entries = dict[tuple[str, str], list[tuple[int, bytes]]]


@dataclass
class Changes:
    """What a chunk changed: rows to upsert, keys to delete, timeline entries to add."""

    position: int  # the last position folded
    queues: list[QueueRow] = field(default_factory=list)
    jobs: list[JobRow] = field(default_factory=list)
    podgroups: list[PodGroupRow] = field(default_factory=list)
    pods: list[PodRow] = field(default_factory=list)
    nodes: list[NodeRow] = field(default_factory=list)
    priority_classes: list[PriorityClassRow] = field(default_factory=list)
    # (scope, name) -> [(position, record)]: the events of each job and queue timeline
    audit: Entries = field(default_factory=dict)
    causes: dict[int, bytes] = field(default_factory=dict)  # triggers kept for other timelines
    history: list[JobRow] = field(default_factory=list)  # final status of each removed job
    deleted: dict[str, list[str]] = field(default_factory=dict)  # table -> primary keys



def _resources(quantities) -> dict[str, int]:
    try:
        return to_resources(quantities)
    except QuantityError:
        return {}


class ViewSet:
    # False: a fold for ``replay --to/--at``, which renders the current rows once and
    # stores nothing: no timeline entries, no trigger ring, no history rows are kept, and
    # ``drop_changes`` replaces ``flush`` (a class attribute: snapshots written before it
    # existed restore as timelines kept).
    timelines = True
    # The latest ``recorded_at`` folded so far (None: not known, a snapshot older than it).
    latest_at: int | None = None

    def __init__(self, *, timelines: bool = True) -> None:
        if not timelines:
            self.timelines = False
        self.latest_at = -1
        self.position = -1
        self.queues: dict[str, QueueLine] = {}
        self.nodes: dict[str, NodeLine] = {}
        self.priority_classes: dict[str, PriorityClassRow] = {}
        self.groups: dict[str, GroupLine] = {}
        self.groups_by_job: dict[str, dict[str, None]] = {}
        self.holds: dict[str, PodHold] = {}  # pods the cluster knows, by key
        self.holds_by_job: dict[str, dict[str, None]] = {}
        self.pods: dict[str, PodLife] = {}  # PodView
        self.job_pods: dict[str, dict[str, None]] = {}  # job -> PodView keys requested
        self.jobs: dict[str, JobLine] = {}
        self.pod_owner: dict[str, JobLine] = {}
        self.last_answer: tuple[int, int] = (-1, -1)  # the job controller's latest (trigger, index)
        # the latest records, by position modulo their number: (position, record, job, queue)
        self.recent: list[tuple[int, bytes, str, str] | None] = [None] * RECENT_RECORDS
        self._dirty_queues: set[str] = set()
        self._dirty_nodes: set[str] = set()
        self._dirty_priority: set[str] = set()
        self._dirty_groups: set[str] = set()
        self._dirty_jobs: set[str] = set()
        self._dirty_pods: set[str] = set()
        self._removed_pods: set[str] = set()
        self._audit_jobs: dict[str, list] = {}  # job -> [position, record, position, record, ...]
        self._audit_queues: dict[str, list] = {}
        self._causes: dict[int, bytes] = {}
        self._history: list[JobRow] = []

    # -- folding -----------------------------------------------------------

    def fold_records(self, chunk: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """Fold consecutive records; returns those that cannot be read here (the log codec
        cannot read them either: a record it decodes, this decodes too)."""
        # ``wire.decode`` written out: this loop runs once per record of a replay.
        decode, versions, errors = wire.DECODER.decode, wire.VERSIONS, wire.ERRORS
        fold, unschedulable, unread = self._fold, self._unschedulable, []
        latest = self.latest_at if self.latest_at is not None else -1
        for position, data in chunk:
            try:
                record = decode(data)
            except errors:
                unread.append((position, data))
                continue
            kind, payload = record.type, record.payload
            if type(payload).__name__ != kind or record.version != versions[kind]:
                unread.append((position, data))
                continue
            at = record.recorded_at
            if at > latest:
                latest = at
            if kind == "PodGroupUnschedulable":
                unschedulable(payload, position, at, record.causation, data)
            else:
                fold(kind, payload, position, at, record.causation, data)
        if self.latest_at is not None:
            self.latest_at = latest
        if chunk:
            self.position = max(self.position, chunk[-1][0])
        return unread

    def fold(self, env: Envelope, data: bytes | None = None) -> None:
        """Fold a decoded envelope (``data``: its record, encoded here if not given)."""
        record = encode_record(env) if data is None else data
        if self.latest_at is not None and env.recorded_at > self.latest_at:
            self.latest_at = env.recorded_at
        if env.type == "PodGroupUnschedulable":
            self._unschedulable(env.payload, env.position, env.recorded_at, env.causation, record)
        else:
            self._fold(env.type, env.payload, env.position, env.recorded_at, env.causation, record)

    def _fold(self, kind: str, e, position: int, at: int, cause: Causation | None, data: bytes) -> None:
        jobs_see = True
        if cause is not None and cause.handler == JOB_CONTROLLER:
            mark = (cause.position, cause.index)
            if mark <= self.last_answer:
                jobs_see = False  # a duplicate of a decision already folded
            else:
                self.last_answer = mark
        step = _FOLDS.get(kind)
        job, queue = _generic(self, e) if step is None else step(self, e, at, jobs_see)
        if not self.timelines:
            self.position = position
            if job:
                self._dirty_jobs.add(job)
                rec = self.jobs.get(job)
                if rec is not None and kind not in CHANGE_NOTHING:
                    rec.last_at = at
            return
        recent = self.recent
        recent[position % RECENT_RECORDS] = (position, data, job, queue)
        self.position = position
        if not job and not queue:
            return
        trigger = None
        if cause is not None:
            trigger = recent[cause.position % RECENT_RECORDS]
            if trigger is None or trigger[0] != cause.position:
                trigger = None
        if job:
            self._dirty_jobs.add(job)
            rec = self.jobs.get(job)
            if rec is not None and kind not in CHANGE_NOTHING:
                rec.last_at = at
            entries = self._audit_jobs.get(job)
            if entries is None:
                entries = self._audit_jobs[job] = []
            entries.append(position)
            entries.append(data)
            if trigger is not None and trigger[2] != job:
                self._causes[cause.position] = trigger[1]
        if queue:
            entries = self._audit_queues.get(queue)
            if entries is None:
                entries = self._audit_queues[queue] = []
            entries.append(position)
            entries.append(data)
            if trigger is not None and trigger[3] != queue:
                self._causes[cause.position] = trigger[1]

    def _unschedulable(self, e, position: int, at: int, cause: Causation | None, data: bytes) -> None:
        """``_fold`` for PodGroupUnschedulable, written out: in a busy log most records are one
        (every session reports each gang still waiting). It changes one podgroup row and
        joins its job's timeline; its trigger, a scheduling request, belongs to no timeline."""
        group = self.groups.get(e.podgroup)
        if group is not None:
            group.unschedulable = (e.reason, e.message)
            self._dirty_groups.add(e.podgroup)
        job = e.job if "/" in e.job else ""
        timelines = self.timelines
        if timelines:
            self.recent[position % RECENT_RECORDS] = (position, data, job, "")
        self.position = position
        if not job:
            return
        rec = self.jobs.get(job)
        if rec is not None:
            rec.last_at = at
            if rec.running_since is not None and rec.finished_at is None:
                self._dirty_jobs.add(job)  # its running time moved on; nothing else of its row did
        if not timelines:
            return
        entries = self._audit_jobs.get(job)
        if entries is None:
            entries = self._audit_jobs[job] = []
        entries.append(position)
        entries.append(data)
        if cause is not None:
            trigger = self.recent[cause.position % RECENT_RECORDS]
            if trigger is not None and trigger[0] == cause.position and trigger[2] != job:
                self._causes[cause.position] = trigger[1]

    def queue_of_job(self, job: str) -> str:
        rec = self.jobs.get(job) if job else None
        return (rec.manifest.spec.queue or "default") if rec is not None else ""

    # -- rendering -----------------------------------------------------------

    def flush(self) -> Changes:
        """The final value of every row touched since the last flush."""
        changes = Changes(position=self.position, audit=self._entries(), causes=self._causes, history=self._history)
        self._causes, self._history = {}, []
        deleted = changes.deleted
        if self._dirty_queues or self._dirty_nodes:
            agg = Aggregates.of(self.groups, self.holds)
            for name in sorted(self._dirty_queues):
                queue = self.queues.get(name)
                if queue is None:
                    deleted.setdefault("queue_view", []).append(name)
                else:
                    changes.queues.append(queue_row(queue, queue.parent, agg))
            for name in sorted(self._dirty_nodes):
                node = self.nodes.get(name)
                if node is None:
                    deleted.setdefault("node_view", []).append(name)
                else:
                    changes.nodes.append(node_row(node, agg))
        for name in sorted(self._dirty_priority):
            pc = self.priority_classes.get(name)
            if pc is None:
                deleted.setdefault("priority_class_view", []).append(name)
            else:
                changes.priority_classes.append(pc)
        for name in sorted(self._dirty_groups):
            group = self.groups.get(name)
            if group is None:
                deleted.setdefault("podgroup_view", []).append(name)
                continue
            waiting = ""
            if group.unschedulable is not None and group.phase == "Pending":
                reason, message = group.unschedulable
                waiting = f"{reason}: {message}" if message else reason
            changes.podgroups.append(PodGroupRow(
                name=name, job=group.job, queue=group.queue, phase=group.phase, min_member=group.min_member,
                min_resources=resources_json(group.min_resources), created_at=group.created_at,
                unschedulable=waiting,
            ))
        for key in sorted(self._dirty_jobs):
            rec = self.jobs.get(key)
            if rec is None:
                deleted.setdefault("job_view", []).append(key)
            else:
                changes.jobs.append(rec.row())
        for key in sorted(self._removed_pods):
            if key not in self.pods:
                deleted.setdefault("pod_view", []).append(key)
        for key in sorted(self._dirty_pods):
            pod = self.pods.get(key)
            if pod is None:
                continue  # its job was removed, and the row with it
            changes.pods.append(pod_row(pod))
            if pod.phase == "Deleted" or (pod.finished_at is not None and key not in self.holds):
                del self.pods[key]  # gone from the cluster; the key stays listed under its job
        for dirty in (self._dirty_queues, self._dirty_nodes, self._dirty_priority, self._dirty_groups,
                      self._dirty_jobs, self._dirty_pods, self._removed_pods):
            dirty.clear()
        return changes

    def drop_changes(self) -> None:
        """``flush`` without rendering: forget what changed (the fold state is the same as after
        a ``flush``), for a fold that renders its rows once at the end (``replay --to``)."""
        pods, holds = self.pods, self.holds
        for key in self._dirty_pods:
            pod = pods.get(key)
            if pod is not None and (pod.phase == "Deleted" or (pod.finished_at is not None and key not in holds)):
                del pods[key]
        for dirty in (self._dirty_queues, self._dirty_nodes, self._dirty_priority, self._dirty_groups,
                      self._dirty_jobs, self._dirty_pods, self._removed_pods):
            dirty.clear()
        self._audit_jobs.clear()
        self._audit_queues.clear()
        self._causes, self._history = {}, []

    def _entries(self) -> Entries:
        """The timeline entries folded since the last flush, as (position, record) pairs."""
        out: Entries = {}
        for scope, pending in (("job", self._audit_jobs), ("queue", self._audit_queues)):
            for name, flat in pending.items():
                out[(scope, name)] = list(zip(flat[::2], flat[1::2], strict=True))
            pending.clear()
        return out

    def snapshot_rows(self) -> Changes:
        """Every current row (no timeline): the views as of ``position``."""
        self._dirty_queues.update(self.queues)
        self._dirty_nodes.update(self.nodes)
        self._dirty_priority.update(self.priority_classes)
        self._dirty_groups.update(self.groups)
        self._dirty_jobs.update(self.jobs)
        pending = self._audit_jobs, self._audit_queues, self._causes, self._history
        self._audit_jobs, self._audit_queues, self._causes, self._history = {}, {}, {}, []
        changes = self.flush()
        self._audit_jobs, self._audit_queues, self._causes, self._history = pending
        return changes


# --- one fold per event type: each returns the (job, queue) timelines it belongs to ---------

Fold = Callable[[ViewSet, object, int, bool], tuple[str, str]]
_JOB_FIELDS: dict[type, str] = {}


def _generic(v: ViewSet, e) -> tuple[str, str]:
    """An event no view reads: it only joins the timeline of the job it names."""
    kind = type(e)
    name = _JOB_FIELDS.get(kind)
    if name is None:
        fields = getattr(kind, "__struct_fields__", ())
        name = _JOB_FIELDS[kind] = "job" if "job" in fields else "owner" if "owner" in fields else ""
    job = getattr(e, name) if name else ""
    return (job if "/" in job else ""), ""


def _node_upsert(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    node = v.nodes.get(e.node)
    if node is None:
        node = v.nodes[e.node] = NodeLine(e.node)
    status = e.manifest.status
    node.allocatable = _resources(status.allocatable or status.capacity)
    node.allocatable.setdefault("pods", DEFAULT_NODE_PODS)
    node.unschedulable = e.manifest.spec.unschedulable
    v._dirty_nodes.add(e.node)
    return "", ""


def _node_removed(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    v.nodes.pop(e.node, None)
    v._dirty_nodes.add(e.node)
    return "", ""


def _queue_upsert(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    queue = v.queues.get(e.queue)
    if queue is None:
        queue = v.queues[e.queue] = QueueLine(e.queue)
        if e.manifest.status is not None and e.manifest.status.state:
            queue.state = e.manifest.status.state
    spec = e.manifest.spec
    queue.weight = max(spec.weight, 1)
    queue.capability = _resources(spec.capability)
    queue.guarantee = _resources(spec.guarantee.resource)
    queue.deserved = _resources(spec.deserved)
    queue.parent = spec.parent
    v._dirty_queues.add(e.queue)
    return "", e.queue


def _priority_added(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    v.priority_classes[e.name] = PriorityClassRow(e.name, e.value, e.global_default)
    v._dirty_priority.add(e.name)
    return "", ""


def _priority_removed(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    v.priority_classes.pop(e.name, None)
    v._dirty_priority.add(e.name)
    return "", ""


def _queue_state(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    queue = v.queues.get(e.queue)
    if queue is not None:
        queue.state = e.state
    v._dirty_queues.add(e.queue)
    return "", e.queue


def _queue_deleted(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    v.queues.pop(e.queue, None)
    v._dirty_queues.add(e.queue)
    return "", e.queue


def _queue_other(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    v._dirty_queues.add(e.queue)
    return "", e.queue


# --- podgroups ---------------------------------------------------------------------


def _group_upsert(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    group = v.groups.get(e.podgroup)
    before = ""
    if group is None:
        group = v.groups[e.podgroup] = GroupLine(e.podgroup, at)
        status = e.manifest.status
        if status is not None and status.phase:
            group.phase = status.phase
    else:
        before = group.queue
        if group.job != e.job:
            v.groups_by_job.get(group.job, {}).pop(e.podgroup, None)
    spec = e.manifest.spec
    group.job = e.job
    group.queue = spec.queue or "default"
    group.min_member = spec.min_member
    group.min_resources = dict(e.min_resources)
    v.groups_by_job.setdefault(e.job, {})[e.podgroup] = None
    v._dirty_groups.add(e.podgroup)
    if before and before != group.queue:
        v._dirty_queues.add(before)
    v._dirty_queues.add(group.queue)
    return _job(e.job), group.queue


def _group_deleted(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    group = v.groups.pop(e.podgroup, None)
    v._dirty_groups.add(e.podgroup)
    if group is None:
        return _job(e.job), ""
    v.groups_by_job.get(group.job, {}).pop(e.podgroup, None)
    v._dirty_queues.add(group.queue)
    return _job(e.job), group.queue


def _group_enqueued(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    group = v.groups.get(e.podgroup)
    v._dirty_groups.add(e.podgroup)
    if group is None:
        return _job(e.job), ""
    if group.phase == "Pending":
        group.phase = "Inqueue"
    v._dirty_queues.add(group.queue)
    return _job(e.job), group.queue


def _group_phase(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    group = v.groups.get(e.podgroup)
    v._dirty_groups.add(e.podgroup)
    if group is None:
        return _job(e.job), ""
    if not e.previous or e.previous == group.phase:
        group.phase = e.phase
    v._dirty_queues.add(group.queue)
    return _job(e.job), group.queue


def _job(name: str) -> str:
    return name if "/" in name else ""


# --- jobs ---------------------------------------------------------------------------


def _job_created(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
    if jobs_see and e.job not in v.jobs:
        v.jobs[e.job] = JobLine(e.job, e.manifest, at)
    job = _job(e.job)
    return job, v.queue_of_job(job)


def _job_updated(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
    rec = v.jobs.get(e.job)
    if jobs_see and rec is not None:
        rec.manifest = e.manifest
    return _job(e.job), ""


def _job_phase(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
    rec = v.jobs.get(e.job)
    if jobs_see and rec is not None:
        rec.phase, rec.reason, rec.message, rec.transition_at = e.phase, e.reason, e.message, at
        rec.retry_count, rec.version = e.retry_count, e.version
        rec.conditions.append((e.phase, at))
        if e.phase == "Running" and rec.running_since is None:
            rec.running_since = at
        if e.phase in FINAL_JOB_PHASES:
            rec.finished_at = at
    job = _job(e.job)
    return job, v.queue_of_job(job)


def _job_removed(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
    """The job and everything it owns leave memory; the queues and nodes it used change."""
    job = e.job
    queue = v.queue_of_job(job)
    rec = v.jobs.get(job)
    if rec is not None:
        if v.timelines:
            v._history.append(rec.row())
        if jobs_see:
            del v.jobs[job]
            for key in rec.pods:
                v.pod_owner.pop(key, None)
    for key in v.job_pods.pop(job, {}):
        v.pods.pop(key, None)
        v._removed_pods.add(key)
    for key in list(v.holds_by_job.pop(job, {})):
        pod = v.holds.get(key)
        if pod is not None:
            _drop(v, pod)
    for name in v.groups_by_job.pop(job, {}):
        group = v.groups.pop(name, None)
        if group is not None:
            v._dirty_groups.add(name)
            v._dirty_queues.add(group.queue)
    return _job(job), queue


# --- pods -------------------------------------------------------------------------


def _release(v: ViewSet, pod: PodHold) -> None:
    """What ``pod`` holds on its node goes back (the cluster projection's ``_release``)."""
    if pod.status in HOLDING and pod.node:
        node = v.nodes.get(pod.node)
        if node is not None:
            add_into(node.used, pod.requests, -1)


def _drop(v: ViewSet, pod: PodHold) -> None:
    _release(v, pod)
    if pod.node:
        v._dirty_nodes.add(pod.node)
    del v.holds[pod.key]
    v.holds_by_job.get(pod.job, {}).pop(pod.key, None)
    _touch_queue(v, pod)


def _touch_queue(v: ViewSet, pod: PodHold) -> None:
    group = v.groups.get(pod.podgroup)
    if group is not None:
        v._dirty_groups.add(pod.podgroup)
        v._dirty_queues.add(group.queue)


def _pod_life(v: ViewSet, kind: str, e, at: int) -> str:
    """The PodView part of a pod event; returns the pod's job."""
    life = v.pods.get(e.pod)
    if life is None:
        return ""
    POD_LIFE[kind](life, e, at)
    v._dirty_pods.add(e.pod)
    return life.job


def _pod_requested(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
    key = e.pod
    # PodView: a new life, whatever came before
    v.pods[key] = PodLife(key, e.job, e.podgroup, e.task, at)
    v.job_pods.setdefault(e.job, {})[key] = None
    v._dirty_pods.add(key)
    # the cluster: a pod that still holds a node is not requested again
    pod = v.holds.get(key)
    if pod is None or pod.status == "Pending" or pod.status in TERMINAL:
        if pod is None:
            pod = v.holds[key] = PodHold(key)
        elif pod.node:
            v._dirty_nodes.add(pod.node)
        pod.status, pod.node = "Pending", ""
        pod.job, pod.podgroup = e.job, e.podgroup
        requests = dict(e.requests)
        if requests.get("pods", 0) < 1:
            requests["pods"] = 1
        pod.requests = requests
        v.holds_by_job.setdefault(e.job, {})[key] = None
    _touch_queue(v, pod)
    # the job controller
    if jobs_see:
        rec = v.jobs.get(e.job)
        if rec is not None:
            rec.put(key, JobPod(e.task))
            v.pod_owner[key] = rec
    return _job(e.job), ""


def _place(status: str, kind: str) -> Fold:
    def fold(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
        job = _pod_life(v, kind, e, at)
        pod = v.holds.get(e.pod)
        node = v.nodes.get(e.node)
        if pod is not None:
            if node is not None and pod.status in ("Pending", "Pipelined"):
                pod.status, pod.node = status, e.node
                if status == "Bound":
                    add_into(node.used, pod.requests)
                    v._dirty_nodes.add(e.node)
            _touch_queue(v, pod)
        return _job(e.job) or job, ""

    return fold


def _pod_started(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
    job = _pod_life(v, "PodStarted", e, at)
    pod = v.holds.get(e.pod)
    if pod is not None and pod.status not in TERMINAL and pod.status != "Running":
        if pod.status == "Bound" and pod.node == e.node:
            pod.status = "Running"
        else:  # started somewhere it was not put (or before the bind was seen): adopted there
            releasing = pod.status == "Releasing"
            _release(v, pod)
            if pod.node:
                v._dirty_nodes.add(pod.node)
            pod.node = e.node
            pod.status = "Releasing" if releasing else "Running"
            node = v.nodes.get(e.node)
            if node is not None:
                add_into(node.used, pod.requests)
            v._dirty_nodes.add(e.node)
        _touch_queue(v, pod)
    _job_pod_phase(v, e, jobs_see, "Running", always=True)
    return _job(e.job) or job, ""


def _finished(phase: str) -> Fold:
    kind = {"Succeeded": "PodSucceeded", "Failed": "PodFailed"}.get(phase)

    def fold(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
        job = _pod_life(v, kind or "PodEvicted", e, at)
        pod = v.holds.get(e.pod)
        if pod is not None and pod.status not in TERMINAL:
            _release(v, pod)
            if pod.node:
                v._dirty_nodes.add(pod.node)
            pod.status = "Succeeded" if phase == "Succeeded" else "Failed"
            _touch_queue(v, pod)
        if kind is not None:
            _job_pod_phase(v, e, jobs_see, phase, always=True)
        return _job(e.job) or job, ""

    return fold


def _pod_deleted(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
    job = _pod_life(v, "PodDeleted", e, at)
    pod = v.holds.get(e.pod)
    if pod is not None:
        _drop(v, pod)
    if jobs_see:
        rec = v.pod_owner.get(e.pod)
        if rec is not None and v.jobs.get(rec.key) is rec:
            jp = rec.pods.pop(e.pod, None)
            if jp is not None:
                rec.count(jp, -1)
                v.pod_owner.pop(e.pod, None)
    return _job(e.job) or job, ""


def _pod_bind_failed(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
    job = _pod_life(v, "PodBindFailed", e, at)
    pod = v.holds.get(e.pod)
    if pod is not None and pod.status == "Bound" and pod.node == e.node:
        _release(v, pod)
        v._dirty_nodes.add(pod.node)
        pod.status, pod.node = "Pending", ""
        _touch_queue(v, pod)
    return _job(e.job) or job, ""


def _deletion_requested(kind: str) -> Fold:
    def fold(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
        job = _pod_life(v, kind, e, at) if kind in POD_LIFE else ""
        pod = v.holds.get(e.pod)
        if pod is not None and pod.status not in TERMINAL and pod.status != "Releasing":
            if pod.status not in HOLDING:
                _release(v, pod)
                pod.node = ""
            pod.status = "Releasing"
            _touch_queue(v, pod)
        if kind == "PodDeletionRequested" and jobs_see:
            rec = v.jobs.get(e.job)
            jp = rec.pods.get(e.pod) if rec is not None else None
            if jp is not None:
                rec.put(e.pod, JobPod(jp.task, jp.phase, True))
        if not job and pod is not None:
            job = pod.job
        return _job(e.job) or _job(job), ""

    return fold


def _observed(kind: str, phase: str | None) -> Fold:
    """A pod observation that changes the PodView and, maybe, the job controller's phase."""
    life = kind in POD_LIFE

    def fold(v: ViewSet, e, at: int, jobs_see: bool) -> tuple[str, str]:
        job = _pod_life(v, kind, e, at) if life else ""
        if phase is not None:
            _job_pod_phase(v, e, jobs_see, phase, always=kind != "PodReady")
        if not job:
            pod = v.holds.get(e.pod)
            job = pod.job if pod is not None else ""
        return _job(e.job) or _job(job), ""

    return fold


def _job_pod_phase(v: ViewSet, e, jobs_see: bool, phase: str, *, always: bool) -> None:
    """The job controller's view of a pod observation (``projections.job_apply``)."""
    if not jobs_see:
        return
    rec = v.pod_owner.get(e.pod)
    if rec is None or v.jobs.get(rec.key) is not rec:
        return
    jp = rec.pods.get(e.pod)
    if jp is None or jp.phase == phase or (not always and jp.phase != "Pending"):
        return
    rec.count(jp, -1)
    jp.phase = phase
    rec.count(jp, 1)


_FOLDS: dict[str, Fold] = {
    "NodeAdded": _node_upsert,
    "NodeUpdated": _node_upsert,
    "NodeRemoved": _node_removed,
    "PriorityClassAdded": _priority_added,
    "PriorityClassRemoved": _priority_removed,
    "QueueCreated": _queue_upsert,
    "QueueUpdated": _queue_upsert,
    "QueueStateChanged": _queue_state,
    "QueueDeleted": _queue_deleted,
    "QueueCreateRequested": _queue_other,
    "QueueUpdateRequested": _queue_other,
    "QueueDeleteRequested": _queue_other,
    "QueueCommandRequested": _queue_other,
    "QueueRequestRefused": _queue_other,
    "PodGroupCreated": _group_upsert,
    "PodGroupUpdated": _group_upsert,
    "PodGroupDeleted": _group_deleted,
    "PodGroupEnqueued": _group_enqueued,
    "PodGroupPhaseChanged": _group_phase,
    "JobCreated": _job_created,
    "JobUpdated": _job_updated,
    "JobPhaseChanged": _job_phase,
    "JobRemoved": _job_removed,
    "PodRequested": _pod_requested,
    "PodBound": _place("Bound", "PodBound"),
    "PodPipelined": _place("Pipelined", "PodPipelined"),
    "PodStarted": _pod_started,
    "PodSucceeded": _finished("Succeeded"),
    "PodFailed": _finished("Failed"),
    "PodEvicted": _finished("Evicted"),
    "PodDeleted": _pod_deleted,
    "PodBindFailed": _pod_bind_failed,
    "PodDeletionRequested": _deletion_requested("PodDeletionRequested"),
    "PodEvictionRequested": _deletion_requested("PodEvictionRequested"),
    "PodReady": _observed("PodReady", "Running"),
    "PodUnknown": _observed("PodUnknown", "Unknown"),
    "PodRestarted": _observed("PodRestarted", None),
    "PodCreated": _observed("PodCreated", None),
}
