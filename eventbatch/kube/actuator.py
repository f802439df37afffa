"""The kube actuator: the decisions on the log, carried out against the API server.

Where it sits: the output edge of ``--cluster kube``, the real-cluster twin of
``eventbatch.sim.kubelet``. It folds decisions into pending actions and
performs them (``eventbatch.kube.effects``):

- ``PodRequested``                -> create the pod (deterministic name, owner
  reference to the Job, ``schedulerName``, the env and volumes the job
  plugins decided), then ``PodCreated{uid}``;
- ``PodBound{node}``              -> bind through the Binding subresource;
  ``PodBindFailed`` when the pod is gone or bound elsewhere;
- ``PodDeletionRequested``        -> delete the pod (``PodDeleted`` at once
  if it never existed; else the watch reports it once it is gone);
- ``PodEvictionRequested``        -> delete the pod, then ``PodEvicted``;
- ``PodGroupCreated``/``Updated``/``Deleted``, ``ServiceRequested``,
  ``ConfigMapRequested``, ``SecretRequested`` (the key pair is generated
  here) and their deletions -> the matching object;
- ``JobRemoved{TTLExpired}``      -> delete the Job object;
- ``JobCreated`` of a Job a CronJob object started (``eventbatch.kube.cronjobs``)
  -> create its Job object, owned by the CronJob; its ``JobRemoved`` (any
  reason) -> delete it.

Every side effect is idempotent: "already exists" or "already bound to that
node" is done, "not found" on a delete is done. What was done is recorded as
observation events whose causation points at the decision, and the position
below which every decision is done is stored as the consumer position
``kube-actuator``; a restart derives what is still due from the folded log,
so it neither repeats nor forgets. Actions for one object run in log order;
actions for different objects run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from eventbatch.kube.backoff import Backoff
from eventbatch.kube.client import Connection, Kube
from eventbatch.kube.crds import Groups, groups
from eventbatch.kube.cronjobs import cronjob_owner_uid
from eventbatch.kube.effects import Effects, Retry
from eventbatch.reactor import Reactor
from schemas.envelope import Causation, Envelope
from schemas.events import (
    ConfigMapDeletionRequested,
    ConfigMapRequested,
    JobCreated,
    JobRemoved,
    JobUpdated,
    PodBound,
    PodCreated,
    PodDeleted,
    PodDeletionRequested,
    PodEvicted,
    PodEvictionRequested,
    PodGroupCreated,
    PodGroupDeleted,
    PodGroupUpdated,
    PodRequested,
    PodStarted,
    SecretDeletionRequested,
    SecretRequested,
    ServiceDeletionRequested,
    ServiceRequested,
)
from schemas.events.base import Event

log = logging.getLogger(__name__)


@dataclass
class Action:
    position: int  # of the decision it carries out
    target: str  # one object: actions on it run in order
    event: Event
    attempts: int = 0
    not_before: int = 0  # clock ms: a failed action waits


@dataclass
class PodState:
    job: str
    requested_at: int
    uid: str = ""
    deleted: bool = False
    evicted: bool = False


@dataclass
class ActuatorStats:
    done: int = 0
    retried: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class KubeActuator(Reactor):
    name = "kube-actuator"

    def __init__(
        self,
        *,
        connection: Connection,
        concurrency: int = 16,
        backoff: Backoff | None = None,
        api_groups: Groups | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connection = connection
        self.api_groups = api_groups or groups()  # the custom resources' API groups (Settings.api_groups)
        self.concurrency = concurrency
        self.backoff = backoff or Backoff(base=0.25, cap=10.0, attempts=None)
        self.pods: dict[str, PodState] = {}
        self.job_uids: dict[str, str] = {}
        self.cron_jobs: set[str] = set()  # Jobs a CronJob object started: their objects are the actuator's
        self.pending: dict[str, list[Action]] = {}  # target -> actions in log order
        self.done_below = 0  # every decision below this position is done
        self.stats = ActuatorStats()
        self._saved_done_below = -1
        self._effects: Effects | None = None

    # -- fold ----------------------------------------------------------------

    def _enqueue(self, envelope: Envelope, target: str, event: Event, *, replace: bool = False) -> None:
        if envelope.position < self.done_below:
            return
        queue = self.pending.setdefault(target, [])
        if any(a.position == envelope.position for a in queue):
            return
        if replace:
            queue[:] = [a for a in queue if type(a.event) is not type(event)]
        queue.append(Action(envelope.position, target, event))
        queue.sort(key=lambda a: a.position)

    def _drop(self, target: str, *types: type) -> None:
        if target in self.pending:
            self.pending[target] = [a for a in self.pending[target] if not isinstance(a.event, types)]
            if not self.pending[target]:
                del self.pending[target]

    def fold(self, envelope: Envelope) -> bool:
        e = envelope.payload
        if isinstance(e, JobCreated) and cronjob_owner_uid(e.manifest):
            self.cron_jobs.add(e.job)
            self._enqueue(envelope, f"job:{e.job}", e)
            return True
        if isinstance(e, JobCreated | JobUpdated):
            if e.manifest.metadata.uid:
                self.job_uids[e.job] = e.manifest.metadata.uid
            return False
        if isinstance(e, PodRequested):
            pod = self.pods.get(e.pod)
            if pod is None or (pod.deleted and pod.requested_at != envelope.position):
                self.pods[e.pod] = PodState(e.job, envelope.position, uid=e.uid)
                if not e.uid:  # with a uid it exists already (another operator's): nothing to create
                    self._enqueue(envelope, f"pod:{e.pod}", e)
            return True
        if isinstance(e, PodCreated | PodStarted | PodEvicted | PodDeleted):
            pod = self.pods.get(e.pod)
            if pod is None or pod.deleted:
                return False
            target = f"pod:{e.pod}"
            if isinstance(e, PodCreated):
                cause = envelope.causation
                if cause is None or cause.position == pod.requested_at:
                    pod.uid = e.uid or pod.uid
                    self._drop(target, PodRequested)
            elif isinstance(e, PodStarted):
                self._drop(target, PodBound)
            elif isinstance(e, PodEvicted):
                pod.evicted = True
                self._drop(target, PodEvictionRequested, PodBound)
            else:
                pod.deleted = True
                self.pending.pop(target, None)
            return True
        if isinstance(e, PodBound):
            if (pod := self.pods.get(e.pod)) is not None and not pod.deleted:
                self._enqueue(envelope, f"pod:{e.pod}", e)
            return True
        if isinstance(e, PodDeletionRequested | PodEvictionRequested):
            if (pod := self.pods.get(e.pod)) is not None and not pod.deleted:
                self._drop(f"pod:{e.pod}", PodBound, PodRequested)  # a create not done yet is moot
                self._enqueue(envelope, f"pod:{e.pod}", e)
            return True
        if isinstance(e, PodGroupCreated | PodGroupUpdated | PodGroupDeleted):
            self._enqueue(envelope, f"podgroup:{e.podgroup}", e)
            return True
        if isinstance(e, ServiceRequested | ServiceDeletionRequested):
            self._enqueue(envelope, f"service:{e.name}", e)
            return True
        if isinstance(e, ConfigMapRequested | ConfigMapDeletionRequested):
            self._enqueue(envelope, f"configmap:{e.name}", e)
            return True
        if isinstance(e, SecretRequested | SecretDeletionRequested):
            self._enqueue(envelope, f"secret:{e.name}", e)
            return True
        if isinstance(e, JobRemoved) and (e.reason == "TTLExpired" or e.job in self.cron_jobs):
            self.cron_jobs.discard(e.job)
            self._enqueue(envelope, f"job:{e.job}", e)
            return True
        return False

    # -- what is due -----------------------------------------------------------

    def runnable(self, now: int) -> list[Action]:
        heads = [queue[0] for queue in self.pending.values() if queue and queue[0].not_before <= now]
        return sorted(heads, key=lambda a: a.position)

    def next_deadline(self) -> int | None:
        heads = [queue[0].not_before for queue in self.pending.values() if queue]
        return max(min(heads), self.clock.now()) if heads else None

    def due(self, now: int) -> list[list[Envelope]]:  # actions are async: see act()
        return []

    async def act(self) -> int:
        count = 0
        while batch := self.runnable(self.clock.now())[: self.concurrency]:
            results = await asyncio.gather(*(self._perform(a) for a in batch))
            now = self.clock.now()
            envelopes = [
                Envelope.wrap(ev, recorded_at=now, causation=Causation(action.position, self.name, i))
                for action, events in zip(batch, results, strict=True)
                for i, ev in enumerate(events or ())
            ]
            if envelopes:  # what one round did, in one append
                positions = await self.log.append(envelopes)
                for envelope, position in zip(envelopes, positions, strict=True):
                    self.fold(envelope.at(position))
                count += len(envelopes)
        await self._save_checkpoint()
        self.appended += count
        return count

    async def _perform(self, action: Action) -> list[Event] | None:
        """The observations of a completed action, or None when it must wait."""
        effects = await self._effects_for()
        queue = self.pending.get(action.target)
        try:
            events = await effects.perform(action, self)
        except Retry as wait:
            action.attempts += 1
            self.stats.retried += 1
            delay_ms = int((wait.delay if wait.delay is not None else self.backoff.delay(action.attempts)) * 1000)
            action.not_before = self.clock.now() + delay_ms
            log.info("action waits", extra={"target": action.target, "reason": wait.reason, "delay_ms": delay_ms})
            return None
        except Exception:
            action.attempts += 1
            self.stats.retried += 1
            action.not_before = self.clock.now() + int(self.backoff.delay(action.attempts) * 1000)
            log.exception("action failed, will retry", extra={"target": action.target, "position": action.position})
            return None
        if queue is not None and action in queue:
            queue.remove(action)
            if not queue:
                self.pending.pop(action.target, None)
        self.stats.done += 1
        kind = type(action.event).__name__
        self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        return events

    async def _effects_for(self) -> Effects:
        if self._effects is None:
            self._effects = Effects(await self.connection.get(), self.api_groups)
        return self._effects

    async def _save_checkpoint(self) -> None:
        heads = [q[0].position for q in self.pending.values() if q]
        self.done_below = min(heads) if heads else self.next_position
        if self.done_below != self._saved_done_below:
            await self.log.set_consumer_position(self.name, self.done_below)
            self._saved_done_below = self.done_below

    async def catch_up(self) -> int:
        if self._saved_done_below < 0:
            stored = await self.log.get_consumer_position(self.name)
            self.done_below = self._saved_done_below = stored or 0
        return await super().catch_up()

    def owner(self, job: str) -> dict[str, Any] | None:
        """The owner reference of a Job object, when the Job came from the API server."""
        uid = self.job_uids.get(job)
        if not uid:
            return None
        group, version = self.api_groups["Job"]
        return {
            "apiVersion": f"{group}/{version}",
            "kind": "Job",
            "name": job.split("/", 1)[1],
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


__all__ = ["Action", "KubeActuator", "Kube"]
