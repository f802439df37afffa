"""The simulated kubelet and actuator: what a cluster would report, on the clock.

Where it sits: the ``sim`` cluster adapter. It folds decisions from the log
and appends the observations a real cluster would make:

- ``PodRequested``         -> ``PodCreated`` at once (the actuator's create);
- ``PodBound{node}``        -> ``PodStarted`` + ``PodReady`` after the startup
  latency;
- a running pod            -> ``PodSucceeded``, or ``PodFailed{exit_code}``,
  once its run time is over: annotation ``eventbatch.io/sim-duration`` (a Go
  duration such as ``90s`` or ``2h``; without it the pod runs until deleted)
  and ``eventbatch.io/sim-exit-code`` (default 0);
- ``PodDeletionRequested``  -> ``PodDeleted``;
- ``PodEvictionRequested``  -> ``PodEvicted`` + ``PodDeleted``;
- ``NodeRemoved``           -> every pod on that node ``PodFailed`` (exit 137,
  reason ``NodeLost``) + ``PodDeleted``.

Every observation's causation points at the event it answers, and what is
due is derived from folded state alone, so a restarted simulator repeats
nothing and forgets nothing.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from eventbatch.reactor import Reactor
from schemas.envelope import Causation, Envelope
from schemas.events import (
    NodeRemoved,
    PodBound,
    PodCreated,
    PodDeleted,
    PodDeletionRequested,
    PodEvicted,
    PodEvictionRequested,
    PodFailed,
    PodReady,
    PodRequested,
    PodStarted,
    PodSucceeded,
)
from schemas.events.base import Event
from schemas.quantity import QuantityError, duration_ms

DURATION = "eventbatch.io/sim-duration"
EXIT_CODE = "eventbatch.io/sim-exit-code"
NODE_LOST_EXIT = 137


@dataclass
class SimPod:
    pod: str
    job: str
    duration: int | None
    exit_code: int
    requested_at: int  # position of PodRequested
    created: bool = False
    node: str = ""
    bound_at: int = -1  # position of PodBound
    bound_time: int = 0
    started_at: int = -1  # position of PodStarted
    start_time: int = 0
    finished: bool = False
    gone: bool = False
    kill: tuple[str, str, int] | None = None  # (how, reason, position of the request)


def pod_runtime(annotations: dict[str, str]) -> tuple[int | None, int]:
    """Run time (ms, None = forever) and exit code from a pod's sim annotations."""
    duration = None
    if DURATION in annotations:
        try:
            duration = duration_ms(annotations[DURATION])
        except QuantityError:
            duration = None
    try:
        code = int(annotations.get(EXIT_CODE, "0"))
    except ValueError:
        code = 1
    return duration, code


