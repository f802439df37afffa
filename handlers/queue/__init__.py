"""The queue lifecycle: Volcano's queue controller as a pure handler.

Where it sits: answers queue intents on the log with ``QueueStateChanged``,
``QueueDeleted`` or ``QueueRequestRefused``; the scheduler reads the state
(only Open queues admit new podgroups).

- A created queue opens (its manifest may ask for ``Closed`` through
  ``status.state``). Creating an existing queue is refused.
- ``close``: Closed at once when no podgroup is live in the queue, else
  Closing, and Closed when the last live podgroup finishes. Closing a
  parent closes its children too.
- ``open``: Open, from Closing or Closed.
- Delete: refused for ``default`` and ``root``, for a queue that is not
  Closed, and for a queue that still has live podgroups or child queues.
"""

from __future__ import annotations

from schemas.envelope import Envelope
from schemas.events import (
    QueueCommandIssued,
    QueueCreated,
    QueueDeleted,
    QueueDeleteRequested,
    QueueRequestRefused,
    QueueStateChanged,
)
from schemas.events.base import Event
from projections import queues as projection
from projections.queues import QueuesState

PROTECTED = frozenset({"default", "root"})


class QueueHandler:
    name = "queue-controller"

    def initial(self) -> QueuesState:
        return QueuesState()

    def fold(self, state: QueuesState, envelope: Envelope) -> QueuesState:
        return projection.fold(state, envelope)

    def decide(self, state: QueuesState, envelope: Envelope) -> list[Event]:
        event = envelope.payload
        if isinstance(event, QueueCreated):
            return _created(state, envelope)
        if isinstance(event, QueueCommandIssued):
            return _command(state, event)
        if isinstance(event, QueueDeleteRequested):
            return _delete(state, event.queue)
        return _settle_closing(state)


def _change(info, state: str, reason: str) -> QueueStateChanged:
    return QueueStateChanged(queue=info.name, state=state, previous=info.state, reason=reason)


def _created(state: QueuesState, envelope: Envelope) -> list[Event]:
    event = envelope.payload
    info = state.queues[event.queue]
    if info.state:  # it existed before this event
        return [QueueRequestRefused(queue=event.queue, action="create", reason="queue already exists")]
    wanted = (event.manifest.status.state if event.manifest.status else "") or "Open"
    return [_change(info, "Closed" if wanted == "Closed" else "Open", "created")]


def _children(state: QueuesState, parent: str) -> list[str]:
    return [q.name for q in state.queues.values() if q.manifest.spec.parent == parent and q.name != parent]


def _close(state: QueuesState, name: str, reason: str) -> list[Event]:
    decisions: list[Event] = []
    for child in _children(state, name):
        decisions += _close(state, child, f"parent {name} closed")
    info = state.queues[name]
    target = "Closing" if info.podgroups else "Closed"
    if info.state not in (target, "Closed"):
        decisions.append(_change(info, target, reason))
    return decisions


def _command(state: QueuesState, event: QueueCommandIssued) -> list[Event]:
    info = state.queues.get(event.queue)
    if info is None:
        return [QueueRequestRefused(queue=event.queue, action=event.action, reason="queue not found")]
    if event.action == "close":
        return _close(state, event.queue, "closed by command")
    if event.action == "open":
        return [] if info.state == "Open" else [_change(info, "Open", "opened by command")]
    return [QueueRequestRefused(queue=event.queue, action=event.action, reason="action must be open or close")]


def _delete(state: QueuesState, name: str) -> list[Event]:
    info = state.queues.get(name)
    reason = ""
    if name in PROTECTED:
        reason = f"queue {name} cannot be deleted"
    elif info is None:
        reason = "queue not found"
    elif info.state != "Closed":
        reason = f"only a Closed queue can be deleted; {name} is {info.state or 'not ready'}"
    elif info.podgroups:
        reason = f"queue still has {len(info.podgroups)} podgroup(s)"
    elif _children(state, name):
        reason = f"queue has child queues: {', '.join(_children(state, name))}"
    if reason:
        return [QueueRequestRefused(queue=name, action="delete", reason=reason)]
    return [QueueDeleted(queue=name)]


def _settle_closing(state: QueuesState) -> list[Event]:
    """A Closing queue whose last live podgroup just went becomes Closed."""
    return [
        _change(info, "Closed", "no podgroups left")
        for info in state.queues.values()
        if info.state == "Closing" and not info.podgroups
    ]
