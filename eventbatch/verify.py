"""``replay --verify``: re-run every handler over the recorded log and compare.

Where it sits: the proof behind the log. For each handler it applies the
runtime's rule (``eventbatch.runtime``): at trigger T the state has folded
every other writer's event up to T and the handler's own decisions right
after their trigger. It calls ``decide`` on T and compares the result with
the decisions recorded with causation ``(T, handler)``, then folds the
*recorded* decisions (not its own), so one divergence does not cascade.

Two kinds of divergence are reported:
- ``unreproduced``: a recorded decision that re-running does not give, with
  its position, the handler, and what the handler decides instead;
- ``unrecorded``: a decision re-running gives that the log does not hold.

With a ``SnapshotStore``, each handler starts from its snapshot instead of
position 0 and the tail after it is verified: what stays possible once the
log before the snapshots is compacted away.

What the components that act on the clock recorded (timers, the simulated
kubelet, the scheduling trigger, the kube actuator) is checked beside the
decisions by ``eventbatch.verify_effects``: each effect reproduced from the
state its component had seen, none twice, none lost. That check reads the
log from position 0; a log that no longer starts there (compacted) or a
verify from snapshots checks the handlers only.

What the log holds that no decision check can pass is listed beside the
divergences: each ``HandlerFailed`` (a ``decide`` raised and the runtime
appended the dead letter: re-running raises again, so it "matches", but the
trigger was never answered), each quarantined record (undecodable, so no
handler ever saw it) and the records of event types this build does not
know, by type. ``eventbatch simulate`` lists the same failures of its run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from eventbatch.follow import read_to_tail
from eventbatch.log.port import EventLog, Quarantined
from eventbatch.snapshots import SnapshotStore
from eventbatch.verify_effects import EffectCheck, EffectDivergence, EffectsVerifier
from handlers.base import Handler
from schemas.envelope import Envelope
from schemas.events import HandlerFailed
from schemas.events.base import Event


@dataclass(frozen=True)
class Divergence:
    kind: str  # "unreproduced" | "unrecorded"
    handler: str
    trigger: int  # position of the trigger
    trigger_type: str
    position: int | None  # position of the recorded decision (None when unrecorded)
    recorded: str  # the recorded decision, "" when unrecorded
    decided: str  # what re-running decides instead, "" when it decides nothing there

    def describe(self) -> str:
        where = f"#{self.position}" if self.position is not None else f"for trigger #{self.trigger}"
        if self.kind == "unreproduced":
            instead = self.decided or "nothing"
            return (
                f"{where} {self.handler}: recorded {self.recorded} (answering {self.trigger_type} "
                f"#{self.trigger}) is not reproduced; it decides {instead} instead"
            )
        return (
            f"{where} {self.handler}: decides {self.decided} (answering {self.trigger_type} "
            f"#{self.trigger}), which is not recorded"
        )


def last_line(error: str) -> str:
    """The line of an error that says what went wrong (its last), with the exception type."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    kind = lines[0].split(":", 1)[0]
    last = lines[-1]
    return last if len(lines) == 1 or last.startswith(kind) or " " in kind else f"{kind}: {last}"


@dataclass(frozen=True)
class Failure:
    """A ``HandlerFailed`` on the log: a trigger whose handler raised instead of deciding."""

    position: int  # of the HandlerFailed record
    handler: str
    trigger: int  # position of the trigger it answers (-1 if the record names none)
    trigger_type: str
    error: str

    @classmethod
    def of(cls, envelope: Envelope) -> Failure | None:
        event = envelope.payload
        if not isinstance(event, HandlerFailed):
            return None
        cause = envelope.causation
        return cls(
            position=envelope.position,
            handler=event.handler or (cause.handler if cause is not None else ""),
            trigger=cause.position if cause is not None else -1,
            trigger_type=event.trigger_type,
            error=event.error,
        )

    def describe(self) -> str:
        trigger = f" answering {self.trigger_type} #{self.trigger}" if self.trigger >= 0 else ""
        return f"#{self.position} {self.handler} failed{trigger}: {last_line(self.error)}"


def describe_quarantined(record: Quarantined) -> str:
    return f"#{record.position} quarantined (undecodable): {last_line(record.error)}"


async def quarantined_between(log: EventLog, start: int, end: int) -> list[Quarantined]:
    """The records the log quarantined at positions ``start <= p < end`` (read them first)."""
    return [q for q in await log.quarantined() if start <= q.position < end]


@dataclass
class HandlerCheck:
    name: str
    triggers: int = 0
    decisions_matched: int = 0
    fold_failures: int = 0


@dataclass
class VerifyReport:
    end: int
    checks: dict[str, HandlerCheck] = field(default_factory=dict)
    divergences: list[Divergence] = field(default_factory=list)
    not_verified: dict[str, int] = field(default_factory=dict)  # handler name -> decisions
    failures: list[Failure] = field(default_factory=list)  # every HandlerFailed, in log order
    quarantined: list[Quarantined] = field(default_factory=list)  # undecodable records
    unknown_types: dict[str, int] = field(default_factory=dict)  # event type -> records skipped
    effects: list[EffectDivergence] = field(default_factory=list)  # components' effects that do not check out
    effect_checks: dict[str, EffectCheck] = field(default_factory=dict)
    effects_verified: bool = False  # False when the check could not read the log from 0

    @property
    def empty(self) -> bool:
        return self.end == 0

    @property
    def ok(self) -> bool:
        """Every recorded decision and effect is reproduced, none is missing, none is doubled."""
        return not self.divergences and not self.effects and not self.empty

    @property
    def clean(self) -> bool:
        """No handler failed, nothing was quarantined, every record's type is known."""
        return not (self.failures or self.quarantined or self.unknown_types)