class SimKubelet(Reactor):
    name = "sim"
    STATE = ("pods", "_now_queue", "_timed", "_seq")

    def __init__(self, *, startup_latency_ms: int = 1_000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.startup_latency_ms = startup_latency_ms
        self.pods: dict[str, SimPod] = {}
        self._now_queue: list[str] = []  # pods with an immediate action, in log order
        self._timed: list[tuple[int, int, str]] = []  # (time, seq, pod)
        self._seq = 0

    # -- fold ---------------------------------------------------------------

    def _later(self, at: int, pod: str) -> None:
        self._seq += 1
        heapq.heappush(self._timed, (at, self._seq, pod))

    def fold(self, envelope: Envelope) -> bool:
        event = envelope.payload
        handler = _FOLDS.get(type(event))
        if handler is None:
            return False
        handler(self, envelope, event)
        return True

    def _requested(self, envelope: Envelope, event: PodRequested) -> None:
        if event.pod in self.pods and not self.pods[event.pod].gone:
            return
        duration, code = pod_runtime(event.manifest.metadata.annotations)
        self.pods[event.pod] = SimPod(event.pod, event.job, duration, code, envelope.position)
        self._now_queue.append(event.pod)

    def _created(self, envelope: Envelope, event: PodCreated) -> None:
        if (pod := self.pods.get(event.pod)) is not None:
            pod.created = True

    def _bound(self, envelope: Envelope, event: PodBound) -> None:
        pod = self.pods.get(event.pod)
        if pod is None or pod.gone or pod.node:
            return  # stale decision: a real kubelet would never see it
        pod.node, pod.bound_at, pod.bound_time = event.node, envelope.position, envelope.recorded_at
        self._later(envelope.recorded_at + self.startup_latency_ms, pod.pod)

    def _started(self, envelope: Envelope, event: PodStarted) -> None:
        pod = self.pods.get(event.pod)
        if pod is not None and pod.started_at < 0:
            pod.started_at, pod.start_time = envelope.position, envelope.recorded_at
            if pod.duration is not None:
                self._later(envelope.recorded_at + pod.duration, pod.pod)

    def _finished(self, envelope: Envelope, event: Event) -> None:
        if (pod := self.pods.get(event.pod)) is not None:
            pod.finished = True

    def _deleted(self, envelope: Envelope, event: Event) -> None:
        if (pod := self.pods.get(event.pod)) is not None:
            pod.gone = True

    def _kill(self, envelope: Envelope, event: Event) -> None:
        pod = self.pods.get(event.pod)
        if pod is None or pod.gone or pod.kill is not None:
            return
        how = "evict" if isinstance(event, PodEvictionRequested) else "delete"
        pod.kill = (how, event.reason, envelope.position)
        self._now_queue.append(pod.pod)

    def _node_removed(self, envelope: Envelope, event: NodeRemoved) -> None:
        for pod in self.pods.values():
            if pod.node == event.node and not pod.gone and pod.kill is None:
                pod.kill = ("lost", "NodeLost", envelope.position)
                self._now_queue.append(pod.pod)

    # -- what is due --------------------------------------------------------

    def next_deadline(self) -> int | None:
        if self._now_queue:
            return self.clock.now()
        while self._timed:
            at, _, name = self._timed[0]
            if self._timed_action(self.pods[name], at) is not None:
                return at
            heapq.heappop(self._timed)
        return None

    def _timed_action(self, pod: SimPod, at: int) -> str | None:
        if pod.gone or pod.kill is not None or pod.finished:
            return None
        if pod.node and pod.started_at < 0 and at == pod.bound_time + self.startup_latency_ms:
            return "start"
        if pod.started_at >= 0 and pod.duration is not None and at == pod.start_time + pod.duration:
            return "finish"
        return None

    def due(self, now: int) -> list[list[Envelope]]:
        batches: list[list[Envelope]] = []
        queue, self._now_queue = self._now_queue, []
        for name in queue:
            batch = self._immediate(self.pods[name], now)
            if batch:
                batches.append(batch)
        while self._timed and self._timed[0][0] <= now:
            at, _, name = heapq.heappop(self._timed)
            pod = self.pods[name]
            action = self._timed_action(pod, at)
            if action == "start":
                batches.append(self._wrap(now, pod.bound_at, [
                    PodStarted(pod=pod.pod, job=pod.job, node=pod.node),
                    PodReady(pod=pod.pod, job=pod.job),
                ]))
            elif action == "finish":
                end: Event = (
                    PodSucceeded(pod=pod.pod, job=pod.job)
                    if pod.exit_code == 0
                    else PodFailed(pod=pod.pod, job=pod.job, exit_code=pod.exit_code, reason="Error")
                )
                batches.append(self._wrap(now, pod.started_at, [end]))
        return batches

    def _immediate(self, pod: SimPod, now: int) -> list[Envelope]:
        if pod.gone:
            return []
        if pod.kill is not None:
            how, reason, position = pod.kill
            events: list[Event] = []
            if how == "evict":
                events.append(PodEvicted(pod=pod.pod, job=pod.job, reason=reason))
            elif how == "lost" and not pod.finished:
                events.append(PodFailed(pod=pod.pod, job=pod.job, exit_code=NODE_LOST_EXIT, reason=reason))
            events.append(PodDeleted(pod=pod.pod, job=pod.job, reason=reason))
            return self._wrap(now, position, events)
        if not pod.created:
            return self._wrap(now, pod.requested_at, [PodCreated(pod=pod.pod, job=pod.job, uid=f"sim-{pod.requested_at}")])
        return []

    def _wrap(self, now: int, cause: int, events: list[Event]) -> list[Envelope]:
        return [
            Envelope.wrap(e, recorded_at=now, causation=Causation(cause, self.name, i))
            for i, e in enumerate(events)
        ]


_FOLDS = {
    PodRequested: SimKubelet._requested,
    PodCreated: SimKubelet._created,
    PodBound: SimKubelet._bound,
    PodStarted: SimKubelet._started,
    PodSucceeded: SimKubelet._finished,
    PodFailed: SimKubelet._finished,
    PodDeleted: SimKubelet._deleted,
    PodEvicted: SimKubelet._deleted,
    PodDeletionRequested: SimKubelet._kill,
    PodEvictionRequested: SimKubelet._kill,
    NodeRemoved: SimKubelet._node_removed,
}
