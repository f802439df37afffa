"""The status writer: Job, Queue, PodGroup, CronJob and pod status, folded from the log, written back; and the Events about them.

Where it sits: beside the actuator in ``--cluster kube``. It folds every
event into the read models' own fold (``projections.views.ViewSet``, no
timelines) and renders each object's status from the rows the read models
show (``projections.views.render``): a Job's ``status`` is its JobView row's
Volcano JobStatus, the JSON ``eventbatch job view -o json`` prints under
``status`` (state, conditions one per phase, runningDuration,
controlledResources, retryCount, minAvailable, taskStatusCount, the counts);
a PodGroup's is its PodGroupView row's phase, its job's running, succeeded
and failed pods and Volcano's conditions (``Unschedulable`` with the
scheduler's reason and message, the ones ``eventbatch why`` prints,
``Scheduled`` once the gang runs; one of each type, the latest replacing
the one before, as Volcano's ``UpdatePodGroupCondition`` does); a Queue's is
its QueueView row's state, podgroup counts by phase and ``allocated``.
``tests/integration/test_views_oracle.py`` holds these to the statuses
rendered from the handlers' projections. It folds the CronJob controller's
facts as the controller does (``handlers.cronjob``: ``active``,
``lastScheduleTime``, ``lastSuccessfulTime``).

A pod its gang keeps waiting gets ``PodScheduled=False`` with reason
``Unschedulable`` and the gang's message, as kube-scheduler and Volcano set
it; ``True`` again when it binds (the binding sets it too, on the API
server).

It patches the ``status`` subresource of each object whose status changed
(a JSON patch replacing ``/status`` whole, so no stale count survives; a
pod's ``PodScheduled`` condition by strategic merge, which leaves the
kubelet's conditions alone). A burst of changes to one object is written
once (at most every ``min_interval_ms``). Status is derived, never
appended: after a restart it is written again. Objects that came from the
API server are written (a uid on the log), and the Jobs a CronJob object
started, whose objects the actuator creates (``eventbatch.kube.cronjobs``).

Events (core/v1, ``eventbatch.kube.events``) tell ``kubectl describe``
readers what was decided, for what is folded once the writer has caught up
with the log (a restart does not post the past again): ``Scheduled`` on a
pod (``Successfully assigned ns/pod to node``), ``Preempted`` (by whom) or
``Evicted`` on a pod with the rule, a Job's phase changes, and on a PodGroup
``Scheduled`` and ``Unschedulable``. ``Unschedulable`` is rate-limited as
client-go's event spam filter does for kube-scheduler: per object, a burst
of 25, then one every 5 minutes (log time); a message unchanged since the
last one posted is not posted again within those 5 minutes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.client import JSON_PATCH, STRATEGIC, Connection
from eventbatch.kube.crds import Groups, groups
from eventbatch.kube.cronjobs import cronjob_owner_uid
from eventbatch.kube.events import post_event
from eventbatch.reactor import Reactor
from handlers.cronjob.handler import FOLDS as CRONJOB_FOLDS
from handlers.cronjob.handler import CronJobsState, cronjob_status
from projections.dispatch import FoldTable
from projections.job_status import rfc3339
from projections.views import ViewSet
from projections.views.render import job_status_object, podgroup_status_object, queue_status_object
from projections.views.rows import JobRow, PodGroupRow, QueueRow
from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    JobPhaseChanged,
    JobRemoved,
    JobUpdated,
    PodBound,
    PodEvictionRequested,
    PodGroupCreated,
    PodGroupDeleted,
    PodGroupPhaseChanged,
    PodGroupUnschedulable,
    PodGroupUpdated,
    QueueCreated,
    QueueDeleted,
    QueueUpdated,
)

log = logging.getLogger(__name__)

KINDS = {"jobs": "Job", "podgroups": "PodGroup", "queues": "Queue", "cronjobs": "CronJob"}
# Volcano's gang plugin: the reason of a PodGroup's Scheduled condition, the message of its Scheduled event
SCHEDULED_REASON = "tasks in gang are ready to be scheduled"
PODGROUP_READY = "pod group is ready"
# client-go's EventCorrelator spam filter, as kube-scheduler records with it: per object, a burst
# of 25 events, refilled at one per 5 minutes.
SPAM_BURST = 25
SPAM_REFILL_MS = 300_000


@dataclass
class StatusStats:
    written: int = 0
    skipped: int = 0
    failures: int = 0
    events: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass
class PendingEvent:
    """A core/v1 Event to post: about (kind, key), at log time ``at``."""

    kind: str  # Pod / Job / PodGroup
    key: str  # namespace/name
    reason: str
    message: str
    type: str
    at: int


@dataclass
class SpamBucket:
    """client-go's spam filter for one object: tokens left, refilled with log time."""

    tokens: float = SPAM_BURST
    refilled_at: int = 0
    message: str = ""
    posted_at: int = -SPAM_REFILL_MS


