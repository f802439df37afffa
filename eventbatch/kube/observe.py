"""The kube watch adapter: what the API server holds, appended to the log as events.

Where it sits: the input edge of ``--cluster kube``. It lists and watches
(``eventbatch.kube.informer``) the project's Job, Queue, Command, CronJob and
HyperNode custom objects, nodes, priority classes, runtime classes and the
pods eventbatch schedules, and
appends intents (``JobSubmitRequested``/``JobUpdateRequested``/``JobDeleteRequested``,
``JobCommandRequested``/``QueueCommandRequested``, ``QueueCreateRequested``/``QueueUpdateRequested``/
``QueueDeleteRequested``, ``CronJobSubmitRequested``/``CronJobDeleteRequested``,
``HyperNodeApplyRequested``/``HyperNodeDeleteRequested``) and observations (``NodeAdded``/``NodeUpdated``/
``NodeRemoved``, ``PriorityClassAdded``/``PriorityClassRemoved``,
``RuntimeClassAdded``/``RuntimeClassRemoved``,
``PodStarted``, ``PodReady``, ``PodRestarted``, ``PodSucceeded``,
``PodFailed{exit_code}``, ``PodEvicted`` (by the kubelet), ``PodUnknown``,
``PodDeleted``).

It is a reactor: it folds the log into what the log already says about each
object (uid and generation of a job, a node's digest, a pod's transitions)
and keeps the latest API object beside it; what it appends is the difference
between the two. So a reconnect, a relist after 410 Gone, or a restart of the
process appends only real changes: nothing twice, nothing lost. A custom
object that fails admission is reported as a Warning Event on the object and
never appended. A Command is deleted once its intent is on the log, as
Volcano's controller does. A Job object the actuator created for a CronJob's
run is the Job already on the log (``eventbatch.kube.cronjobs``): it is not
submitted again.
"""

from __future__ import annotations

import logging
from typing import Any

from eventbatch.kube.client import Kube
from eventbatch.kube.cronjobs import JOB_CONTROLLERS, controller_uid
from eventbatch.kube.informer import Informer
from eventbatch.kube.known import Known
from eventbatch.kube.translate import PodView, key_of, node_digest, node_manifest
from eventbatch.kube.watch import ApiWatch, generation_of, uid_of
from schemas.defaults import SCHEDULER_NAMES
from schemas.envelope import Envelope
from schemas.events import (
    CronJobDeleteRequested,
    CronJobSubmitRequested,
    HyperNodeApplyRequested,
    HyperNodeDeleteRequested,
    JobCommandRequested,
    JobDeleteRequested,
    JobSubmitRequested,
    JobUpdateRequested,
    NodeAdded,
    NodeRemoved,
    NodeUpdated,
    PodDeleted,
    PodEvicted,
    PodFailed,
    PodReady,
    PodRestarted,
    PodStarted,
    PodSucceeded,
    PodUnknown,
    PriorityClassAdded,
    PriorityClassRemoved,
    QueueCommandRequested,
    QueueCreateRequested,
    QueueDeleteRequested,
    QueueUpdateRequested,
    RuntimeClassRemoved,
)
from schemas.events.base import Event
from schemas.hypernode import HyperNode
from schemas.resources import Command, CronJob
from schemas.runtimeclass import API_VERSION as RUNTIME_CLASS_API_VERSION
from schemas.runtimeclass import KIND as RUNTIME_CLASS_KIND
from schemas.runtimeclass import RuntimeClassError, load_runtime_class, runtime_class_added

log = logging.getLogger(__name__)
Obj = dict[str, Any]
QUEUE_ACTIONS = {"OpenQueue": "open", "CloseQueue": "close"}


