"""The audit timeline, rendered: each event of a job or queue in a few words.

Where it sits: ``projections.views.viewset`` keeps each timeline as the
records themselves; ``timeline`` turns them into ``AuditRow``s when they are
read (``eventbatch audit``, ``ReadModelStore.audit``).
``detail`` names an event the way a person reads a timeline
(``PodFailed(exit 3)``, ``PodBound(default/a-0 -> n1)``); ``rule`` says what
made a decision: the ``rule`` a scheduler decision carries, the lifecycle
policy a job controller decision quotes, or its reason.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from projections.views import wire
from projections.views.rows import AuditRow
from schemas.envelope import Envelope
from schemas.events.base import Event

# Decisions whose ``message`` quotes the policy that matched ("...; policy X -> Action").
_POLICY_MARK = "; policy "


def _job_phase(e) -> str:
    action = f", {e.action}" if e.action and e.action != "SyncJob" else ""
    return f"{e.phase}{action}"


_DETAILS: dict[str, Callable[[Event], str]] = {
    "PodFailed": lambda e: f"exit {e.exit_code}" + (f", {e.reason}" if e.reason else ""),
    "PodRestarted": lambda e: f"restart {e.restart_count}, exit {e.exit_code}",
    "PodStarted": lambda e: f"{e.pod} on {e.node}",
    "PodBound": lambda e: f"{e.pod} -> {e.node}",
    "PodPipelined": lambda e: f"{e.pod} -> {e.node}",
    "PodBindFailed": lambda e: f"{e.pod} on {e.node}",
    "PodEvictionRequested": lambda e: e.pod + (f" for {e.preemptor}" if e.preemptor else ""),
    "JobPhaseChanged": _job_phase,
    "JobCommandRequested": lambda e: e.command.action,
    "JobCommandRefused": lambda e: f"{e.action}: {e.reason}",
    "QueueStateChanged": lambda e: e.state,
    "QueueCommandRequested": lambda e: e.action,
    "QueueRequestRefused": lambda e: f"{e.action}: {e.reason}",
    "PodGroupPhaseChanged": lambda e: e.phase,
    "PodGroupUnschedulable": lambda e: e.reason,
    "TimerScheduled": lambda e: e.purpose or e.timer,
    "TimerFired": lambda e: e.purpose or e.timer,
    "SchedulingRequested": lambda e: e.reason,
    "HandlerFailed": lambda e: f"{e.handler}: {e.error}",
}


def detail(env: Envelope) -> str:
    """``Type(what)``: the event in a few words."""
    fn = _DETAILS.get(env.type)
    inner = fn(env.payload) if fn is not None else ""
    if not inner:
        pod = getattr(env.payload, "pod", "")
        inner = pod or ""
    return f"{env.type}({inner})" if inner else env.type


# Decisions whose ``reason`` says why they were made (observations carry a reason too,
# but it describes what happened, not a rule).
_REASONED = frozenset(
    {"JobPhaseChanged", "QueueStateChanged", "PodDeletionRequested", "JobCommandRefused", "JobUpdateRefused",
     "QueueRequestRefused"}
)


def rule(env: Envelope) -> str:
    """What made this decision: scheduler rule, quoted policy, or reason."""
    e = env.payload
    made_by = getattr(e, "rule", "")
    if made_by:
        return made_by
    if env.type not in _REASONED or env.causation is None:
        return ""
    message = getattr(e, "message", "")
    if isinstance(message, str) and _POLICY_MARK in message:
        return "policy " + message.split(_POLICY_MARK, 1)[1]
    return getattr(e, "reason", "")


def timeline(scope: str, name: str, entries) -> list[AuditRow]:
    """``AuditRow``s of ``(position, record)`` entries, each position once, in order.

    A decision's trigger is described when the same timeline holds it (else
    ``fill_causes`` does, from the triggers kept for other timelines); a
    record that cannot be read any more is shown as such.
    """
    envelopes: dict[int, Envelope | None] = {}
    for position, data in sorted(entries):
        if position not in envelopes:
            envelopes[position] = wire.envelope(position, data)
    details = {p: detail(env) for p, env in envelopes.items() if env is not None}
    rows = []
    for position, env in envelopes.items():
        if env is None:
            rows.append(AuditRow(scope, name, position, "?", 0, "unreadable record", None, "", "", ""))
            continue
        cause = env.causation
        rows.append(AuditRow(
            scope, name, position, env.type, env.recorded_at, details[position],
            cause.position if cause is not None else None, cause.handler if cause is not None else "",
            details.get(cause.position, "") if cause is not None else "", rule(env),
        ))
    return rows


def timelines(entries) -> list[AuditRow]:
    """Every timeline of ``{(scope, name): [(position, record)]}``, in (scope, name, position) order."""
    return [row for (scope, name), items in sorted(entries.items()) for row in timeline(scope, name, items)]


def fill_causes(rows: list[AuditRow], causes: dict[int, bytes]) -> list[AuditRow]:
    """Describe the triggers a timeline does not hold from ``causes`` (position -> record)."""
    out = []
    for row in rows:
        if row.cause_position is not None and not row.cause_detail and row.cause_position in causes:
            trigger = wire.envelope(row.cause_position, causes[row.cause_position])
            if trigger is not None:
                row = msgspec.structs.replace(row, cause_detail=detail(trigger))
        out.append(row)
    return out