class KubeStatusWriter(Reactor):
    name = "kube-status"

    def __init__(
        self,
        *,
        connection: Connection,
        concurrency: int = 8,
        min_interval_ms: int = 200,
        api_groups: Groups | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connection = connection
        self.api_groups = api_groups or groups()  # the custom resources' API groups (Settings.api_groups)
        self.concurrency = concurrency
        self.min_interval_ms = min_interval_ms  # one object's status is written at most this often
        self.last_write: dict[tuple[str, str], int] = {}
        self.views = ViewSet(timelines=False)  # the read models' fold: the rows statuses are rendered from
        self.unflushed = False  # events folded into ``views`` since the rows were last rendered
        self.api_jobs: dict[str, str] = {}  # jobs with an object on the API server -> its uid ("" for a CronJob's)
        self.api_queues: set[str] = set()
        self.api_podgroups: set[str] = set()  # PodGroups with an object of their own (other operators')
        self.job_rows: dict[str, JobRow] = {}
        self.group_rows: dict[str, PodGroupRow] = {}
        self.queue_rows: dict[str, QueueRow] = {}
        self.conditions: dict[str, dict[str, dict[str, str]]] = {}  # podgroup -> type -> Volcano's condition
        self.pod_scheduled: dict[str, dict[str, str]] = {}  # pod -> its PodScheduled condition as written here
        self.cron = CronJobsState()  # the CronJob controller's fold, for cronjob_status
        self.dirty: dict[tuple[str, str], int] = {}  # (kind, key) -> not before (clock ms)
        self.written: dict[tuple[str, str], dict[str, Any]] = {}
        self.live = False  # caught up with the log once: what is folded from here on is posted as Events
        self.outbox: list[PendingEvent] = []
        self.spam: dict[str, SpamBucket] = {}
        self.uids: dict[tuple[str, str], str] = {}  # (kind, key) -> the object's uid, for Events
        self.stats = StatusStats()

    async def catch_up(self) -> int:
        count = await super().catch_up()
        self.live = True
        return count

    # -- fold -------------------------------------------------------------------

    def _touch(self, kind: str, key: str) -> None:
        last = self.last_write.get((kind, key))
        self.dirty.setdefault((kind, key), 0 if last is None else last + self.min_interval_ms)

    def fold(self, envelope: Envelope) -> bool:
        self._fold_cron(envelope)
        self.views.fold(envelope)
        self.unflushed = True
        apply = _FOLDS.get(type(envelope.payload))
        if apply is not None:
            apply(self, envelope.payload, envelope)
        return True

    def _fold_cron(self, envelope: Envelope) -> None:
        """The CronJob controller's fold; the CronJob whose status the event may change is marked."""
        e = envelope.payload
        step = CRONJOB_FOLDS.get(type(e))
        if step is None:
            return
        job = getattr(e, "job", "")
        key = getattr(e, "cronjob", "") or (self.cron.owner_of.get(job, "") if job else "")
        step(self.cron, e, envelope)
        if not key:
            return
        if key in self.cron.cronjobs:
            self._touch("cronjobs", key)
        else:
            self.dirty.pop(("cronjobs", key), None)

    def _post(self, kind: str, key: str, reason: str, message: str, at: int, type_: str = "Normal") -> None:
        if self.live:
            self.outbox.append(PendingEvent(kind, key, reason, message, type_, at))

    def _post_unschedulable(self, key: str, message: str, at: int) -> None:
        """client-go's spam filter: a token per event, SPAM_BURST at most, one more every SPAM_REFILL_MS."""
        bucket = self.spam.setdefault(key, SpamBucket(refilled_at=at))
        bucket.tokens = min(SPAM_BURST, bucket.tokens + (at - bucket.refilled_at) / SPAM_REFILL_MS)
        bucket.refilled_at = at
        if message == bucket.message and at - bucket.posted_at < SPAM_REFILL_MS:
            return  # the same as the last one, which the reader still sees
        if bucket.tokens < 1 or not self.live:
            return
        bucket.tokens -= 1
        bucket.message, bucket.posted_at = message, at
        self._post("PodGroup", key, "Unschedulable", message, at, "Warning")

    # -- rendering ---------------------------------------------------------------

    def _render(self) -> None:
        """The rows changed since the last render, as the read models render them; the objects
        whose status they change are marked."""
        self.unflushed = False
        changes = self.views.flush()
        # A row the fold handed back unchanged (a refused request touches its job's row
        # without changing it) writes nothing: only a changed status is written again.
        for job in changes.jobs:
            if self.job_rows.get(job.key) == job:
                continue
            self.job_rows[job.key] = job
            if job.key in self.api_jobs:
                self._touch("jobs", job.key)
                for name in self.views.groups_by_job.get(job.key, {}):
                    self._touch("podgroups", name)
        for group in changes.podgroups:
            if self.group_rows.get(group.name) == group:
                continue
            self.group_rows[group.name] = group
            self._touch("podgroups", group.name)
        for queue in changes.queues:
            if self.queue_rows.get(queue.name) == queue:
                continue
            self.queue_rows[queue.name] = queue
            if queue.name in self.api_queues:
                self._touch("queues", queue.name)
        for table, rows, kind in (("job_view", self.job_rows, "jobs"), ("podgroup_view", self.group_rows, "podgroups"),
                                  ("queue_view", self.queue_rows, "queues")):
            for key in changes.deleted.get(table, []):
                rows.pop(key, None)
                self.dirty.pop((kind, key), None)
                if kind == "podgroups":
                    self.conditions.pop(key, None)
                    self.spam.pop(key, None)

    # -- the statuses -------------------------------------------------------------

    def job_status(self, key: str) -> dict[str, Any] | None:
        row = self.job_rows.get(key)
        return job_status_object(row) if row is not None and key in self.api_jobs else None

    def podgroup_status(self, key: str) -> dict[str, Any] | None:
        row = self.group_rows.get(key)
        if row is None or not self.is_api_podgroup(key, row.job):
            return None
        return podgroup_status_object(row, self.job_rows.get(row.job), list(self.conditions.get(key, {}).values()))

    def is_api_podgroup(self, key: str, job: str) -> bool:
        return job in self.api_jobs or key in self.api_podgroups

    def queue_status(self, name: str) -> dict[str, Any] | None:
        row = self.queue_rows.get(name)
        return queue_status_object(row) if row is not None and name in self.api_queues else None

    def cronjob_status(self, key: str) -> dict[str, Any] | None:
        record = self.cron.cronjobs.get(key)
        if record is None or not record.manifest.metadata.uid:  # a CronJob on the log alone has no object
            return None
        return cronjob_status(self.cron, key)

    def pod_status(self, key: str) -> dict[str, Any] | None:
        condition = self.pod_scheduled.get(key)
        return {"conditions": [condition]} if condition is not None else None

    def status_of(self, kind: str, key: str) -> dict[str, Any] | None:
        if self.unflushed:
            self._render()
        return {
            "jobs": self.job_status, "podgroups": self.podgroup_status, "queues": self.queue_status,
            "cronjobs": self.cronjob_status, "pods": self.pod_status,
        }[kind](key)

    # -- writing ------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        if self.unflushed or self.outbox:
            return 0
        return min(self.dirty.values(), default=None)

    def due(self, now: int) -> list[list[Envelope]]:
        return []

    async def act(self) -> int:
        if self.unflushed:
            self._render()
        now = self.clock.now()
        ready = [k for k, at in self.dirty.items() if at <= now]
        outbox, self.outbox = self.outbox, []
        if not ready and not outbox:
            return 0
        kube = await self.connection.get()
        for start in range(0, len(ready), self.concurrency):
            await asyncio.gather(*(self._write(kube, kind, key) for kind, key in ready[start : start + self.concurrency]))
        for start in range(0, len(outbox), self.concurrency):
            await asyncio.gather(*(self._event(kube, event) for event in outbox[start : start + self.concurrency]))
        return 0

    async def _patch(self, kube, kind: str, key: str, status: dict[str, Any]) -> dict[str, Any]:
        namespace, _, name = key.partition("/")
        if kind == "pods":
            return await kube.call(kube.core.patch_namespaced_pod_status, name, namespace, {"status": status},
                                   _content_type=STRATEGIC)
        group, version = self.api_groups[KINDS[kind]]
        custom = kube.custom
        # The whole status, replaced: a merge patch would keep counts of phases no pod is in any more.
        body = [{"op": "add", "path": "/status", "value": status}]
        if kind == "queues":
            return await kube.call(
                custom.patch_cluster_custom_object_status, group, version, kind, key, body, _content_type=JSON_PATCH
            )
        # a PodGroup has no status subresource (as in Volcano's CRD): its status is patched on the object
        patch = custom.patch_namespaced_custom_object if kind == "podgroups" else custom.patch_namespaced_custom_object_status
        return await kube.call(patch, group, version, namespace, kind, name, body, _content_type=JSON_PATCH)

    async def _write(self, kube, kind: str, key: str) -> None:
        status = self.status_of(kind, key)
        if status is None or self.written.get((kind, key)) == status:
            self.dirty.pop((kind, key), None)
            return
        try:
            obj = await self._patch(kube, kind, key, status)
        except ApiException as exc:
            if exc.status == 404:
                # not created yet (the actuator is on it) or already gone: look again later
                self.stats.skipped += 1
                self.dirty[(kind, key)] = self.clock.now() + 500
                return
            self.stats.failures += 1
            self.dirty[(kind, key)] = self.clock.now() + 1000
            log.warning("status write failed", extra={"object": f"{kind}/{key}", "error": f"{exc.status} {exc.reason}"})
            return
        if uid := ((obj or {}).get("metadata") or {}).get("uid"):
            self.uids[(kind, key)] = uid
        if self.status_of(kind, key) == status:  # nothing changed while writing
            self.dirty.pop((kind, key), None)
        self.written[(kind, key)] = status
        self.last_write[(kind, key)] = self.clock.now()
        self.stats.written += 1
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1

    async def _event(self, kube, event: PendingEvent) -> None:
        plural = {"Pod": "pods", "Job": "jobs", "PodGroup": "podgroups"}[event.kind]
        namespace, _, name = event.key.partition("/")
        uid = self.uids.get((plural, event.key), "")
        if not uid and event.kind == "Pod":  # the actuator created it: ask its uid, for kubectl describe
            try:
                pod = await kube.call(kube.core.read_namespaced_pod, name, namespace, retries=False)
                uid = self.uids[(plural, event.key)] = pod["metadata"].get("uid", "")
            except ApiException:
                pass
        api_version = "v1" if event.kind == "Pod" else "/".join(self.api_groups[event.kind])
        obj = {"apiVersion": api_version, "kind": event.kind,
               "metadata": {"name": name, "namespace": namespace, "uid": uid}}
        await post_event(kube, obj, reason=event.reason, message=event.message, kind=event.type, at_ms=event.at)
        self.stats.events += 1


# -- the fold, one function per event class: which objects are the API server's, conditions, Events ------


def _job_upsert(w: KubeStatusWriter, e: JobCreated | JobUpdated, _: Envelope) -> None:
    if e.manifest.metadata.uid or cronjob_owner_uid(e.manifest):  # from the API server, or a CronJob's
        w.api_jobs[e.job] = e.manifest.metadata.uid
        if e.manifest.metadata.uid:
            w.uids[("jobs", e.job)] = e.manifest.metadata.uid


def _job_phase(w: KubeStatusWriter, e: JobPhaseChanged, envelope: Envelope) -> None:
    if e.job in w.api_jobs:
        why = f": {e.reason}" if e.reason else ""
        why += f" ({e.message})" if e.message else ""
        w._post("Job", e.job, e.phase, (f"{e.previous} -> " if e.previous else "") + f"{e.phase}{why}", envelope.recorded_at,
                "Warning" if e.phase in ("Failed", "Aborted") else "Normal")


def _job_removed(w: KubeStatusWriter, e: JobRemoved, _: Envelope) -> None:
    w.api_jobs.pop(e.job, None)
    w.dirty.pop(("jobs", e.job), None)
    for pod in w.views.job_pods.get(e.job, {}):
        w.pod_scheduled.pop(pod, None)
        w.dirty.pop(("pods", pod), None)


def _set_condition(w: KubeStatusWriter, podgroup: str, condition: dict[str, str]) -> bool:
    """Volcano's ``UpdatePodGroupCondition``: the condition of its type replaced (unless it says the same)."""
    by_type = w.conditions.setdefault(podgroup, {})
    old = by_type.get(condition["type"])
    same = ("status", "reason", "message")
    if old is not None and all(old[k] == condition[k] for k in same):
        return False
    by_type[condition["type"]] = condition
    w._touch("podgroups", podgroup)
    return True


def _unschedulable(w: KubeStatusWriter, e: PodGroupUnschedulable, envelope: Envelope) -> None:
    if not w.is_api_podgroup(e.podgroup, e.job):
        return
    at = envelope.recorded_at
    _set_condition(w, e.podgroup, {
        "type": "Unschedulable", "status": "True", "transitionID": str(envelope.position),
        "lastTransitionTime": rfc3339(at), "reason": e.reason, "message": e.message,
    })
    message = e.message or e.reason
    for key in w.views.job_pods.get(e.job, {}):
        pod = w.views.pods.get(key)
        if pod is None or pod.podgroup != e.podgroup or pod.phase != "Pending":
            continue
        old = w.pod_scheduled.get(key)
        if old is not None and old["status"] == "False" and old["message"] == message:
            continue
        w.pod_scheduled[key] = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                "message": message, "lastTransitionTime": rfc3339(at)}
        w._touch("pods", key)
    w._post_unschedulable(e.podgroup, f"{e.reason}: {e.message}" if e.message else e.reason, at)