class KubeObserver(ApiWatch):
    name = "kube-observer"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.known = Known()  # what the log says
        self._finished_commands: list[Obj] = []  # commands whose intent is on the log
        # A pod missing from the API is gone only once it was seen there, or
        # when it is missing from a list started after its PodCreated was folded.
        self._list_marks: dict[str, int] = {}

    # -- the log side ---------------------------------------------------------

    def fold(self, envelope: Envelope) -> bool:
        touched = self.known.fold(envelope)
        if touched is None:
            return False
        for kind_key in touched:
            self.dirty[kind_key] = None
        return True

    # -- the API side ---------------------------------------------------------

    def _snapshot(self, kind: str, items: list[Obj], *, namespaced: bool = True) -> None:
        old, new, first = self._relist(kind, items, namespaced=namespaced)
        base = kind.split(":")[0]
        keys = set(old) | set(new)
        if first:
            keys |= set(self.known.keys(base))
        for key in sorted(keys):
            if old.get(key) is None or new.get(key) is None or _rv(old[key]) != _rv(new[key]) or first:
                self.dirty[(base, key)] = None
        self._changed.set()

    # -- the difference -------------------------------------------------------

    def next_deadline(self) -> int | None:
        return self.clock.now() if self.dirty else None

    def due(self, now: int) -> list[list[Envelope]]:
        batches = []
        while self.dirty:
            (base, key) = next(iter(self.dirty))
            del self.dirty[(base, key)]
            if not self._is_synced(base):
                continue
            events = _DERIVE[base](self, key, self._api(base, key))
            if events:
                batches.append([Envelope.wrap(e, recorded_at=now) for e in events])
        return batches

    def _derive_job(self, key: str, obj: Obj | None) -> list[Event]:
        seen = self.known.jobs.get(key)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            if seen is not None and seen.alive and seen.uid:
                return [JobDeleteRequested(job=key, reason="Deleted")]
            return []
        uid, generation = uid_of(obj), int(obj["metadata"].get("generation") or 0)
        owners = {controller_uid(obj, kind) for kind in JOB_CONTROLLERS}
        if seen is not None and seen.alive and not seen.uid and seen.owner_uid and seen.owner_uid in owners:
            # the object the actuator created for a CronJob's run or a JobFlow's step: the Job on the log, not a new one
            seen.uid, seen.generation = uid, generation
            return []
        if seen is not None and seen.uid == uid and (not seen.alive or generation <= seen.generation):
            return []
        manifest = self._admit(obj)
        if manifest is None:
            return []
        if seen is not None and seen.uid == uid:
            return [JobUpdateRequested(job=key, manifest=manifest)]
        replaced = [JobDeleteRequested(job=key, reason="Replaced")] if seen is not None and seen.alive and seen.uid else []
        return [*replaced, JobSubmitRequested(job=key, manifest=manifest)]

    def _derive_queue(self, key: str, obj: Obj | None) -> list[Event]:
        seen = self.known.queues.get(key)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            if seen is not None and seen.alive and seen.uid:
                return [QueueDeleteRequested(queue=key)]
            return []
        uid, generation = uid_of(obj), int(obj["metadata"].get("generation") or 0)
        if seen is not None and seen.uid == uid and (not seen.alive or generation <= seen.generation):
            return []
        manifest = self._admit(obj)
        if manifest is None:
            return []
        if seen is not None and seen.alive:
            return [QueueUpdateRequested(queue=key, manifest=manifest)]
        return [QueueCreateRequested(queue=key, manifest=manifest)]

    def _derive_cronjob(self, key: str, obj: Obj | None) -> list[Event]:
        seen = self.known.cronjobs.get(key)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            if seen is not None and seen.alive and seen.uid:
                return [CronJobDeleteRequested(cronjob=key, reason="Deleted")]
            return []
        uid, generation = uid_of(obj), int(obj["metadata"].get("generation") or 0)
        if seen is not None and seen.uid == uid and (not seen.alive or generation <= seen.generation):
            return []
        manifest = self._admit(obj)
        if not isinstance(manifest, CronJob):
            return []
        replaced = (
            [CronJobDeleteRequested(cronjob=key, reason="Replaced")]
            if seen is not None and seen.alive and seen.uid and seen.uid != uid else []
        )
        return [*replaced, CronJobSubmitRequested(cronjob=key, manifest=manifest)]

    def _derive_hypernode(self, key: str, obj: Obj | None) -> list[Event]:
        seen = self.known.hypernodes.get(key)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            if seen is not None and seen.alive and seen.uid:
                return [HyperNodeDeleteRequested(hypernode=key)]
            return []
        uid, generation = uid_of(obj), int(obj["metadata"].get("generation") or 0)
        if seen is not None and seen.uid == uid and (not seen.alive or generation <= seen.generation):
            return []
        manifest = self._admit(obj)
        if not isinstance(manifest, HyperNode):
            return []
        # a HyperNode of the same name replaced by another is applied over it (its spec replaced)
        return [HyperNodeApplyRequested(hypernode=key, manifest=manifest)]

    def _derive_rc(self, key: str, obj: Obj | None) -> list[Event]:
        if obj is None:
            return [RuntimeClassRemoved(name=key)] if key in self.known.runtime else []
        # list items may leave out their apiVersion and kind
        raw = {**obj, "apiVersion": RUNTIME_CLASS_API_VERSION, "kind": RUNTIME_CLASS_KIND}
        try:
            added = runtime_class_added(load_runtime_class(raw))
        except RuntimeClassError as exc:
            mark = (uid_of(obj), generation_of(obj))
            if mark not in self.rejected:
                self.rejected.add(mark)
                log.warning("runtime class not read", extra={"object": key, "error": str(exc)})
            return [RuntimeClassRemoved(name=key)] if key in self.known.runtime else []
        return [] if self.known.runtime.get(key) == added else [added]

    def _derive_command(self, key: str, obj: Obj | None) -> list[Event]:
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return []
        if uid_of(obj) in self.known.commands:
            self._finished_commands.append(obj)
            return []
        command = self._admit(obj)
        if not isinstance(command, Command) or command.target_object is None:
            if command is not None:
                self.reports.append((obj, "Command has no targetObject"))
                self._finished_commands.append(obj)
            return []
        target = command.target_object
        self.known.commands.add(uid_of(obj))
        self._finished_commands.append(obj)
        if target.kind == "Queue":
            action = QUEUE_ACTIONS.get(command.action)
            if action is None:
                self.reports.append((obj, f"unknown queue action {command.action!r}"))
                return []
            return [QueueCommandRequested(queue=target.name, action=action)]
        namespace = command.metadata.namespace or "default"
        return [JobCommandRequested(job=f"{namespace}/{target.name}", command=command)]

    def _derive_node(self, key: str, obj: Obj | None) -> list[Event]:
        if obj is None:
            return [NodeRemoved(node=key, reason="Deleted")] if key in self.known.nodes else []
        node = node_manifest(obj)
        digest = node_digest(node)
        if key not in self.known.nodes:
            return [NodeAdded(node=key, manifest=node)]
        return [NodeUpdated(node=key, manifest=node)] if self.known.nodes[key] != digest else []

    def _derive_pc(self, key: str, obj: Obj | None) -> list[Event]:
        if obj is None:
            return [PriorityClassRemoved(name=key)] if key in self.known.priority else []
        value = (int(obj.get("value") or 0), bool(obj.get("globalDefault")), obj.get("preemptionPolicy") or "PreemptLowerPriority")
        if self.known.priority.get(key) == value:
            return []
        return [PriorityClassAdded(name=key, value=value[0], global_default=value[1], preemption_policy=value[2])]

    def _derive_pod(self, key: str, obj: Obj | None) -> list[Event]:
        pod = self.known.pods.get(key)
        if pod is None or pod.deleted or not pod.uid:
            return []
        if obj is None or uid_of(obj) != pod.uid:
            listed = min((self._list_marks.get(i.name, 0) for i in self.informers if i.name.startswith("pods")), default=0)
            if pod.seen or pod.created_mark <= listed:
                return [PodDeleted(pod=key, job=pod.job, reason="Deleted")]
            return []  # created, but the watch has not shown it yet
        pod.seen = True
        view = PodView.of(obj)
        events: list[Event] = []
        if view.phase in ("Running", "Succeeded", "Failed") and view.node and not pod.started:
            events.append(PodStarted(pod=key, job=pod.job, node=view.node))
        if not pod.ready and ((view.phase == "Running" and view.ready) or (view.phase == "Succeeded" and not pod.done)):
            # A pod that succeeded while nobody watched was ready at some point: every container ran to the end.
            events.append(PodReady(pod=key, job=pod.job))
        if view.restarts > pod.restarts:
            events.append(PodRestarted(pod=key, job=pod.job, restart_count=view.restarts, exit_code=view.last_exit_code))
        if view.phase == "Succeeded" and not pod.done:
            events.append(PodSucceeded(pod=key, job=pod.job))
        elif view.phase == "Failed" and not pod.done and view.reason == "Evicted":
            # the kubelet evicted it (node pressure): Volcano's PodEvicted, not a failure of the job
            events.append(PodEvicted(pod=key, job=pod.job, reason=view.message or "Evicted"))
        elif view.phase == "Failed" and not pod.done:
            events.append(PodFailed(pod=key, job=pod.job, exit_code=view.exit_code, reason=view.reason or "Error"))
        elif view.phase == "Unknown" and not pod.unknown and not pod.done:
            events.append(PodUnknown(pod=key, job=pod.job, reason=view.reason or "NodeLost"))
        return events

    # -- running --------------------------------------------------------------

    async def act(self) -> int:
        count = await super().act()
        if self.reports or self._finished_commands:
            kube = await self.connection.get()
            await self._report(kube)
        return count

    async def _report(self, kube: Kube) -> None:
        await self._post_reports(kube)
        commands, self._finished_commands = self._finished_commands, []
        group, version = self.api_groups["Command"]
        for obj in commands:
            meta = obj["metadata"]
            try:
                await kube.call(
                    kube.custom.delete_namespaced_custom_object, group, version, meta["namespace"], "commands", meta["name"]
                )
            except Exception as exc:
                if getattr(exc, "status", 0) != 404:
                    log.warning("could not delete command", extra={"command": key_of(obj), "error": repr(exc)[:200]})

    def make_informers(self, kube: Kube) -> list[Informer]:
        def informer(kind: str, call: Any, *args: Any, namespaced: bool = True, **kwargs: Any) -> Informer:
            return self._informer(
                kube, kind, call, *args, namespaced=namespaced,
                on_list_start=lambda: self._list_marks.__setitem__(kind, self.known.created), **kwargs,
            )

        custom = kube.custom.list_cluster_custom_object
        out = [
            informer("jobs", custom, *self.api_groups["Job"], "jobs"),
            informer("queues", custom, *self.api_groups["Queue"], "queues", namespaced=False),
            informer("commands", custom, *self.api_groups["Command"], "commands"),
            informer("nodes", kube.core.list_node, namespaced=False),
            informer("priorityclasses", kube.scheduling.list_priority_class, namespaced=False),
            informer("cronjobs", custom, *self.api_groups["CronJob"], "cronjobs"),
            informer("hypernodes", custom, *self.api_groups["HyperNode"], "hypernodes", namespaced=False),
            informer("runtimeclasses", kube.node.list_runtime_class, namespaced=False),
        ]
        for scheduler in SCHEDULER_NAMES:
            out.append(
                informer(f"pods:{scheduler}", kube.core.list_pod_for_all_namespaces, field_selector=f"spec.schedulerName={scheduler}")
            )
        return out


def _rv(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")


_DERIVE = {
    "jobs": KubeObserver._derive_job,
    "queues": KubeObserver._derive_queue,
    "commands": KubeObserver._derive_command,
    "nodes": KubeObserver._derive_node,
    "priorityclasses": KubeObserver._derive_pc,
    "pods": KubeObserver._derive_pod,
    "cronjobs": KubeObserver._derive_cronjob,
    "hypernodes": KubeObserver._derive_hypernode,
    "runtimeclasses": KubeObserver._derive_rc,
}
