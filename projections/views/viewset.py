"""``ViewSet``: every read model folded together, with per-chunk change sets.

Where it sits: the pure heart of ``eventbatch.readmodels`` (which stores what
``flush`` returns) and of ``eventbatch replay --to/--at`` (which folds a prefix
and renders it). It folds each event into the same projections the handlers
decide on (``projections.cluster`` for nodes, queues, podgroups and pods;
``projections.jobs`` for Volcano's JobStatus) plus the pod timeline, marks the
rows the event touches, and at ``flush`` renders only the final value of each
touched row. A chunk of events that updates one row many times writes it once.

Every row is a function of the log prefix alone: whether events arrive in one
chunk or many, the rows after the same position are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from projections import cluster as cluster_fold
from projections import jobs as jobs_fold
from projections.views import audit
from projections.views.pods import PodLife, fold_pod
from projections.views.render import Aggregates, job_row, node_row, pod_row, podgroup_row, queue_row
from projections.views.rows import AuditRow, JobRow, NodeRow, PodGroupRow, PodRow, QueueRow
from schemas.envelope import Envelope

# How many recent events keep their one-line description, for the audit rows of
# the decisions that answer them (a decision lands close after its trigger).
RECENT_DETAILS = 20_000

_QUEUE_TYPES = frozenset(
    {"QueueCreated", "QueueUpdated", "QueueDeleteRequested", "QueueCommandIssued", "QueueStateChanged",
     "QueueDeleted", "QueueRequestRefused"}
)
# A queue's timeline: its jobs' submissions and phases, its podgroups' admission and
# phases. (PodGroupUnschedulable, repeated by every session a gang waits, is in the
# job's timeline only.)
_QUEUE_TIMELINE = frozenset(
    {"JobSubmitted", "JobPhaseChanged", "JobRemoved", "PodGroupCreated", "PodGroupEnqueued",
     "PodGroupPhaseChanged", "PodGroupDeleted"}
)
_NODE_TYPES = frozenset({"NodeAdded", "NodeUpdated", "NodeRemoved"})
# Events about a podgroup that change nothing its queue's row shows.
_QUEUE_QUIET = frozenset({"PodGroupUnschedulable"})


class _Plan:
    """What an event type carries, worked out once per type instead of per event."""

    __slots__ = ("job_field", "pod", "group", "node", "queue_event", "node_event", "queue_timeline", "queue_quiet")

    def __init__(self, kind: str, event: object) -> None:
        fields = getattr(type(event), "__struct_fields__", ())
        self.job_field = "job" if "job" in fields else "owner" if "owner" in fields else ""
        self.pod = kind.startswith("Pod") and "pod" in fields
        self.group = "podgroup" in fields
        self.node = "node" in fields
        self.queue_event = kind in _QUEUE_TYPES
        self.node_event = kind in _NODE_TYPES
        self.queue_timeline = kind in _QUEUE_TIMELINE
        self.queue_quiet = kind in _QUEUE_QUIET


_PLANS: dict[str, _Plan] = {}


def _plan_of(kind: str, event: object) -> _Plan:
    plan = _PLANS[kind] = _Plan(kind, event)
    return plan


@dataclass
class Changes:
    """What a chunk changed: rows to upsert, keys to delete, audit rows to add."""

    position: int  # the last position folded
    queues: list[QueueRow] = field(default_factory=list)
    jobs: list[JobRow] = field(default_factory=list)
    podgroups: list[PodGroupRow] = field(default_factory=list)
    pods: list[PodRow] = field(default_factory=list)
    nodes: list[NodeRow] = field(default_factory=list)
    audit: list[AuditRow] = field(default_factory=list)
    history: list[JobRow] = field(default_factory=list)  # final status of each removed job
    deleted: dict[str, list[str]] = field(default_factory=dict)  # table -> primary keys


class ViewSet:
    def __init__(self) -> None:
        self.position = -1
        self.cluster = cluster_fold.initial()
        self.jobs = jobs_fold.initial_state()
        self.pods: dict[str, PodLife] = {}
        self.job_pods: dict[str, dict[str, None]] = {}
        self.job_last_at: dict[str, int] = {}
        self.queue_parent: dict[str, str] = {}
        self.recent: dict[int, str] = {}
        self._dirty: dict[str, set[str]] = {t: set() for t in ("queues", "jobs", "podgroups", "pods", "nodes")}
        self._audit: list[AuditRow] = []
        self._removed_pods: set[str] = set()  # pods of removed jobs: their rows go too
        self._history: list[JobRow] = []

    # -- folding -----------------------------------------------------------

    def fold(self, env: Envelope) -> None:
        e = env.payload
        kind = env.type
        plan = _PLANS.get(kind) or _plan_of(kind, e)
        dirty = self._dirty
        job = getattr(e, plan.job_field) if plan.job_field else ""
        pod_key = e.pod if plan.pod else None
        before = None
        if pod_key is not None:
            if not job:
                life = self.pods.get(pod_key)
                job = life.job if life is not None else ""
            before = self.cluster.pods.get(pod_key)
            if before is not None and before.node:
                dirty["nodes"].add(before.node)
        if job and "/" not in job:
            job = ""
        group_name = e.podgroup if plan.group else (before.podgroup if before is not None else None)
        queue = self._queue_of_group(group_name) if group_name else ""
        if kind == "JobRemoved":
            final = job_row(self.jobs, e.job, self.job_last_at.get(e.job, env.recorded_at))
            if final is not None:
                self._history.append(final)
            self._job_removed(e.job)

        cluster_fold.fold(self.cluster, env)
        jobs_fold.fold(self.jobs, env)

        if pod_key is not None:
            pod = fold_pod(self.pods, env)
            if pod is not None:
                dirty["pods"].add(pod_key)
                job = job or pod.job
                if kind == "PodRequested":
                    self.job_pods.setdefault(pod.job, {})[pod_key] = None
                if plan.node:
                    dirty["nodes"].add(e.node)
        if group_name:
            dirty["podgroups"].add(group_name)
            now_in = self._queue_of_group(group_name)
            if queue and now_in and now_in != queue:
                dirty["queues"].add(queue)  # the podgroup moved (PodGroupUpdated)
            queue = now_in or queue
        if plan.queue_event:
            queue = e.queue
            if kind in ("QueueCreated", "QueueUpdated"):
                self.queue_parent[e.queue] = e.manifest.spec.parent
            elif kind == "QueueDeleted":
                self.queue_parent.pop(e.queue, None)
        elif plan.node_event:
            dirty["nodes"].add(e.node)
        if queue and not plan.queue_quiet:
            dirty["queues"].add(queue)
        if job:
            dirty["jobs"].add(job)
            self.job_last_at[job] = env.recorded_at
        if plan.queue_timeline:
            timeline_queue = queue or self._queue_of_job(job)
        else:
            timeline_queue = queue if plan.queue_event else ""
        self._record(env, job, timeline_queue)
        self.position = env.position

    def _queue_of_group(self, name: str) -> str:
        group = self.cluster.podgroups.get(name)
        return group.queue if group is not None else ""

    def _queue_of_job(self, job: str) -> str:
        rec = self.jobs.jobs.get(job) if job else None
        return (rec.manifest.spec.queue or "default") if rec is not None else ""

    def _job_removed(self, job: str) -> None:
        """Everything the job owned leaves memory; queues and nodes it used change."""
        for key in self.job_pods.pop(job, {}):
            self.pods.pop(key, None)
            self._removed_pods.add(key)
            record = self.cluster.pods.get(key)
            if record is not None and record.node:
                self._dirty["nodes"].add(record.node)
        for group in self.cluster.podgroups.values():
            if group.job == job:
                self._dirty["podgroups"].add(group.name)
                self._dirty["queues"].add(group.queue)
        self.job_last_at.pop(job, None)

    def _record(self, env: Envelope, job: str, queue: str | None) -> None:
        text = audit.detail(env)
        recent = self.recent
        recent[env.position] = text
        recent.pop(env.position - RECENT_DETAILS, None)  # positions are consecutive
        if not job and not queue:
            return
        cause = env.causation
        cause_detail = recent.get(cause.position, "") if cause is not None else ""
        common = (
            env.position, env.type, env.recorded_at, text,
            cause.position if cause is not None else None, cause.handler if cause is not None else "",
            cause_detail, audit.rule(env),
        )
        if job:
            self._audit.append(AuditRow("job", job, *common))
        if queue:
            self._audit.append(AuditRow("queue", queue, *common))

    # -- rendering -----------------------------------------------------------

    def flush(self) -> Changes:
        """The final value of every row touched since the last flush."""
        dirty = self._dirty
        changes = Changes(position=self.position, audit=self._audit, history=self._history)
        self._audit, self._history = [], []
        deleted = changes.deleted
        if dirty["queues"] or dirty["nodes"]:
            agg = Aggregates.of(self.cluster)
            for name in sorted(dirty["queues"]):
                queue = self.cluster.queues.get(name)
                if queue is None:
                    deleted.setdefault("queue_view", []).append(name)
                else:
                    changes.queues.append(queue_row(queue, self.queue_parent.get(name, ""), agg))
            for name in sorted(dirty["nodes"]):
                node = self.cluster.nodes.get(name)
                if node is None:
                    deleted.setdefault("node_view", []).append(name)
                else:
                    changes.nodes.append(node_row(node, agg))
        for name in sorted(dirty["podgroups"]):
            row = podgroup_row(self.cluster, name)
            if row is None:
                deleted.setdefault("podgroup_view", []).append(name)
            else:
                changes.podgroups.append(row)
        for key in sorted(dirty["jobs"]):
            row = job_row(self.jobs, key, self.job_last_at.get(key, 0))
            if row is None:
                deleted.setdefault("job_view", []).append(key)
            else:
                changes.jobs.append(row)
        for key in sorted(self._removed_pods):
            if key not in self.pods:
                deleted.setdefault("pod_view", []).append(key)
        self._removed_pods.clear()
        for key in sorted(dirty["pods"]):
            pod = self.pods.get(key)
            if pod is None:
                continue  # its job was removed, and the row with it
            changes.pods.append(pod_row(pod))
            if pod.phase == "Deleted" or (pod.finished_at is not None and key not in self.cluster.pods):
                del self.pods[key]  # gone from the cluster; the key stays listed under its job
        for table in dirty.values():
            table.clear()
        return changes

    # -- reading the state directly (replay --to/--at) --------------------------

    def snapshot_rows(self) -> Changes:
        """Every current row (no audit): the views as of ``position``."""
        for name in self.cluster.queues:
            self._dirty["queues"].add(name)
        for name in self.cluster.nodes:
            self._dirty["nodes"].add(name)
        for name in self.cluster.podgroups:
            self._dirty["podgroups"].add(name)
        for key in self.jobs.jobs:
            self._dirty["jobs"].add(key)
        pending_audit, pending_history = self._audit, self._history
        self._audit, self._history = [], []
        changes = self.flush()
        self._audit, self._history = pending_audit, pending_history
        return changes