def _group_phase(w: KubeStatusWriter, e: PodGroupPhaseChanged, envelope: Envelope) -> None:
    if e.phase != "Running" or not w.is_api_podgroup(e.podgroup, e.job):
        return
    if _set_condition(w, e.podgroup, {
        "type": "Scheduled", "status": "True", "transitionID": str(envelope.position),
        "lastTransitionTime": rfc3339(envelope.recorded_at), "reason": SCHEDULED_REASON, "message": "",
    }) or e.previous != "Running":
        w._post("PodGroup", e.podgroup, "Scheduled", PODGROUP_READY, envelope.recorded_at)


def _bound(w: KubeStatusWriter, e: PodBound, envelope: Envelope) -> None:
    if e.job not in w.api_jobs:
        return
    if (old := w.pod_scheduled.get(e.pod)) is not None and old["status"] == "False":
        w.pod_scheduled[e.pod] = {"type": "PodScheduled", "status": "True", "reason": "", "message": "",
                                  "lastTransitionTime": rfc3339(envelope.recorded_at)}
        w._touch("pods", e.pod)
    w._post("Pod", e.pod, "Scheduled", f"Successfully assigned {e.pod} to {e.node}", envelope.recorded_at)


def _eviction(w: KubeStatusWriter, e: PodEvictionRequested, envelope: Envelope) -> None:
    if e.job not in w.api_jobs:
        return
    rule = f" [rule {e.rule}]" if e.rule else ""
    if e.preemptor:
        w._post("Pod", e.pod, "Preempted", f"Preempted by {e.preemptor}: {e.reason}{rule}", envelope.recorded_at)
    else:
        w._post("Pod", e.pod, "Evicted", f"{e.reason}{rule}", envelope.recorded_at, "Warning")


