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

Every observation's causation points at the event it answers (the pods a
removed node loses are one batch answering the ``NodeRemoved``), and what is
due is derived from the state folded from the log alone (``Reactor``), so a
restarted simulator repeats nothing and forgets nothing, with or without a
snapshot. The state holds live pods only: a deleted pod is forgotten.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection
from dataclasses import dataclass

from eventbatch.reactor import Reactor
from projections.dispatch import FoldTable
from schemas.envelope import Envelope
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
    """One live pod incarnation (a pod name is reused when a job restarts its pods)."""

    pod: str
    job: str
    duration: int | None
    exit_code: int
    requested_at: int  # position of PodRequested: the incarnation
    created: bool = False
    node: str = ""
    bound_at: int = -1  # position of PodBound
    bound_time: int = 0
    started_at: int = -1  # position of PodStarted
    start_time: int = 0
    finished: bool = False
    kill: tuple[str, str, int] | None = None  # (how, reason, position of the request)


def _run_time_ms(text: str) -> int | None:
    """``duration_ms`` of a sim-duration annotation, None when it is not a duration. Whole
    seconds (``"5400s"``, as trace imports write them) are read at once: the same value,
    without the general parser's exact fractions; anything else goes through it."""
    if 1 < len(text) <= 10 and text[-1] == "s" and text[:-1].isdigit() and text[:-1].isascii():
        return int(text[:-1]) * 1000  # at most 999,999,999 s: within Go's int64 of nanoseconds
    try:
        return duration_ms(text)
    except QuantityError:
        return None


def pod_runtime(annotations: dict[str, str]) -> tuple[int | None, int]:
    """Run time (ms, None = forever) and exit code from a pod's sim annotations."""
    duration = None
    if DURATION in annotations:
        duration = _run_time_ms(annotations[DURATION])
    try:
        code = int(annotations.get(EXIT_CODE, "0"))
    except ValueError:
        code = 1
    return duration, code


