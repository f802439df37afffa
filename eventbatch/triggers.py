"""The scheduling trigger: appends ``SchedulingRequested`` when a session is due.

Where it sits: the scheduler is a handler that runs one session per
``SchedulingRequested`` on the log, which keeps every session anchored to a
log position and therefore replayable. This runtime component decides *when*
to ask: after events that can change a scheduling decision (the scheduler's
``is_relevant``), after a window on the clock in which a burst of events is
gathered into one session, and optionally every ``period_ms`` while idle. The
window follows what sessions cost: ``pace`` times the latest session's time,
between ``min_debounce_ms`` and ``debounce_ms``, so a quiet cluster is
answered within milliseconds and a busy one batches as much as the full
debounce allows.
While following the log it keeps at most one request ahead of the scheduler
(``taken_up``): events that arrive during a session are answered by the next
one, so sessions never queue up behind a busy scheduler.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from eventbatch.checkpointed import CheckpointedFollower
from eventbatch.clock import Clock
from eventbatch.log.port import EventLog
from schemas.envelope import Causation, Envelope
from schemas.events import SchedulingRequested

NAME = "scheduling-trigger"


class SchedulingTrigger(CheckpointedFollower):
    name = NAME
    STATE = ("last_relevant", "last_request")

    def __init__(
        self,
        *,
        log: EventLog,
        clock: Clock,
        is_relevant: Callable[[Envelope], bool],
        debounce_ms: int = 50,
        min_debounce_ms: int = 2,
        pace: float = 8.0,
        period_ms: int | None = None,
        scheduler: str = "eventbatch",
    ) -> None:
        self.log = log
        self.clock = clock
        self.is_relevant = is_relevant
        self.debounce_ms = debounce_ms
        self.period_ms = period_ms
        self.scheduler = scheduler
        self.next_position = 0
        self.last_relevant = -1  # position of the latest relevant event seen
        self.last_request = -1  # position of the latest SchedulingRequested
        self.requested = 0
        self._asked_for = -1  # the relevant event a request on its way to the log answers (memory only)
        # In ``run``: whether the scheduler has taken up the request at a position (wired by the
        # composition root to the scheduler's runner). None: never wait for it.
        self.taken_up: Callable[[int], bool] | None = None
        # In ``run``: how long the latest session took, in ms (wired like ``taken_up``). The
        # window a burst is gathered in is ``pace`` times that, at least ``min_debounce_ms`` and
        # at most ``debounce_ms``: short when sessions are cheap (a quiet cluster answers in a
        # few ms), the full debounce when they are costly (batching keeps the scheduler's share
        # of the CPU near 1 / (1 + pace)).
        self.session_ms: Callable[[], float] | None = None
        self.min_debounce_ms = min(min_debounce_ms, debounce_ms)
        self.pace = pace
        self._last_asked = -1  # position of the latest request this trigger appended
        self._changed = asyncio.Event()

    def observe(self, envelope: Envelope) -> None:
        self.next_position = envelope.position + 1
        if isinstance(envelope.payload, SchedulingRequested):
            self.last_request = max(self.last_request, envelope.position)
        elif self.is_relevant(envelope):
            self.last_relevant = envelope.position
            self._changed.set()

    @property
    def due(self) -> bool:
        """A relevant event arrived after the latest request (and no request for it is on its way)."""
        return self.last_relevant > max(self.last_request, self._asked_for)

    async def request(self, reason: str = "") -> int:
        """Append one ``SchedulingRequested`` now; returns its position.

        A request that answers relevant events names the latest of them as its
        cause, so a second request for the same events shows on the log as a
        duplicate. The request is folded when it is read back, like any event.
        """
        now = self.clock.now()
        answering = self.last_relevant if self.due else -1
        if not reason:
            reason = f"events up to #{self.last_relevant}" if answering >= 0 else "period"
        event = SchedulingRequested(scheduler=self.scheduler, now=now, reason=reason)
        causation = Causation(answering, self.name, 0, self.next_position) if answering >= 0 else None
        self._asked_for = max(self._asked_for, answering)
        [position] = await self.log.append([Envelope.wrap(event, recorded_at=now, causation=causation)])
        self.requested += 1
        self._last_asked = position
        return position

    async def catch_up(self) -> int:
        position = await super().catch_up()
        self._asked_for = -1  # every request appended so far is folded now
        return position

    async def run(self) -> None:
        await self.catch_up()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow(), name="trigger-follow")
            tasks.create_task(self._request_loop(), name="trigger-request")

    async def _previous_taken_up(self) -> None:
        """One request outstanding at a time: while the scheduler is still behind the last
        one, what arrives meanwhile waits for the next session instead of queueing one
        session per debounce (which, once sessions take longer than the debounce, would
        feed a backlog of sessions each as costly as the last)."""
        if self.taken_up is None or self._last_asked < 0:
            return
        while not self.taken_up(self._last_asked):  # noqa: ASYNC110 - polled: an Event set on the runner's every event would cost its fold path
            await asyncio.sleep(0.001)

    def window_ms(self) -> int:
        """How long to gather relevant events before asking for a session, in whole ms."""
        if self.session_ms is None:
            return self.debounce_ms
        return min(self.debounce_ms, max(self.min_debounce_ms, math.ceil(self.pace * self.session_ms())))

    async def _request_loop(self) -> None:
        last = self.clock.now()
        while True:
            if self.due:
                await self._previous_taken_up()
                await self.clock.sleep_until(self.clock.now() + self.window_ms())
                await self.request()
                last = self.clock.now()
                continue
            self._changed.clear()
            waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._changed.wait())]
            if self.period_ms is not None:
                waiters.append(asyncio.ensure_future(self.clock.sleep_until(last + self.period_ms)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if not self.due and self.period_ms is not None and self.clock.now() >= last + self.period_ms:
                await self.request("period")
                last = self.clock.now()
