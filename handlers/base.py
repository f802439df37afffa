"""The shape of a handler: fold the log into state, decide on each event.

Where it sits: every decision-maker (job lifecycle, queue lifecycle,
scheduler) implements ``Handler[S]``, ``S`` its state's type; the runtime (``eventbatch.runtime``) drives
it over the log. A handler is pure: no I/O, no clock, no randomness, no
dependence on hash order. Time reaches it only as events (``recorded_at`` of
the trigger, ``TimerFired.now``, ``SchedulingRequested.now``).

The runner guarantees, for trigger T:
- ``state`` has folded every event at positions <= T, and the handler's own
  earlier decisions (folded right after their trigger, not where they landed);
- ``decide`` is called at most once per trigger over the life of the log:
  a trigger already answered (found through ``causation``) is not answered
  again after a restart;
- the returned events are appended as one atomic batch, each stamped with
  causation ``(T, name, index)`` and the trigger's ``recorded_at``, then
  folded into ``state``.

A handler whose fold of its own decisions reads nothing of where they landed
(their ``position``) says so with ``position_free_decisions = True``: the
runner may then fold each trigger's decisions right after it before they are
appended, and append the decisions to a whole chunk of triggers at once
(``HandlerRunner.run``). A handler without it (the scheduler's cluster state
keeps the position of every event it folds) gets one append per trigger.

A handler that reads only some event types says which with ``interests``: a
frozenset of the ``Envelope.type`` of every event its ``fold`` or ``decide``
reads (``reads`` builds it from the classes its dispatch tables are keyed by,
so the two cannot drift). For any other event the runner calls neither: it
still advances its position past it and counts it towards the next snapshot,
and a trigger of such a type that the log shows answered (by an earlier
version of the handler) still has its recorded decisions folded after it. A
handler declares ``interests`` only where skipping is exact: on every state
its runner can reach, ``fold`` of another type leaves the state as it was and
``decide`` returns nothing (``tests/unit/test_handler_interests.py`` checks
each handler over every event type of the schema). Without it (``None``, the
default) every event is folded and decided: the job controller's fold keeps
the ``recorded_at`` of every event (``JobsState.now``), the scheduler's the
position of every event (``ClusterState.position``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from schemas.envelope import Envelope
from schemas.events.base import Event

S = TypeVar("S")


def reads(*tables: Iterable[type[Event]]) -> frozenset[str]:
    """The ``interests`` of a handler that reads the event classes of ``tables`` (a fold table's
    keys, the classes its ``decide`` routes): the ``Envelope.type`` of each (its class name)."""
    return frozenset(cls.__name__ for table in tables for cls in table)


def interests_of(handler: Any) -> frozenset[str] | None:
    """The event types ``handler`` reads (its ``interests``), or None: every event."""
    interests: frozenset[str] | None = getattr(handler, "interests", None)
    return interests


class Handler(Protocol[S]):
    """A decision-maker over the log, with state of type ``S`` (what ``initial`` returns, ``fold`` keeps).

    Two class attributes are optional, read where present (``position_free_decisions``,
    ``interests``; see the module's docstring): a handler without them (the scheduler's,
    a test's) is still a ``Handler``."""

    name: str

    def initial(self) -> S:
        """A fresh state (before position 0)."""
        ...

    def fold(self, state: S, envelope: Envelope) -> S:
        """Apply one event to the state; may mutate it in place; return it."""
        ...

    def decide(self, state: S, envelope: Envelope) -> list[Event]:
        """The decisions that answer ``envelope``; must not mutate ``state``."""
        ...