def describe_event(event: Event) -> str:
    import msgspec

    fields = msgspec.structs.asdict(event)
    shown = ", ".join(
        f"{k}={v!r}" for k, v in fields.items() if not isinstance(v, (msgspec.Struct, dict, list)) and v not in ("", None)
    )
    return f"{type(event).__name__}({shown})"


class _Check:
    """One handler re-run the way the runtime runs it."""

    def __init__(
        self, handler: Handler, recorded: dict[int, list[Envelope]], report: VerifyReport, *, start: int = 0,
        state: Any = None,
    ) -> None:
        self.handler = handler
        self.name = handler.name
        self.start = start
        self.state: Any = handler.initial() if state is None else state
        self.recorded = recorded
        self.report = report
        self.check = report.checks.setdefault(self.name, HandlerCheck(self.name))

    def _fold(self, envelope: Envelope) -> None:
        try:
            self.state = self.handler.fold(self.state, envelope)
        except Exception:
            self.check.fold_failures += 1

    def _decide(self, trigger: Envelope) -> Sequence[Event]:
        try:
            return self.handler.decide(self.state, trigger)
        except Exception as exc:
            return [HandlerFailed(handler=self.name, trigger_type=trigger.type, error=f"{type(exc).__name__}: {exc}")]

    def process(self, envelope: Envelope) -> None:
        cause = envelope.causation
        if envelope.position < self.start or (cause is not None and cause.handler == self.name):
            return
        self._fold(envelope)
        recorded = self.recorded.pop(envelope.position, [])
        decided = list(self._decide(envelope))
        self.check.triggers += 1
        self._compare(envelope, recorded, decided)
        for decision in recorded:
            self._fold(decision)

    def _compare(self, trigger: Envelope, recorded: list[Envelope], decided: list[Event]) -> None:
        for index in range(max(len(recorded), len(decided))):
            got = recorded[index] if index < len(recorded) else None
            want = decided[index] if index < len(decided) else None
            if got is not None and want is not None and got.payload == want:
                self.check.decisions_matched += 1
                continue
            kind = "unreproduced" if got is not None else "unrecorded"
            self.report.divergences.append(
                Divergence(
                    kind=kind,
                    handler=self.name,
                    trigger=trigger.position,
                    trigger_type=trigger.type,
                    position=got.position if got is not None else None,
                    recorded=describe_event(got.payload) if got is not None else "",
                    decided=describe_event(want) if want is not None else "",
                )
            )


async def verify(
    log: EventLog,
    handlers: Sequence[Handler],
    *,
    on_progress: Callable[[int, int], None] | None = None,
    progress_every: int = 2_000,
    snapshots: SnapshotStore | None = None,
    sim_startup_ms: int = 1_000,
) -> VerifyReport:
    """Re-run ``handlers`` over the log (from their snapshots, if given); list every divergence."""
    end = await log.end_position()
    saved = {h.name: await snapshots.load(h.name) for h in handlers} if snapshots is not None else {}
    starts = {h.name: (s.position if (s := saved.get(h.name)) is not None else 0) for h in handlers}
    first = min(starts.values(), default=0)
    report = VerifyReport(end=end)
    names = {h.name for h in handlers}
    recorded: dict[str, dict[int, dict[int, Envelope]]] = {name: {} for name in names}
    effects = (
        EffectsVerifier(log, handlers=names, sim_startup_ms=sim_startup_ms)
        if first == 0 and await log.start_position() == 0
        else None
    )

    def collect(envelope: Envelope) -> None:
        if effects is not None and envelope.position < end:
            effects.process(envelope)
        if envelope.position < end and (failure := Failure.of(envelope)) is not None:
            report.failures.append(failure)
        cause = envelope.causation
        if cause is None:
            return
        if cause.handler not in names:
            if effects is None or not effects.checks_component(cause.handler):
                report.not_verified[cause.handler] = report.not_verified.get(cause.handler, 0) + 1
            return
        by_index = recorded[cause.handler].setdefault(cause.position, {})
        by_index.setdefault(cause.index, envelope)  # a batch appended twice: the first copy counts

    unknown_before = dict(log.stats.unknown_types)
    await read_to_tail(log, first, collect)  # the one pass that counts what the log skips
    report.unknown_types = {
        kind: count - unknown_before.get(kind, 0)
        for kind, count in sorted(log.stats.unknown_types.items())
        if count > unknown_before.get(kind, 0)
    }
    report.quarantined = await quarantined_between(log, first, end)
    if effects is not None:
        report.effects = effects.end()
        report.effect_checks = effects.checks
        report.effects_verified = True
    checks = [
        _Check(
            h,
            {t: [d[i] for i in sorted(d)] for t, d in recorded[h.name].items() if t >= starts[h.name]},
            report,
            start=starts[h.name],
            state=s.state if (s := saved.get(h.name)) is not None else None,
        )
        for h in handlers
    ]
    async with aclosing(log.read(first)) as events:
        async for envelope in events:
            if envelope.position >= end:
                break
            for check in checks:
                check.process(envelope)
            if on_progress is not None and envelope.position % progress_every == 0:
                on_progress(envelope.position + 1, end)
            if envelope.position + 1 >= end:
                break
    for check in checks:  # decisions whose trigger is not on the log (or was never reached)
        for trigger, decisions in sorted(check.recorded.items()):
            for d in decisions:
                report.divergences.append(
                    Divergence("unreproduced", check.name, trigger, "(missing)", d.position,
                               describe_event(d.payload), "")
                )
    if on_progress is not None:
        on_progress(end, end)
    report.divergences.sort(key=lambda d: (d.trigger, d.position if d.position is not None else -1, d.handler))
    return report
