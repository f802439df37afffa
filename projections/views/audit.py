"""The audit timeline: which job and queue each event belongs to, in a few words.

Where it sits: used by ``projections.views.viewset`` to build ``AuditRow``s.
``detail`` names an event the way a person reads a timeline
(``PodFailed(exit 3)``, ``PodBound(default/a-0 -> n1)``); ``rule`` says what
made a decision: the ``rule`` a scheduler decision carries, the lifecycle
policy a job controller decision quotes, or its reason.
"""

from __future__ import annotations

from collections.abc import Callable

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
    "JobCommandIssued": lambda e: e.command.action,
    "JobCommandRefused": lambda e: f"{e.action}: {e.reason}",
    "QueueStateChanged": lambda e: e.state,
    "QueueCommandIssued": lambda e: e.action,
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
