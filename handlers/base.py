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
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from schemas.envelope import Envelope
from schemas.events.base import Event

S = TypeVar("S")


class Handler(Protocol[S]):
    """A decision-maker over the log, with state of type ``S`` (what ``initial`` returns, ``fold`` keeps)."""

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
