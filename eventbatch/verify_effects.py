"""Verifying what the runtime components did: every effect reproduced, none twice, none lost.

Where it sits: beside ``eventbatch.verify`` (which re-runs the handlers),
behind ``replay --verify``. The handlers decide; the components that act on
the clock (the timer service, the simulated kubelet, the scheduling trigger,
the kube actuator) append what they did with the causation of what caused it.
This module checks those records against their inputs:

- **Reactors** (``timers``, ``sim``) are re-folded from the log the way they
  ran. Each recorded batch names in its causation the position its
  component had folded up to when it decided (``seen``); the check folds the
  log up to there, asks the reactor what is due at the batch's
  ``recorded_at`` and compares. A batch that is not among them is
  *unreproduced*; a second batch for a cause already answered is
  *duplicated*. At the end, an effect that was due before the component's
  last answer, whose cause it had read, and that it never answered is
  *lost*.
- **Other components** (the scheduling trigger, the kube actuator, whose
  effects depend on a cluster the log does not hold) are checked for
  duplicates: one answer per cause.
- **Handlers' batches appended twice** (a producer retry) are duplicates too:
  the runtime ignores the second copy, but every other reader folds it.

An answer whose causation has no ``seen`` (written before components
recorded it) is checked at its own position.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from eventbatch.clock import VirtualClock
from eventbatch.log.port import EventLog
from eventbatch.reactor import Reactor
from schemas.envelope import Causation, Envelope

# Events a reactor's check may hold back while waiting for the next answer's ``seen``.
MAX_LAG = 200_000


@dataclass(frozen=True)
class EffectDivergence:
    kind: str  # "unreproduced" | "duplicated" | "lost"
    component: str
    cause: int  # position of what the effect answers
    position: int | None  # of the recorded batch's first event (None when lost)
    recorded: str  # what the log holds ("" when lost)
    expected: str  # what the component does there ("" when nothing)

    def describe(self) -> str:
        if self.kind == "lost":
            return (
                f"{self.component}: {self.expected} answering #{self.cause} was due and never appended "
                f"(the component read #{self.cause} and went on)"
            )
        if self.kind == "duplicated":
            return f"#{self.position} {self.component}: {self.recorded} answers #{self.cause} again (duplicated effect)"
        instead = self.expected or "nothing"
        return f"#{self.position} {self.component}: {self.recorded} answering #{self.cause} is not reproduced; it does {instead} instead"


@dataclass
class EffectCheck:
    name: str
    answers: int = 0  # batches read
    reproduced: int = 0  # batches the component does again from the same state


def _describe(batch: list) -> str:
    from eventbatch.verify import describe_event

    return " + ".join(describe_event(e.payload if isinstance(e, Envelope) else e) for e in batch)


class _Reproduce:
    """One reactor re-folded from the log; each recorded batch checked at the state it saw."""

    def __init__(self, reactor: Reactor, out: list[EffectDivergence], check: EffectCheck) -> None:
        self.reactor = reactor
        self.name = reactor.name
        self.out = out
        self.check = check
        self.held: deque[Envelope] = deque()  # read, not yet folded
        self.answered: set[int] = set()
        self.batch: list[Envelope] = []  # the recorded batch being read
        self.batch_cause = -1  # the position of the cause that batch answers
        self.expected: list[Envelope] | None = None
        self.last_seen = -1
        self.last_time = 0

    def process(self, envelope: Envelope) -> None:
        cause = envelope.causation
        if cause is not None and cause.handler == self.name:
            if self.batch and cause.position == self.batch_cause and cause.index == len(self.batch):
                self.batch.append(envelope)
            else:
                self._finish()
                self._begin(envelope, cause)
        elif self.batch:
            self._finish()
        self.held.append(envelope)
        if len(self.held) > MAX_LAG:
            self.reactor.observe(self.held.popleft())

    def _fold_before(self, position: int) -> None:
        while self.held and self.held[0].position < position:
            self.reactor.observe(self.held.popleft())

    def _begin(self, envelope: Envelope, cause: Causation) -> None:
        seen = cause.seen if cause.seen >= 0 else envelope.position
        self._fold_before(seen)
        self.batch, self.batch_cause = [envelope], cause.position
        self.last_seen, self.last_time = max(self.last_seen, seen), envelope.recorded_at
        self.check.answers += 1
        if cause.position in self.answered:
            self.expected = None
            self.out.append(EffectDivergence("duplicated", self.name, cause.position, envelope.position, "", ""))
            return
        self.answered.add(cause.position)
        due = {Reactor.cause_of(b): b for b in self.reactor.due(envelope.recorded_at)}
        self.expected = due.get(cause.position, [])

    def _finish(self) -> None:
        if not self.batch:
            return
        batch, expected, self.batch = self.batch, self.expected, []
        first = batch[0]
        recorded = _describe(batch)
        if expected is None:  # duplicated: say what it was
            last = self.out[-1]
            self.out[-1] = EffectDivergence(last.kind, last.component, last.cause, last.position, recorded, "")
            return
        if [e.payload for e in batch] == [e.payload for e in expected]:
            self.check.reproduced += 1
            return
        self.out.append(
            EffectDivergence("unreproduced", self.name, self.batch_cause, first.position, recorded,
                             _describe(expected) if expected else "")
        )

    def end(self) -> None:
        self._finish()
        self._fold_before(1 << 62)
        if self.last_seen < 0:
            return
        for batch in self.reactor.due(self.last_time):
            cause = Reactor.cause_of(batch)
            if cause < self.last_seen and cause not in self.answered:
                self.out.append(EffectDivergence("lost", self.name, cause, None, "", _describe(batch)))


class _Once:
    """A component whose effects are checked for duplicates only: one answer per cause and index."""

    def __init__(self, name: str, out: list[EffectDivergence], check: EffectCheck) -> None:
        self.name = name
        self.out = out
        self.check = check
        self.seen: set[tuple[int, int]] = set()

    def process(self, envelope: Envelope) -> None:
        cause = envelope.causation
        if cause is None or cause.handler != self.name:
            return
        if cause.index == 0:
            self.check.answers += 1
        key = (cause.position, cause.index)
        if key in self.seen:
            self.out.append(EffectDivergence("duplicated", self.name, cause.position, envelope.position,
                                             _describe([envelope]), ""))
        else:
            self.seen.add(key)
            self.check.reproduced += cause.index == 0

    def end(self) -> None:
        pass


class _HandlerBatches:
    """Handlers' batches appended twice: the runtime ignores the copy, other readers fold it."""

    def __init__(self, handlers: set[str], out: list[EffectDivergence]) -> None:
        self.handlers = handlers
        self.out = out
        self.seen: set[tuple[str, int, int]] = set()

    def process(self, envelope: Envelope) -> None:
        cause = envelope.causation
        if cause is None or cause.handler not in self.handlers:
            return
        key = (cause.handler, cause.position, cause.index)
        if key in self.seen:
            self.out.append(EffectDivergence("duplicated", cause.handler, cause.position, envelope.position,
                                             _describe([envelope]), ""))
        else:
            self.seen.add(key)

    def end(self) -> None:
        pass


