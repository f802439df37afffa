"""The status writer: Job, Queue, PodGroup and CronJob status, folded from the log, written back.

Where it sits: beside the actuator in ``--cluster kube``. It folds the job
controller's phases (``JobPhaseChanged``), the scheduler's podgroup phases
(``PodGroupEnqueued``, ``PodGroupPhaseChanged``), queue states
(``QueueStateChanged``) and pod observations into the status Volcano shows
(``status.state.phase``, pending/running/succeeded/failed counts per job and
per task; podgroup phase and counts; queue state and podgroup counts), folds
the CronJob controller's facts as the controller does (``handlers.cronjob``:
``active``, ``lastScheduleTime``, ``lastSuccessfulTime``), and
patches the ``status`` subresource of each object whose status changed
(a JSON patch replacing ``/status`` whole, so no stale count survives).
A burst of changes to one object is written once (at most every
``min_interval_ms``). Status is derived, never appended: after a restart it
is written again. Objects that came from the API server are written (a
uid on the log), and the Jobs a CronJob object started, whose objects the
actuator creates (``eventbatch.kube.cronjobs``).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.client import JSON_PATCH, Connection
from eventbatch.kube.crds import Groups, groups
from eventbatch.kube.cronjobs import cronjob_owner_uid
from eventbatch.reactor import Reactor
from handlers.cronjob.handler import FOLDS as CRONJOB_FOLDS
from handlers.cronjob.handler import CronJobsState, cronjob_status
from projections.dispatch import FoldTable
from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    JobPhaseChanged,
    JobRemoved,
    JobUpdated,
    PodDeleted,
    PodEvicted,
    PodFailed,
    PodGroupCreated,
    PodGroupDeleted,
    PodGroupEnqueued,
    PodGroupPhaseChanged,
    PodGroupUpdated,
    PodRequested,
    PodStarted,
    PodSucceeded,
    PodUnknown,
    QueueCreated,
    QueueDeleted,
    QueueStateChanged,
    QueueUpdated,
)
from schemas.events.pod import PodEvent

log = logging.getLogger(__name__)


def _time(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class JobStatusRecord:
    """The status writer's record of one job (``...Record``: a fold's state of one object)."""

    min_available: int
    phase: str = "Pending"
    reason: str = ""
    message: str = ""
    since: int = 0
    retry_count: int = 0
    version: int = 0


@dataclass
class PodStatusRecord:
    """The status writer's record of one pod."""

    job: str
    task: str
    podgroup: str
    phase: str = "Pending"


@dataclass
class PodGroupStatusRecord:
    """The status writer's record of one podgroup."""

    job: str
    queue: str
    phase: str = "Pending"