class SimKubelet(Reactor):
    name = "sim"
    STATE = ("pods", "work", "timed", "seq")
    DUE_FROM_FOLDS_ONLY = True

    def __init__(self, *, startup_latency_ms: int = 1_000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.startup_latency_ms = startup_latency_ms
        self.pods: dict[str, SimPod] = {}  # live incarnations only: a deleted pod is forgotten
        # Immediate work by cause position, in log order: ("create" | "kill" | "lost", pods).
        self.work: dict[int, tuple[str, list[str]]] = {}
        self.timed: list[tuple[int, int, str, int]] = []  # heap of (time, seq, pod, incarnation)
        self.seq = 0

    # -- fold ---------------------------------------------------------------

    def _later(self, at: int, pod: SimPod) -> None:
        self.seq += 1
        heapq.heappush(self.timed, (at, self.seq, pod.pod, pod.requested_at))

    def fold(self, envelope: Envelope) -> bool:
        cause = envelope.causation
        if cause is not None and cause.handler == self.name:
            self.work.pop(cause.position, None)  # answered: the first event of the batch says so
        event = envelope.payload
        handler = _FOLDS.get(type(event))
        if handler is None:
            return False
        handler(self, event, envelope)
        return True

    def _requested(self, event: PodRequested, envelope: Envelope) -> None:
        if event.pod in self.pods:
            return  # the incarnation is still alive: a repeated request changes nothing
        duration, code = pod_runtime(event.manifest.metadata.annotations)
        self.pods[event.pod] = SimPod(event.pod, event.job, duration, code, envelope.position)
        self.work[envelope.position] = ("create", [event.pod])

    def _created(self, event: PodCreated, envelope: Envelope) -> None:
        if (pod := self.pods.get(event.pod)) is not None:
            pod.created = True

    def _bound(self, event: PodBound, envelope: Envelope) -> None:
        pod = self.pods.get(event.pod)
        if pod is None or pod.node or pod.kill is not None:
            return  # stale decision: a real kubelet would never see it
        pod.node, pod.bound_at, pod.bound_time = event.node, envelope.position, envelope.recorded_at
        self._later(envelope.recorded_at + self.startup_latency_ms, pod)

    def _started(self, event: PodStarted, envelope: Envelope) -> None:
        pod = self.pods.get(event.pod)
        if pod is not None and pod.started_at < 0:
            pod.started_at, pod.start_time = envelope.position, envelope.recorded_at
            if pod.duration is not None:
                self._later(envelope.recorded_at + pod.duration, pod)

    def _finished(self, event: PodSucceeded | PodFailed, envelope: Envelope) -> None:
        if (pod := self.pods.get(event.pod)) is not None:
            pod.finished = True

    def _deleted(self, event: PodDeleted | PodEvicted, envelope: Envelope) -> None:
        if (pod := self.pods.pop(event.pod, None)) is not None:
            self.work.pop(pod.requested_at, None)  # a create not done is moot once the pod is gone

    def _kill(self, event: PodDeletionRequested | PodEvictionRequested, envelope: Envelope) -> None:
        pod = self.pods.get(event.pod)
        if pod is None or pod.kill is not None:
            return
        how = "evict" if isinstance(event, PodEvictionRequested) else "delete"
        pod.kill = (how, event.reason, envelope.position)
        self.work[envelope.position] = ("kill", [pod.pod])

    def _node_removed(self, event: NodeRemoved, envelope: Envelope) -> None:
        lost = [pod for pod in self.pods.values() if pod.node == event.node and pod.kill is None]
        for pod in lost:
            pod.kill = ("lost", "NodeLost", envelope.position)
        if lost:
            self.work[envelope.position] = ("lost", [pod.pod for pod in lost])

    # -- what is due --------------------------------------------------------

    def next_deadline(self) -> int | None:
        if self.work:
            return self.clock.now()
        while self.timed:
            at, _, name, incarnation = self.timed[0]
            if self._timed_action(name, incarnation, at) is not None:
                return at
            heapq.heappop(self.timed)  # stale for good: dropping it changes nothing due
        return None

    def _timed_action(self, name: str, incarnation: int, at: int) -> str | None:
        pod = self.pods.get(name)
        if pod is None or pod.requested_at != incarnation or pod.kill is not None or pod.finished:
            return None
        if pod.node and pod.started_at < 0 and at == pod.bound_time + self.startup_latency_ms:
            return "start"
        if pod.started_at >= 0 and pod.duration is not None and at == pod.start_time + pod.duration:
            return "finish"
        return None

    def due(self, now: int) -> list[list[Envelope]]:
        return self.due_skipping(now, ())

    def due_skipping(self, now: int, skip: Collection[int]) -> list[list[Envelope]]:
        """``due(now)`` without the batches answering a cause in ``skip``, which are not built."""
        batches: list[list[Envelope]] = []
        for cause, (kind, names) in self.work.items():
            if cause in skip:
                continue
            if batch := self._immediate(cause, kind, names, now):
                batches.append(batch)
        ready: list[tuple[int, int, str, int]] = []
        while self.timed and self.timed[0][0] <= now:
            ready.append(heapq.heappop(self.timed))
        for entry in ready:
            at, _, name, incarnation = entry
            action = self._timed_action(name, incarnation, at)
            if action is None:
                continue  # stale for good
            heapq.heappush(self.timed, entry)  # stays until its answer is folded
            pod = self.pods[name]
            if (pod.bound_at if action == "start" else pod.started_at) in skip:
                continue
            if action == "start":
                batches.append(self._wrap(now, pod.bound_at, [
                    PodStarted(pod=pod.pod, job=pod.job, node=pod.node),
                    PodReady(pod=pod.pod, job=pod.job),
                ]))
            else:
                end: Event = (
                    PodSucceeded(pod=pod.pod, job=pod.job)
                    if pod.exit_code == 0
                    else PodFailed(pod=pod.pod, job=pod.job, exit_code=pod.exit_code, reason="Error")
                )
                batches.append(self._wrap(now, pod.started_at, [end]))
        return batches

    def _immediate(self, cause: int, kind: str, names: list[str], now: int) -> list[Envelope]:
        events: list[Event] = []
        for name in names:
            pod = self.pods.get(name)
            if pod is None:
                continue
            if kind == "create":
                if pod.requested_at == cause and not pod.created and pod.kill is None:
                    events.append(PodCreated(pod=pod.pod, job=pod.job, uid=f"sim-{pod.requested_at}"))
                continue
            if pod.kill is None or pod.kill[2] != cause:
                continue
            how, reason, _ = pod.kill
            if how == "evict":
                events.append(PodEvicted(pod=pod.pod, job=pod.job, reason=reason))
            elif how == "lost" and not pod.finished:
                events.append(PodFailed(pod=pod.pod, job=pod.job, exit_code=NODE_LOST_EXIT, reason=reason))
            events.append(PodDeleted(pod=pod.pod, job=pod.job, reason=reason))
        return self._wrap(now, cause, events)

    def _wrap(self, now: int, cause: int, events: list[Event]) -> list[Envelope]:
        return self.answer(cause, events, now=now) if events else []


# The fold of each event class the kubelet reads, looked up by the payload's class;
# ``on`` checks that a fold takes the class it is keyed by.
_TABLE: FoldTable[SimKubelet, [Envelope], None] = FoldTable()
_TABLE.on(PodRequested, SimKubelet._requested)
_TABLE.on(PodCreated, SimKubelet._created)
_TABLE.on(PodBound, SimKubelet._bound)
_TABLE.on(PodStarted, SimKubelet._started)
_TABLE.on(PodSucceeded, SimKubelet._finished)
_TABLE.on(PodFailed, SimKubelet._finished)
_TABLE.on(PodDeleted, SimKubelet._deleted)
_TABLE.on(PodEvicted, SimKubelet._deleted)
_TABLE.on(PodDeletionRequested, SimKubelet._kill)
_TABLE.on(PodEvictionRequested, SimKubelet._kill)
_TABLE.on(NodeRemoved, SimKubelet._node_removed)
_FOLDS = _TABLE.folds
