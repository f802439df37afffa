"""The timer service: turns ``TimerScheduled`` decisions into ``TimerFired`` events.

Where it sits: handlers ask for time by deciding ``TimerScheduled{timer,
fire_at}``; this reactor folds the pending timers from the log and, once the
clock passes ``fire_at``, appends ``TimerFired{timer, now}`` with causation
pointing at the ``TimerScheduled`` it answers. A later ``TimerScheduled`` with
the same id replaces the earlier one; ``TimerCancelled`` drops it. After a
restart the fold already holds every firing that was appended, so no timer
fires twice, and none is lost (``Reactor``). A ``TimerFired`` clears only
the schedule it answers: one that fires while its handler reschedules the
same timer leaves the new schedule pending.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventbatch.reactor import Reactor
from schemas.envelope import Envelope
from schemas.events import TimerCancelled, TimerFired, TimerScheduled


@dataclass(frozen=True)
class PendingTimer:
    timer: str
    fire_at: int
    owner: str
    purpose: str
    scheduled_at: int  # log position of the TimerScheduled


class TimerService(Reactor):
    name = "timers"
    STATE = ("pending",)
    DUE_FROM_FOLDS_ONLY = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pending: dict[str, PendingTimer] = {}

    def fold(self, envelope: Envelope) -> bool:
        event = envelope.payload
        if isinstance(event, TimerScheduled):
            self.pending[event.timer] = PendingTimer(
                event.timer, event.fire_at, event.owner, event.purpose, envelope.position
            )
            return True
        if isinstance(event, TimerCancelled):
            self.pending.pop(event.timer, None)
            return True
        if isinstance(event, TimerFired):
            pending = self.pending.get(event.timer)
            cause = envelope.causation
            if pending is not None and (cause is None or cause.position == pending.scheduled_at):
                del self.pending[event.timer]  # a firing of an earlier schedule leaves the new one
            return True
        return False

    def next_deadline(self) -> int | None:
        return min((t.fire_at for t in self.pending.values()), default=None)

    def due(self, now: int) -> list[list[Envelope]]:
        ready = sorted(
            (t for t in self.pending.values() if t.fire_at <= now),
            key=lambda t: (t.fire_at, t.scheduled_at),
        )
        return [
            self.answer(t.scheduled_at, [TimerFired(timer=t.timer, now=now, owner=t.owner, purpose=t.purpose)], now=now)
            for t in ready
        ]

    async def fire_due(self) -> int:
        """Append ``TimerFired`` for every timer due now, earliest first. Returns how many."""
        return await self.act()
