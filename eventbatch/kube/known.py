"""What the log already says about each object the kube adapter watches.

Where it sits: the log side of the watch adapter (``eventbatch.kube.observe``).
Folded from every event, whoever appended it: a job's, queue's, CronJob's
or HyperNode's uid and generation, the commands already issued, each node's
digest, priority and runtime classes, and the transitions of the current
incarnation of each pod. A Job a CronJob started on the log keeps the uid
of its owning CronJob (``Seen.owner_uid``), by which the adapter knows its
object in the API server (``eventbatch.kube.cronjobs``). The
adapter appends only what the API server shows beyond this, so nothing is
appended twice, after a reconnect or a restart alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventbatch.kube.cronjobs import cronjob_owner_uid
from eventbatch.kube.translate import node_digest
from schemas.envelope import Envelope
from schemas.events import (
    CronJobDeleted,
    CronJobDeleteRequested,
    CronJobSubmitRequested,
    HyperNodeApplyRequested,
    HyperNodeDeleteRequested,
    HyperNodeRemoved,
    JobCommandRequested,
    JobDeleteRequested,
    JobRemoved,
    JobSubmitRequested,
    JobUpdateRequested,
    NodeAdded,
    NodeRemoved,
    NodeUpdated,
    PodCreated,
    PodDeleted,
    PodEvent,
    PodEvicted,
    PodFailed,
    PodReady,
    PodRequested,
    PodRestarted,
    PodStarted,
    PodSucceeded,
    PodUnknown,
    PriorityClassAdded,
    PriorityClassRemoved,
    QueueCreateRequested,
    QueueDeleted,
    QueueDeleteRequested,
    QueueUpdateRequested,
    RuntimeClassAdded,
    RuntimeClassRemoved,
)
from schemas.events.base import Event

Touched = list[tuple[str, str]]  # (resource, key) whose difference may have changed
Touches = Sequence[tuple[str, str]]  # what one fold returns: a Touched or ()


@dataclass
class Seen:
    uid: str
    generation: int
    alive: bool = True
    owner_uid: str = ""  # a Job a CronJob started on the log: the CronJob's uid (its object is the actuator's)


@dataclass
class PodLog:
    """What the log says about the current incarnation of a pod."""

    job: str
    requested_at: int
    uid: str = ""
    started: bool = False
    ready: bool = False
    done: bool = False  # succeeded, failed or evicted
    unknown: bool = False
    restarts: int = 0
    deleted: bool = False
    seen: bool = False  # this incarnation was seen in the API server
    created_mark: int = 0  # PodCreated folds before this one (see KubeObserver._list_marks)


class Known:
    def __init__(self) -> None:
        self.jobs: dict[str, Seen] = {}
        self.queues: dict[str, Seen] = {}
        self.commands: set[str] = set()
        self.nodes: dict[str, bytes] = {}
        self.priority: dict[str, tuple[int, bool, str]] = {}
        self.cronjobs: dict[str, Seen] = {}
        self.hypernodes: dict[str, Seen] = {}
        self.runtime: dict[str, RuntimeClassAdded] = {}  # name -> the class as the log has it
        self.pods: dict[str, PodLog] = {}
        self.created = 0  # PodCreated events folded so far (see PodLog.created_mark)

    def fold(self, envelope: Envelope) -> Touched | None:
        """Apply one event; None when it is nothing the adapter watches."""
        fn = _FOLDS.get(type(envelope.payload))
        if fn is None:
            return None
        return list(fn(self, envelope, envelope.payload) or ())

    def keys(self, resource: str) -> list[str]:
        tables: dict[str, Mapping[str, object]] = {
            "jobs": self.jobs,
            "queues": self.queues,
            "nodes": self.nodes,
            "priorityclasses": self.priority,
            "pods": self.pods,
            "cronjobs": self.cronjobs,
            "hypernodes": self.hypernodes,
            "runtimeclasses": self.runtime,
        }
        return list(tables.get(resource, {}))

    def _job_seen(self, envelope: Envelope, e: JobSubmitRequested | JobUpdateRequested) -> Touches:
        meta = e.manifest.metadata
        self.jobs[e.job] = Seen(meta.uid, meta.generation, owner_uid=cronjob_owner_uid(e.manifest))
        return [("jobs", e.job)]

    def _job_gone(self, envelope: Envelope, e: JobDeleteRequested | JobRemoved) -> Touches:
        if (seen := self.jobs.get(e.job)) is not None:
            seen.alive = False
        return [("jobs", e.job)]

    def _command_seen(self, envelope: Envelope, e: JobCommandRequested) -> Touches:
        if e.command.metadata.uid:
            self.commands.add(e.command.metadata.uid)
        return ()

    def _queue_seen(self, envelope: Envelope, e: QueueCreateRequested | QueueUpdateRequested) -> Touches:
        meta = e.manifest.metadata
        self.queues[e.queue] = Seen(meta.uid, meta.generation)
        return [("queues", e.queue)]

    def _queue_gone(self, envelope: Envelope, e: QueueDeleteRequested | QueueDeleted) -> Touches:
        if (seen := self.queues.get(e.queue)) is not None:
            seen.alive = False
        return [("queues", e.queue)]

    def _node_seen(self, envelope: Envelope, e: NodeAdded | NodeUpdated) -> Touches:
        self.nodes[e.node] = node_digest(e.manifest)
        return [("nodes", e.node)]

    def _node_gone(self, envelope: Envelope, e: NodeRemoved) -> Touches:
        self.nodes.pop(e.node, None)
        return [("nodes", e.node)]

    def _pc_seen(self, envelope: Envelope, e: PriorityClassAdded) -> Touches:
        self.priority[e.name] = (e.value, e.global_default, e.preemption_policy)
        return [("priorityclasses", e.name)]

    def _pc_gone(self, envelope: Envelope, e: PriorityClassRemoved) -> Touches:
        self.priority.pop(e.name, None)
        return [("priorityclasses", e.name)]

    def _cronjob_seen(self, envelope: Envelope, e: CronJobSubmitRequested) -> Touches:
        meta = e.manifest.metadata
        self.cronjobs[e.cronjob] = Seen(meta.uid, meta.generation)
        return [("cronjobs", e.cronjob)]

    def _cronjob_gone(self, envelope: Envelope, e: CronJobDeleteRequested | CronJobDeleted) -> Touches:
        if (seen := self.cronjobs.get(e.cronjob)) is not None:
            seen.alive = False
        return [("cronjobs", e.cronjob)]

    def _hypernode_seen(self, envelope: Envelope, e: HyperNodeApplyRequested) -> Touches:
        meta = e.manifest.metadata
        self.hypernodes[e.hypernode] = Seen(meta.uid, meta.generation)
        return [("hypernodes", e.hypernode)]

    def _hypernode_gone(self, envelope: Envelope, e: HyperNodeDeleteRequested | HyperNodeRemoved) -> Touches:
        if (seen := self.hypernodes.get(e.hypernode)) is not None:
            seen.alive = False
        return [("hypernodes", e.hypernode)]

    def _rc_seen(self, envelope: Envelope, e: RuntimeClassAdded) -> Touches:
        self.runtime[e.name] = e
        return [("runtimeclasses", e.name)]

    def _rc_gone(self, envelope: Envelope, e: RuntimeClassRemoved) -> Touches:
        self.runtime.pop(e.name, None)
        return [("runtimeclasses", e.name)]

    def _pod_requested(self, envelope: Envelope, e: PodRequested) -> Touches:
        current = self.pods.get(e.pod)
        if current is None or (current.deleted and current.requested_at != envelope.position):
            self.pods[e.pod] = PodLog(e.job, envelope.position)
            if e.uid:  # another operator's pod: it exists already, with this uid
                self.created += 1
                self.pods[e.pod].uid, self.pods[e.pod].created_mark = e.uid, self.created
        return [("pods", e.pod)]

    def _pod_event(self, envelope: Envelope, e: PodEvent) -> Touches:
        pod = self.pods.get(e.pod)
        if pod is None or pod.deleted:
            return ()
        if isinstance(e, PodCreated):
            cause = envelope.causation
            if (cause is None or cause.position == pod.requested_at) and pod.uid != e.uid:
                self.created += 1
                pod.uid, pod.created_mark = e.uid, self.created
        elif isinstance(e, PodStarted):
            pod.started = True
        elif isinstance(e, PodReady):
            pod.ready = True
        elif isinstance(e, PodRestarted):
            pod.restarts = max(pod.restarts, e.restart_count)
        elif isinstance(e, PodSucceeded | PodFailed | PodEvicted):
            pod.done = True
        elif isinstance(e, PodUnknown):
            pod.unknown = True
        elif isinstance(e, PodDeleted):
            pod.deleted = True
        return [("pods", e.pod)]


# Each fold takes the event class it is keyed by (Any: a table cannot tie a
# value's parameter type to its key's class).
_FOLDS: dict[type[Event], Callable[[Known, Envelope, Any], Touches]] = {
    JobSubmitRequested: Known._job_seen,
    JobUpdateRequested: Known._job_seen,
    JobDeleteRequested: Known._job_gone,
    JobRemoved: Known._job_gone,
    JobCommandRequested: Known._command_seen,
    QueueCreateRequested: Known._queue_seen,
    QueueUpdateRequested: Known._queue_seen,
    QueueDeleteRequested: Known._queue_gone,
    QueueDeleted: Known._queue_gone,
    NodeAdded: Known._node_seen,
    NodeUpdated: Known._node_seen,
    NodeRemoved: Known._node_gone,
    PriorityClassAdded: Known._pc_seen,
    PriorityClassRemoved: Known._pc_gone,
    CronJobSubmitRequested: Known._cronjob_seen,
    CronJobDeleteRequested: Known._cronjob_gone,
    CronJobDeleted: Known._cronjob_gone,
    HyperNodeApplyRequested: Known._hypernode_seen,
    HyperNodeDeleteRequested: Known._hypernode_gone,
    HyperNodeRemoved: Known._hypernode_gone,
    RuntimeClassAdded: Known._rc_seen,
    RuntimeClassRemoved: Known._rc_gone,
    PodRequested: Known._pod_requested,
    PodCreated: Known._pod_event,
    PodStarted: Known._pod_event,
    PodReady: Known._pod_event,
    PodRestarted: Known._pod_event,
    PodSucceeded: Known._pod_event,
    PodFailed: Known._pod_event,
    PodEvicted: Known._pod_event,
    PodUnknown: Known._pod_event,
    PodDeleted: Known._pod_event,
}
