"""The queue lifecycle: Volcano's queue controller as a pure handler.

Where it sits: owns queues. It answers each queue request on the log with
facts (``QueueCreated``, ``QueueUpdated``, ``QueueStateChanged``,
``QueueDeleted``) or with ``QueueRequestRefused``, which changes nothing; the
scheduler and the read models fold the facts (only Open queues admit new
podgroups).

- Create: ``QueueCreated``, then the queue opens (its manifest may ask for
  ``Closed`` through ``status.state``). Creating an existing queue is refused.
- Update: ``QueueUpdated`` with the new spec (the state is changed by
  commands, not by updates); refused for an unknown queue, for a change of
  ``parent`` (a queue does not move in the hierarchy), and for a parent that
  does not exist. An unchanged spec records nothing.
- ``close``: Closed at once when no podgroup is live in the queue, else
  Closing, and Closed when the last live podgroup finishes. Closing a
  parent closes its children too.
- ``open``: Open, from Closing or Closed.
- Delete: refused for ``default`` and ``root``, for a queue that is not
  Closed, and for a queue that still has live podgroups or child queues.
"""

from __future__ import annotations

from handlers.base import Handler, reads
from projections import queues as projection
from projections.dispatch import FoldTable
from projections.queues import QueuesState
from schemas.envelope import Envelope
from schemas.events import (
    QueueCommandRequested,
    QueueCreated,
    QueueCreateRequested,
    QueueDeleted,
    QueueDeleteRequested,
    QueueRequestRefused,
    QueueStateChanged,
    QueueUpdated,
    QueueUpdateRequested,
)
from schemas.events.base import Event

PROTECTED = frozenset({"default", "root"})


def _change(queue: str, previous: str, state: str, reason: str) -> QueueStateChanged:
    return QueueStateChanged(queue=queue, state=state, previous=previous, reason=reason)


def _create(state: QueuesState, event: QueueCreateRequested) -> list[Event]:
    if event.queue in state.queues:
        return [QueueRequestRefused(queue=event.queue, action="create", reason="queue already exists")]
    wanted = (event.manifest.status.state if event.manifest.status else "") or "Open"
    return [
        QueueCreated(queue=event.queue, manifest=event.manifest),
        QueueStateChanged(queue=event.queue, state="Closed" if wanted == "Closed" else "Open", reason="created"),
    ]


def parent_problem(old: str, new: str) -> str:
    """Why an update may not move a queue from parent ``old`` to ``new``, or "" (the command line checks the same)."""
    if (new or "") != (old or ""):
        return f"spec.parent cannot change (is {old or 'root'!r}, asked {new or 'root'!r})"
    return ""


def _update(state: QueuesState, event: QueueUpdateRequested) -> list[Event]:
    info = state.queues.get(event.queue)
    new = event.manifest.spec
    if info is None:
        return [QueueRequestRefused(queue=event.queue, action="update", reason="queue not found")]
    reason = parent_problem(info.manifest.spec.parent, new.parent)
    if reason:
        return [QueueRequestRefused(queue=event.queue, action="update", reason=reason)]
    if new == info.manifest.spec:
        return []
    return [QueueUpdated(queue=event.queue, manifest=event.manifest)]


def _children(state: QueuesState, parent: str) -> list[str]:
    return [q.name for q in state.queues.values() if q.manifest.spec.parent == parent and q.name != parent]


def _close(state: QueuesState, name: str, reason: str) -> list[Event]:
    decisions: list[Event] = []
    for child in _children(state, name):
        decisions += _close(state, child, f"parent {name} closed")
    info = state.queues[name]
    target = "Closing" if info.podgroups else "Closed"
    if info.state not in (target, "Closed"):
        decisions.append(_change(name, info.state, target, reason))
    return decisions


def _command(state: QueuesState, event: QueueCommandRequested) -> list[Event]:
    info = state.queues.get(event.queue)
    if info is None:
        return [QueueRequestRefused(queue=event.queue, action=event.action, reason="queue not found")]
    if event.action == "close":
        return _close(state, event.queue, "closed by command")
    if event.action == "open":
        return [] if info.state == "Open" else [_change(event.queue, info.state, "Open", "opened by command")]
    return [QueueRequestRefused(queue=event.queue, action=event.action, reason="action must be open or close")]


def delete_problem(name: str, state: str | None, podgroups: int, children: list[str]) -> str:
    """Why the queue ``name`` cannot be deleted, or "" when it can (the command line checks the same).

    ``state`` is None for a queue that does not exist; ``podgroups`` counts its live podgroups.
    """
    if name in PROTECTED:
        return f"queue {name} cannot be deleted"
    if state is None:
        return "queue not found"
    if state != "Closed":
        return f"only a Closed queue can be deleted; {name} is {state or 'not ready'}"
    if podgroups:
        return f"queue still has {podgroups} podgroup(s)"
    if children:
        return f"queue has child queues: {', '.join(children)}"
    return ""


def _on_delete(state: QueuesState, event: QueueDeleteRequested) -> list[Event]:
    return _delete(state, event.queue)


def _delete(state: QueuesState, name: str) -> list[Event]:
    info = state.queues.get(name)
    reason = delete_problem(
        name,
        None if info is None else info.state,
        len(info.podgroups) if info is not None else 0,
        _children(state, name) if info is not None else [],
    )
    if reason:
        return [QueueRequestRefused(queue=name, action="delete", reason=reason)]
    return [QueueDeleted(queue=name)]


def _settle_closing(state: QueuesState) -> list[Event]:
    """A Closing queue whose last live podgroup just went becomes Closed."""
    return [
        _change(info.name, info.state, "Closed", "no podgroups left")
        for info in state.queues.values()
        if info.state == "Closing" and not info.podgroups
    ]


# The requests the controller answers, each with its function (looked up by the payload's class).
_REQUESTS: FoldTable[QueuesState, [], list[Event]] = FoldTable()
_REQUESTS.on(QueueCreateRequested, _create)
_REQUESTS.on(QueueUpdateRequested, _update)
_REQUESTS.on(QueueCommandRequested, _command)
_REQUESTS.on(QueueDeleteRequested, _on_delete)
_answers = _REQUESTS.folds


class QueueHandler(Handler[QueuesState]):
    name = "queue-controller"
    position_free_decisions = True  # its fold reads no position
    # What it folds, and the requests it answers. Every other event leaves the state as it was
    # and is answered with nothing: ``_settle_closing`` closes a Closing queue in answer to the
    # event that took its last live podgroup (one the fold reads), so between triggers no
    # Closing queue is left without one. (Only a decide that failed on that event, recorded as
    # ``HandlerFailed``, leaves one; it is then closed at the next event folded, not the next
    # event of any type.)
    interests = reads(projection.FOLDS, _answers)

    def initial(self) -> QueuesState:
        return QueuesState()

    def fold(self, state: QueuesState, envelope: Envelope) -> QueuesState:
        return projection.fold(state, envelope)

    def decide(self, state: QueuesState, envelope: Envelope) -> list[Event]:
        event = envelope.payload
        answer = _answers.get(type(event))
        if answer is not None:
            return answer(state, event)
        return _settle_closing(state)