@dataclass
class StatusStats:
    written: int = 0
    skipped: int = 0
    failures: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


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
        self.jobs: dict[str, JobStatusRecord] = {}
        self.pods: dict[str, PodStatusRecord] = {}
        self.job_pods: dict[str, dict[str, None]] = {}  # job -> its pods, in request order
        self.group_pods: dict[str, dict[str, None]] = {}
        self.groups: dict[str, PodGroupStatusRecord] = {}
        self.queues: dict[str, str] = {}  # name -> state
        self.cron = CronJobsState()  # the CronJob controller's fold, for cronjob_status
        self.dirty: dict[tuple[str, str], int] = {}  # (kind, key) -> not before (clock ms)
        self.written: dict[tuple[str, str], dict[str, Any]] = {}
        self.stats = StatusStats()

    # -- fold -------------------------------------------------------------------

    def _touch(self, kind: str, key: str) -> None:
        last = self.last_write.get((kind, key))
        self.dirty.setdefault((kind, key), 0 if last is None else last + self.min_interval_ms)

    def fold(self, envelope: Envelope) -> bool:
        cron = self._fold_cron(envelope)
        apply = _FOLDS.get(type(envelope.payload))
        return (apply is not None and apply(self, envelope.payload, envelope)) or cron

    def _fold_cron(self, envelope: Envelope) -> bool:
        """The CronJob controller's fold; the CronJob whose status the event may change is marked."""
        e = envelope.payload
        step = CRONJOB_FOLDS.get(type(e))
        if step is None:
            return False
        job = getattr(e, "job", "")
        key = getattr(e, "cronjob", "") or (self.cron.owner_of.get(job, "") if job else "")
        step(self.cron, e, envelope)
        if not key:
            return False
        if key in self.cron.cronjobs:
            self._touch("cronjobs", key)
        else:
            self.dirty.pop(("cronjobs", key), None)
        return True

    def _pod_changed(self, key: str) -> None:
        if (pod := self.pods.get(key)) is not None:
            self._pod_changed_keys(pod)

    def _pod_changed_keys(self, pod: PodStatusRecord) -> None:
        self._touch("jobs", pod.job)
        self._touch("podgroups", pod.podgroup)

    # -- the statuses -------------------------------------------------------------

    def job_status(self, key: str) -> dict[str, Any] | None:
        info = self.jobs.get(key)
        if info is None:
            return None
        counts = {"Pending": 0, "Running": 0, "Succeeded": 0, "Failed": 0, "Unknown": 0}
        tasks: dict[str, dict[str, int]] = {}
        for name in self.job_pods.get(key, {}):
            pod = self.pods[name]
            counts[pod.phase] += 1
            by_phase = tasks.setdefault(pod.task, {})
            by_phase[pod.phase] = by_phase.get(pod.phase, 0) + 1
        return {
            "state": {
                "phase": info.phase,
                "reason": info.reason,
                "message": info.message,
                "lastTransitionTime": _time(info.since),
            },
            "minAvailable": info.min_available,
            "pending": counts["Pending"],
            "running": counts["Running"],
            "succeeded": counts["Succeeded"],
            "failed": counts["Failed"],
            "unknown": counts["Unknown"],
            "retryCount": info.retry_count,
            "version": info.version,
            "taskStatusCount": {task: {"phase": phases} for task, phases in sorted(tasks.items())},
        }

    def podgroup_status(self, key: str) -> dict[str, Any] | None:
        group = self.groups.get(key)
        if group is None:
            return None
        counts = {"Running": 0, "Succeeded": 0, "Failed": 0, "Pending": 0, "Unknown": 0}
        for name in self.group_pods.get(key, {}):
            counts[self.pods[name].phase] += 1
        return {"phase": group.phase, "running": counts["Running"], "succeeded": counts["Succeeded"], "failed": counts["Failed"]}

    def cronjob_status(self, key: str) -> dict[str, Any] | None:
        record = self.cron.cronjobs.get(key)
        if record is None or not record.manifest.metadata.uid:  # a CronJob on the log alone has no object
            return None
        return cronjob_status(self.cron, key)

    def queue_status(self, name: str) -> dict[str, Any] | None:
        if name not in self.queues:
            return None
        counts = {"Pending": 0, "Inqueue": 0, "Running": 0, "Completed": 0, "Unknown": 0}
        for group in self.groups.values():
            if group.queue == name:
                counts[group.phase if group.phase in counts else "Unknown"] += 1
        return {
            "state": self.queues[name],
            "pending": counts["Pending"],
            "inqueue": counts["Inqueue"],
            "running": counts["Running"],
            "completed": counts["Completed"],
            "unknown": counts["Unknown"],
        }

    # -- writing ------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        return min(self.dirty.values(), default=None)

    def due(self, now: int) -> list[list[Envelope]]:
        return []

    async def act(self) -> int:
        now = self.clock.now()
        ready = [k for k, at in self.dirty.items() if at <= now]
        if not ready:
            return 0
        kube = await self.connection.get()
        for start in range(0, len(ready), self.concurrency):
            await asyncio.gather(*(self._write(kube, kind, key) for kind, key in ready[start : start + self.concurrency]))
        return 0

    def status_of(self, kind: str, key: str) -> dict[str, Any] | None:
        return {
            "jobs": self.job_status, "podgroups": self.podgroup_status, "queues": self.queue_status,
            "cronjobs": self.cronjob_status,
        }[kind](key)

    async def _write(self, kube, kind: str, key: str) -> None:
        status = self.status_of(kind, key)
        if status is None or self.written.get((kind, key)) == status:
            self.dirty.pop((kind, key), None)
            return
        group, version = self.api_groups[{"jobs": "Job", "podgroups": "PodGroup", "queues": "Queue", "cronjobs": "CronJob"}[kind]]
        custom = kube.custom
        # The whole status, replaced: a merge patch would keep counts of phases no pod is in any more.
        body = [{"op": "add", "path": "/status", "value": status}]
        try:
            if kind == "queues":
                await kube.call(
                    custom.patch_cluster_custom_object_status, group, version, kind, key, body, _content_type=JSON_PATCH
                )
            else:
                namespace, _, name = key.partition("/")
                # a PodGroup has no status subresource (as in Volcano's CRD): its status is patched on the object
                patch = custom.patch_namespaced_custom_object if kind == "podgroups" else custom.patch_namespaced_custom_object_status
                await kube.call(
                    patch,
                    group, version, namespace, kind, name, body,
                    _content_type=JSON_PATCH,
                )
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
        if self.status_of(kind, key) == status:  # nothing changed while writing
            self.dirty.pop((kind, key), None)
        self.written[(kind, key)] = status
        self.last_write[(kind, key)] = self.clock.now()
        self.stats.written += 1
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1


# -- the fold, one function per event class: each says whether the event concerned a status ---------


def _job_upsert(w: KubeStatusWriter, e: JobCreated | JobUpdated, envelope: Envelope) -> bool:
    if e.manifest.metadata.uid or cronjob_owner_uid(e.manifest):  # from the API server, or a CronJob's
        info = w.jobs.get(e.job) or JobStatusRecord(e.manifest.spec.min_available, since=envelope.recorded_at)
        info.min_available = e.manifest.spec.min_available
        w.jobs[e.job] = info
        w._touch("jobs", e.job)
    return True