def _group_upsert(w: KubeStatusWriter, e: PodGroupCreated | PodGroupUpdated, _: Envelope) -> None:
    # An object of its own: another operator's PodGroup (it has the API server's uid), or the
    # one the podgroup controller makes for a plain pod (no job; the actuator creates it).
    if e.manifest.metadata.uid or not e.job:
        w.api_podgroups.add(e.podgroup)
    if e.manifest.metadata.uid:
        w.uids[("podgroups", e.podgroup)] = e.manifest.metadata.uid


def _group_deleted(w: KubeStatusWriter, e: PodGroupDeleted, _: Envelope) -> None:
    w.api_podgroups.discard(e.podgroup)


def _queue_upsert(w: KubeStatusWriter, e: QueueCreated | QueueUpdated, _: Envelope) -> None:
    if e.manifest.metadata.uid:
        w.api_queues.add(e.queue)
        w._touch("queues", e.queue)


def _queue_deleted(w: KubeStatusWriter, e: QueueDeleted, _: Envelope) -> None:
    w.api_queues.discard(e.queue)
    w.dirty.pop(("queues", e.queue), None)


_TABLE: FoldTable[KubeStatusWriter, [Envelope], None] = FoldTable()
_TABLE.on(JobCreated, _job_upsert)
_TABLE.on(JobUpdated, _job_upsert)
_TABLE.on(JobPhaseChanged, _job_phase)
_TABLE.on(JobRemoved, _job_removed)
_TABLE.on(PodGroupUnschedulable, _unschedulable)
_TABLE.on(PodGroupPhaseChanged, _group_phase)
_TABLE.on(PodBound, _bound)
_TABLE.on(PodEvictionRequested, _eviction)
_TABLE.on(PodGroupCreated, _group_upsert)
_TABLE.on(PodGroupUpdated, _group_upsert)
_TABLE.on(PodGroupDeleted, _group_deleted)
_TABLE.on(QueueCreated, _queue_upsert)
_TABLE.on(QueueUpdated, _queue_upsert)
_TABLE.on(QueueDeleted, _queue_deleted)
_FOLDS = _TABLE.folds