def reactor_factories(*, sim_startup_ms: int) -> dict[str, Callable[[EventLog], Reactor]]:
    """The reactors whose effects can be reproduced from the log alone, by name."""
    from eventbatch.sim.kubelet import SimKubelet
    from eventbatch.timers import TimerService

    return {
        "timers": lambda log: TimerService(log=log, clock=VirtualClock()),
        "sim": lambda log: SimKubelet(log=log, clock=VirtualClock(), startup_latency_ms=sim_startup_ms),
    }


ONCE_ONLY = ("scheduling-trigger", "kube-actuator")


class EffectsVerifier:
    """Feed it every record in log order from 0 (``process``), then ``end()``."""

    def __init__(self, log: EventLog, *, handlers: set[str], sim_startup_ms: int) -> None:
        self.divergences: list[EffectDivergence] = []
        self.checks: dict[str, EffectCheck] = {}
        self._names: set[str] = set()
        self._checks: list = [_HandlerBatches(handlers, self.divergences)]
        for name, make in reactor_factories(sim_startup_ms=sim_startup_ms).items():
            self._checks.append(_Reproduce(make(log), self.divergences, self._check(name)))
        for name in ONCE_ONLY:
            self._checks.append(_Once(name, self.divergences, self._check(name)))

    def checks_component(self, name: str) -> bool:
        return name in self._names

    def _check(self, name: str) -> EffectCheck:
        self._names.add(name)
        return self.checks.setdefault(name, EffectCheck(name))

    def process(self, envelope: Envelope) -> None:
        for check in self._checks:
            check.process(envelope)

    def end(self) -> list[EffectDivergence]:
        for check in self._checks:
            check.end()
        self.checks = {name: c for name, c in self.checks.items() if c.answers}
        self.divergences.sort(key=lambda d: (d.position if d.position is not None else d.cause, d.component))
        return self.divergences