def _job_phase(w: KubeStatusWriter, e: JobPhaseChanged, envelope: Envelope) -> bool:
    if (info := w.jobs.get(e.job)) is not None:
        info.phase, info.reason, info.message = e.phase, e.reason, e.message
        info.since, info.retry_count, info.version = envelope.recorded_at, e.retry_count, e.version
        w._touch("jobs", e.job)
    return True


def _job_removed(w: KubeStatusWriter, e: JobRemoved, _: Envelope) -> bool:
    w.jobs.pop(e.job, None)
    w.dirty.pop(("jobs", e.job), None)
    return True


def _pod_requested(w: KubeStatusWriter, e: PodRequested, _: Envelope) -> bool:
    w.pods[e.pod] = PodStatusRecord(e.job, e.task, e.podgroup)
    w.job_pods.setdefault(e.job, {})[e.pod] = None
    w.group_pods.setdefault(e.podgroup, {})[e.pod] = None
    w._pod_changed(e.pod)
    return True


def _pod_phase(phase: str) -> Callable[[KubeStatusWriter, PodEvent, Envelope], bool]:
    def fold(w: KubeStatusWriter, e: PodEvent, _: Envelope) -> bool:
        pod = w.pods.get(e.pod)
        if pod is None:
            return False
        pod.phase = phase
        w._pod_changed(e.pod)
        return True

    return fold


def _pod_deleted(w: KubeStatusWriter, e: PodDeleted, _: Envelope) -> bool:
    pod = w.pods.pop(e.pod, None)
    if pod is None:
        return False
    w.job_pods.get(pod.job, {}).pop(e.pod, None)
    w.group_pods.get(pod.podgroup, {}).pop(e.pod, None)
    w._pod_changed_keys(pod)
    return True


def _group_upsert(w: KubeStatusWriter, e: PodGroupCreated | PodGroupUpdated, _: Envelope) -> bool:
    group = w.groups.get(e.podgroup)
    queue = e.manifest.spec.queue
    if group is None:
        w.groups[e.podgroup] = PodGroupStatusRecord(e.job, queue)
    else:
        group.queue = queue
    w._touch("podgroups", e.podgroup)
    w._touch("queues", queue)
    return True


def _group_phase(w: KubeStatusWriter, e: PodGroupEnqueued | PodGroupPhaseChanged, _: Envelope) -> bool:
    if (group := w.groups.get(e.podgroup)) is not None:
        group.phase = e.phase if isinstance(e, PodGroupPhaseChanged) else "Inqueue"
        w._touch("podgroups", e.podgroup)
        w._touch("queues", group.queue)
    return True


def _group_deleted(w: KubeStatusWriter, e: PodGroupDeleted, _: Envelope) -> bool:
    if (group := w.groups.pop(e.podgroup, None)) is not None:
        w.dirty.pop(("podgroups", e.podgroup), None)
        w._touch("queues", group.queue)
    return True


def _queue_upsert(w: KubeStatusWriter, e: QueueCreated | QueueUpdated, _: Envelope) -> bool:
    if e.manifest.metadata.uid:
        w.queues.setdefault(e.queue, "Open")
        w._touch("queues", e.queue)
    return True


def _queue_state(w: KubeStatusWriter, e: QueueStateChanged, _: Envelope) -> bool:
    if e.queue in w.queues:
        w.queues[e.queue] = e.state
        w._touch("queues", e.queue)
    return True


def _queue_deleted(w: KubeStatusWriter, e: QueueDeleted, _: Envelope) -> bool:
    w.queues.pop(e.queue, None)
    w.dirty.pop(("queues", e.queue), None)
    return True


_TABLE: FoldTable[KubeStatusWriter, [Envelope], bool] = FoldTable()
_TABLE.on(JobCreated, _job_upsert)
_TABLE.on(JobUpdated, _job_upsert)
_TABLE.on(JobPhaseChanged, _job_phase)
_TABLE.on(JobRemoved, _job_removed)
_TABLE.on(PodRequested, _pod_requested)
_TABLE.on(PodStarted, _pod_phase("Running"))
_TABLE.on(PodSucceeded, _pod_phase("Succeeded"))
_TABLE.on(PodFailed, _pod_phase("Failed"))
_TABLE.on(PodEvicted, _pod_phase("Failed"))  # an evicted pod's phase is Failed
_TABLE.on(PodUnknown, _pod_phase("Unknown"))
_TABLE.on(PodDeleted, _pod_deleted)
_TABLE.on(PodGroupCreated, _group_upsert)
_TABLE.on(PodGroupUpdated, _group_upsert)
_TABLE.on(PodGroupEnqueued, _group_phase)
_TABLE.on(PodGroupPhaseChanged, _group_phase)
_TABLE.on(PodGroupDeleted, _group_deleted)
_TABLE.on(QueueCreated, _queue_upsert)
_TABLE.on(QueueUpdated, _queue_upsert)
_TABLE.on(QueueStateChanged, _queue_state)
_TABLE.on(QueueDeleted, _queue_deleted)
_FOLDS = _TABLE.folds
