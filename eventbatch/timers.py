"""The timer service: turns ``TimerScheduled`` decisions into ``TimerFired`` events.

Where it sits: handlers ask for time by deciding ``TimerScheduled{timer,
fire_at}``; this runtime component folds the pending timers from the log and,
once the clock passes ``fire_at``, appends ``TimerFired{timer, now}`` with
causation pointing at the ``TimerScheduled`` it answers. A later
``TimerScheduled`` with the same id replaces the earlier one;
``TimerCancelled`` drops it. After a restart the fold already holds every
firing that was appended, so no timer fires twice, and none is lost.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass

from eventbatch.clock import Clock
from eventbatch.follow import read_to_tail
from eventbatch.log.port import EventLog
from schemas.envelope import Causation, Envelope
from schemas.events import TimerCancelled, TimerFired, TimerScheduled

NAME = "timers"


@dataclass(frozen=True)
class PendingTimer:
    timer: str
    fire_at: int
    owner: str
    purpose: str
    scheduled_at: int  # log position of the TimerScheduled


class TimerService:
    def __init__(self, *, log: EventLog, clock: Clock) -> None:
        self.log = log
        self.clock = clock
        self.pending: dict[str, PendingTimer] = {}
        self.next_position = 0
        self.fired = 0
        self._changed = asyncio.Event()

    def observe(self, envelope: Envelope) -> None:
        self.next_position = envelope.position + 1
        event = envelope.payload
        if isinstance(event, TimerScheduled):
            self.pending[event.timer] = PendingTimer(
                event.timer, event.fire_at, event.owner, event.purpose, envelope.position
            )
        elif isinstance(event, TimerCancelled | TimerFired):
            self.pending.pop(event.timer, None)
        else:
            return
        self._changed.set()

    def next_deadline(self) -> int | None:
        return min((t.fire_at for t in self.pending.values()), default=None)

    async def catch_up(self) -> int:
        self.next_position = await read_to_tail(self.log, self.next_position, self.observe)
        return self.next_position

    async def fire_due(self) -> int:
        """Append ``TimerFired`` for every timer due now, earliest first. Returns how many."""
        now = self.clock.now()
        due = sorted(
            (t for t in self.pending.values() if t.fire_at <= now),
            key=lambda t: (t.fire_at, t.scheduled_at),
        )
        for timer in due:
            fired = TimerFired(timer=timer.timer, now=now, owner=timer.owner, purpose=timer.purpose)
            envelope = Envelope.wrap(
                fired, recorded_at=now, causation=Causation(timer.scheduled_at, NAME, 0)
            )
            await self.log.append([envelope])
            self.pending.pop(timer.timer, None)
            self.fired += 1
        return len(due)

    async def run(self) -> None:
        """Follow the log and fire timers on the clock, until cancelled."""
        await self.catch_up()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow(), name="timers-follow")
            tasks.create_task(self._fire_loop(), name="timers-fire")

    async def _follow(self) -> None:
        async with aclosing(self.log.read(self.next_position, follow=True)) as events:
            async for envelope in events:
                self.observe(envelope)

    async def _fire_loop(self) -> None:
        while True:
            self._changed.clear()
            await self.fire_due()
            deadline = self.next_deadline()
            waiters = [asyncio.ensure_future(self._changed.wait())]
            if deadline is not None:
                waiters.append(asyncio.ensure_future(self.clock.sleep_until(deadline)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
