"""The audit timeline, rendered: each event of a job or queue in a few words.

Where it sits: ``projections.views.viewset`` keeps each timeline as the
log positions of its events; ``ReadModelStore.audit`` reads their records and
``timeline`` turns them into ``AuditRow``s (``eventbatch audit``, the
console's job page).
``detail`` names an event the way a person reads a timeline
(``PodFailed(exit 3)``, ``PodBound(default/a-0 -> n1)``); ``rule`` says what
made a decision: the ``rule`` a scheduler decision carries, the lifecycle
policy a job controller decision quotes, or its reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from projections.dispatch import EventTable
from projections.views import wire
from projections.views.rows import AuditRow
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.events.base import Event

# How far back a decision's trigger may lie for a timeline that does not hold it to describe
# it (``fill_causes``): a decision answers a trigger a few records back. What the read models
# allowed when they kept a ring of the last 20,000 records to find triggers in.
TRIGGER_WINDOW = 20_000

# Decisions whose ``message`` quotes the policy that matched ("...; policy X -> Action").
_POLICY_MARK = "; policy "


def _job_phase(e: ev.JobPhaseChanged) -> str:
    action = f", {e.action}" if e.action and e.action != "SyncJob" else ""
    return f"{e.phase}{action}"


def _pod_failed(e: ev.PodFailed) -> str:
    return f"exit {e.exit_code}" + (f", {e.reason}" if e.reason else "")


def _pod_restarted(e: ev.PodRestarted) -> str:
    return f"restart {e.restart_count}, exit {e.exit_code}"


def _pod_on(e: ev.PodStarted | ev.PodBindFailed) -> str:
    return f"{e.pod} on {e.node}"


def _pod_to(e: ev.PodBound | ev.PodPipelined) -> str:
    if e.devices:  # the GPU devices of the node it gets
        return f"{e.pod} -> {e.node} GPU {','.join(str(d) for d in e.devices)}"
    return f"{e.pod} -> {e.node}"


def _eviction(e: ev.PodEvictionRequested) -> str:
    return e.pod + (f" for {e.preemptor}" if e.preemptor else "")


def _refused(e: ev.JobCommandRefused | ev.QueueRequestRefused) -> str:
    return f"{e.action}: {e.reason}"


def _timer(e: ev.TimerScheduled | ev.TimerFired) -> str:
    return e.purpose or e.timer


_TABLE: EventTable[str] = EventTable()
_TABLE.on(ev.PodFailed, _pod_failed)
_TABLE.on(ev.PodRestarted, _pod_restarted)
_TABLE.on(ev.PodStarted, _pod_on)
_TABLE.on(ev.PodBound, _pod_to)
_TABLE.on(ev.PodPipelined, _pod_to)
_TABLE.on(ev.PodBindFailed, _pod_on)
_TABLE.on(ev.PodEvictionRequested, _eviction)
_TABLE.on(ev.JobPhaseChanged, _job_phase)
_TABLE.on(ev.JobCommandRequested, lambda e: e.command.action)
_TABLE.on(ev.JobCommandRefused, _refused)
_TABLE.on(ev.QueueStateChanged, lambda e: e.state)
_TABLE.on(ev.QueueCommandRequested, lambda e: e.action)
_TABLE.on(ev.QueueRequestRefused, _refused)
_TABLE.on(ev.PodGroupPhaseChanged, lambda e: e.phase)
_TABLE.on(ev.PodGroupUnschedulable, lambda e: e.reason)
_TABLE.on(ev.TimerScheduled, _timer)
_TABLE.on(ev.TimerFired, _timer)
_TABLE.on(ev.SchedulingRequested, lambda e: e.reason)
_TABLE.on(ev.HandlerFailed, lambda e: f"{e.handler}: {e.error}")
_DETAILS = _TABLE.fns


def detail(env: Envelope) -> str:
    """``Type(what)``: the event in a few words."""
    fn = _DETAILS.get(type(env.payload))
    inner = fn(env.payload) if fn is not None else ""
    if not inner:
        pod = getattr(env.payload, "pod", "")
        inner = pod or ""
    return f"{env.type}({inner})" if inner else env.type


# Decisions whose ``reason`` says why they were made (observations carry a reason too,
# but it describes what happened, not a rule).
_REASONED: frozenset[type[Event]] = frozenset(
    {ev.JobPhaseChanged, ev.QueueStateChanged, ev.PodDeletionRequested, ev.JobCommandRefused, ev.JobUpdateRefused,
     ev.QueueRequestRefused}
)


def rule(env: Envelope) -> str:
    """What made this decision: scheduler rule, quoted policy, or reason."""
    e = env.payload
    made_by = getattr(e, "rule", "")
    if made_by:
        return made_by
    if type(e) not in _REASONED or env.causation is None:
        return ""
    message = getattr(e, "message", "")
    if isinstance(message, str) and _POLICY_MARK in message:
        return "policy " + message.split(_POLICY_MARK, 1)[1]
    return getattr(e, "reason", "")


def timeline(scope: str, name: str, entries: Iterable[tuple[int, bytes | None]]) -> list[AuditRow]:
    """``AuditRow``s of ``(position, record)`` entries, each position once, in order.

    A decision's trigger is described when the same timeline holds it (else
    ``fill_causes`` does, from its record read apart: ``triggers_wanted``); a
    record that cannot be read any more, or is no longer to be had (None), is
    shown as such.
    """
    envelopes: dict[int, Envelope | None] = {}
    gone: set[int] = set()
    for position, data in sorted(entries, key=lambda entry: entry[0]):
        if position not in envelopes:
            if data is None:
                gone.add(position)
            envelopes[position] = None if data is None else wire.envelope(position, data)
    details = {p: detail(env) for p, env in envelopes.items() if env is not None}
    rows = []
    for position, env in envelopes.items():
        if env is None:
            what = "record removed from the log" if position in gone else "unreadable record"
            rows.append(AuditRow(scope, name, position, "?", 0, what, None, "", "", ""))
            continue
        cause = env.causation
        rows.append(AuditRow(
            scope, name, position, env.type, env.recorded_at, details[position],
            cause.position if cause is not None else None, cause.handler if cause is not None else "",
            details.get(cause.position, "") if cause is not None else "", rule(env),
        ))
    return rows


def timelines(entries: Mapping[tuple[str, str], Iterable[tuple[int, bytes | None]]]) -> list[AuditRow]:
    """Every timeline of ``{(scope, name): [(position, record)]}``, in (scope, name, position) order."""
    return [row for (scope, name), items in sorted(entries.items()) for row in timeline(scope, name, items)]


def triggers_wanted(rows: Iterable[AuditRow]) -> list[int]:
    """The positions of the triggers ``fill_causes`` describes: those the rows' timelines
    do not hold, at most ``TRIGGER_WINDOW`` records before their decision."""
    return sorted({
        row.cause_position for row in rows
        if row.cause_position is not None and not row.cause_detail and row.position - row.cause_position < TRIGGER_WINDOW
    })


def fill_causes(rows: list[AuditRow], causes: dict[int, bytes]) -> list[AuditRow]:
    """Describe the triggers a timeline does not hold from ``causes`` (position -> record:
    the records of ``triggers_wanted``)."""
    out = []
    for row in rows:
        if row.cause_position is not None and not row.cause_detail and row.cause_position in causes:
            trigger = wire.envelope(row.cause_position, causes[row.cause_position])
            if trigger is not None:
                row = msgspec.structs.replace(row, cause_detail=detail(trigger))
        out.append(row)
    return out
