"""``ViewSet``: every read model folded together, with per-chunk change sets.

Where it sits: the pure heart of ``eventbatch.readmodels`` (which stores what
``flush`` returns) and of ``eventbatch replay --to/--at`` (which folds a prefix
and renders it). ``fold_records`` takes log records as stored (decoded by
``projections.views.wire``, which skips what no view shows); ``fold`` takes a
decoded envelope. One small function per event type
(``projections.views.folds``, a module per read model) updates the records of
``projections.views.state`` and marks the rows the event touches; ``flush``
renders only the final value of each touched row, so a chunk of events that
updates one row many times writes it once.

The audit timeline keeps each event's log position, under the job and the
queue it belongs to; the records are read from the log by position and
rendered when someone reads the timeline (``projections.views.audit``,
``eventbatch.readmodels.audit``), each decision's trigger with it.

Every row is a function of the log prefix alone: whether events arrive in one
chunk or many, the rows after the same position are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projections.jobs import HANDLER as JOB_CONTROLLER
from projections.views import wire
from projections.views.folds import FOLDS, generic
from projections.views.pods import PodViewRecord
from projections.views.render import Aggregates, node_row, pod_row, queue_row, resources_json
from projections.views.rows import JobRow, NodeRow, PodGroupRow, PodRow, PriorityClassRow, QueueRow
from projections.views.state import JobViewRecord, NodeViewRecord, PodGroupViewRecord, PodHoldRecord, QueueViewRecord
from schemas import events as ev
from schemas.envelope import Causation, Envelope
from schemas.events import REGISTRY, REQUESTS
from schemas.events.base import Event

# Records that change no job: requests (facts answer them) and refusals. They
# join the job's timeline but do not move its clock (``JobViewRecord.last_at``): a
# refused command must not change how long a running job is shown to have run.
CHANGE_NOTHING = REQUESTS | frozenset(tag for tag in REGISTRY if tag.endswith("Refused"))

Entries = dict[tuple[str, str], list[int]]


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
    # (scope, name) -> [position]: the events of each job and queue timeline
    audit: Entries = field(default_factory=dict)
    history: list[JobRow] = field(default_factory=list)  # final status of each removed job
    deleted: dict[str, list[str]] = field(default_factory=dict)  # table -> primary keys


class ViewSet:
    # False: a fold for ``replay --to/--at``, which renders the current rows once and
    # stores nothing: no timeline entries, no triggers, no history rows are kept, and
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
        self.queues: dict[str, QueueViewRecord] = {}
        self.nodes: dict[str, NodeViewRecord] = {}
        self.priority_classes: dict[str, PriorityClassRow] = {}
        self.groups: dict[str, PodGroupViewRecord] = {}
        self.groups_by_job: dict[str, dict[str, None]] = {}
        self.holds: dict[str, PodHoldRecord] = {}  # pods the cluster knows, by key
        self.holds_by_job: dict[str, dict[str, None]] = {}
        self.pods: dict[str, PodViewRecord] = {}  # PodView
        self.job_pods: dict[str, dict[str, None]] = {}  # job -> PodView keys requested
        self.jobs: dict[str, JobViewRecord] = {}
        self.pod_owner: dict[str, JobViewRecord] = {}
        self.last_answer: tuple[int, int] = (-1, -1)  # the job controller's latest (trigger, index)
        self._dirty_queues: set[str] = set()
        self._dirty_nodes: set[str] = set()
        self._dirty_priority: set[str] = set()
        self._dirty_groups: set[str] = set()
        self._dirty_jobs: set[str] = set()
        self._dirty_pods: set[str] = set()
        self._removed_pods: set[str] = set()
        # job (queue) -> [position, ...]: the timeline entries folded since the last flush
        self._audit_jobs: dict[str, list[int]] = {}
        self._audit_queues: dict[str, list[int]] = {}
        self._history: list[JobRow] = []

    # -- folding -----------------------------------------------------------

    def fold_records(self, chunk: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """Fold consecutive records; returns those that cannot be read here (the log codec
        cannot read them either: a record it decodes, this decodes too).

        ``_fold`` and ``_unschedulable`` written out in one loop: it runs once per record of a
        replay, and a call per record, with its arguments, costs as much as what most folds do."""
        decode, versions, errors = wire.DECODER.decode, wire.VERSIONS, wire.ERRORS
        folds, unread = FOLDS, []
        groups_get, jobs_get = self.groups.get, self.jobs.get
        dirty_groups, dirty_jobs = self._dirty_groups.add, self._dirty_jobs.add
        timelines = self.timelines
        audit_jobs, audit_queues = self._audit_jobs, self._audit_queues
        change_nothing = CHANGE_NOTHING
        latest = self.latest_at if self.latest_at is not None else -1
        for position, data in chunk:
            try:
                record = decode(data)
            except errors:
                unread.append((position, data))
                continue
            kind = record.type
            payload: Any = record.payload  # its fields are the event's; the checker cannot name the twin
            if type(payload).__name__ != kind or record.version != versions[kind]:
                unread.append((position, data))
                continue
            at = record.recorded_at
            if at > latest:
                latest = at
            if kind == "PodGroupUnschedulable":
                # In a busy log most records are one (every session reports each gang still
                # waiting): it changes one podgroup row and joins its job's timeline.
                name = payload.podgroup
                group = groups_get(name)
                if group is not None:
                    # most repeat the gang's last reason: its row changes only when the reason does
                    said, reason, message = group.unschedulable, payload.reason, payload.message
                    if said is None or said[0] != reason or said[1] != message:
                        group.unschedulable = (reason, message)
                        dirty_groups(name)
                job = payload.job
                if "/" not in job:
                    continue
                rec = jobs_get(job)
                if rec is not None:
                    rec.last_at = at
                    if rec.running_since is not None and rec.finished_at is None:
                        dirty_jobs(job)  # its running time moved on; nothing else of its row did
                if not timelines:
                    continue
                entries = audit_jobs.get(job)
                if entries is None:
                    audit_jobs[job] = [position]
                else:
                    entries.append(position)
                continue
            cause = record.causation
            jobs_see = True
            if cause is not None and cause.handler == JOB_CONTROLLER:
                mark = (cause.position, cause.index)
                if mark <= self.last_answer:
                    jobs_see = False  # a duplicate of a decision already folded
                else:
                    self.last_answer = mark
            step = folds.get(type(payload))
            job, queue = generic(self, payload) if step is None else step(self, payload, at, jobs_see)
            if job:
                dirty_jobs(job)
                rec = jobs_get(job)
                if rec is not None and kind not in change_nothing:
                    rec.last_at = at
            if not timelines:
                continue
            if job:
                entries = audit_jobs.get(job)
                if entries is None:
                    audit_jobs[job] = [position]
                else:
                    entries.append(position)
            if queue:
                entries = audit_queues.get(queue)
                if entries is None:
                    audit_queues[queue] = [position]
                else:
                    entries.append(position)
        if self.latest_at is not None:
            self.latest_at = latest
        if chunk:
            self.position = max(self.position, chunk[-1][0])
        return unread

    def fold(self, env: Envelope, data: bytes | None = None) -> None:
        """Fold a decoded envelope (``data``, its record, is not needed: timelines keep positions)."""
        if self.latest_at is not None and env.recorded_at > self.latest_at:
            self.latest_at = env.recorded_at
        if isinstance(env.payload, ev.PodGroupUnschedulable):
            self._unschedulable(env.payload, env.position, env.recorded_at)
        else:
            self._fold(env.type, env.payload, env.position, env.recorded_at, env.causation)

    def _fold(self, kind: str, e: Event, position: int, at: int, cause: Causation | None) -> None:
        jobs_see = True
        if cause is not None and cause.handler == JOB_CONTROLLER:
            mark = (cause.position, cause.index)
            if mark <= self.last_answer:
                jobs_see = False  # a duplicate of a decision already folded
            else:
                self.last_answer = mark
        step = FOLDS.get(type(e))
        job, queue = generic(self, e) if step is None else step(self, e, at, jobs_see)
        if not self.timelines:
            self.position = position
            if job:
                self._dirty_jobs.add(job)
                rec = self.jobs.get(job)
                if rec is not None and kind not in CHANGE_NOTHING:
                    rec.last_at = at
            return
        self.position = position
        if job:
            self._dirty_jobs.add(job)
            rec = self.jobs.get(job)
            if rec is not None and kind not in CHANGE_NOTHING:
                rec.last_at = at
            entries = self._audit_jobs.get(job)
            if entries is None:
                entries = self._audit_jobs[job] = []
            entries.append(position)
        if queue:
            entries = self._audit_queues.get(queue)
            if entries is None:
                entries = self._audit_queues[queue] = []
            entries.append(position)

    def _unschedulable(self, e: ev.PodGroupUnschedulable, position: int, at: int) -> None:
        """``_fold`` for PodGroupUnschedulable, written out: in a busy log most records are one
        (every session reports each gang still waiting). It changes one podgroup row and
        joins its job's timeline."""
        group = self.groups.get(e.podgroup)
        if group is not None:
            group.unschedulable = (e.reason, e.message)
            self._dirty_groups.add(e.podgroup)
        job = e.job if "/" in e.job else ""
        timelines = self.timelines
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

    def queue_of_job(self, job: str) -> str:
        rec = self.jobs.get(job) if job else None
        return (rec.manifest.spec.queue or "default") if rec is not None else ""

    # -- rendering -----------------------------------------------------------

    def flush(self) -> Changes:
        """The final value of every row touched since the last flush."""
        changes = Changes(position=self.position, audit=self._entries(), history=self._history)
        self._history = []
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
        self._history = []

    def _entries(self) -> Entries:
        """The timeline entries folded since the last flush: their positions, by (scope, name)."""
        out: Entries = {}
        for scope, pending in (("job", self._audit_jobs), ("queue", self._audit_queues)):
            for name, pairs in pending.items():
                out[(scope, name)] = pairs
            pending.clear()
        return out

    def snapshot_rows(self) -> Changes:
        """Every current row (no timeline): the views as of ``position``."""
        self._dirty_queues.update(self.queues)
        self._dirty_nodes.update(self.nodes)
        self._dirty_priority.update(self.priority_classes)
        self._dirty_groups.update(self.groups)
        self._dirty_jobs.update(self.jobs)
        pending = self._audit_jobs, self._audit_queues, self._history
        self._audit_jobs, self._audit_queues, self._history = {}, {}, []
        changes = self.flush()
        self._audit_jobs, self._audit_queues, self._history = pending
        return changes
