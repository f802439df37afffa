"""Reactors: runtime components that fold the log and append what is due on the clock.

Where it sits: the shared loop of the timer service and the simulated
cluster. A reactor folds every event (``observe``), knows which appends are
due at a given time (``due(now)``) and when the next one will be
(``next_deadline``). Because what is due is derived from folded state only,
a restarted reactor neither repeats nor forgets an append.

``catch_up`` + ``act`` step it (tests, simulation); ``run`` follows the log
and the clock until cancelled.
"""

from __future__ import annotations

import abc
import asyncio

from eventbatch.checkpointed import CheckpointedFollower
from eventbatch.clock import Clock
from eventbatch.log.port import EventLog
from schemas.envelope import Envelope


class Reactor(CheckpointedFollower, abc.ABC):
    name: str = "reactor"

    def __init__(self, *, log: EventLog, clock: Clock) -> None:
        self.log = log
        self.clock = clock
        self.next_position = 0
        self.appended = 0
        self._changed = asyncio.Event()

    @abc.abstractmethod
    def fold(self, envelope: Envelope) -> bool:
        """Apply one event; return True when it may change what is due."""

    @abc.abstractmethod
    def due(self, now: int) -> list[list[Envelope]]:
        """The batches to append at ``now``, in order; each is folded once appended."""

    @abc.abstractmethod
    def next_deadline(self) -> int | None:
        """When something will next be due, or None."""

    def observe(self, envelope: Envelope) -> None:
        self.next_position = envelope.position + 1
        if self.fold(envelope):
            self._changed.set()

    async def act(self) -> int:
        """Append every batch due now; returns how many events were appended."""
        count = 0
        while batches := self.due(self.clock.now()):
            for batch in batches:
                positions = await self.log.append(batch)
                for envelope, position in zip(batch, positions, strict=True):
                    self.fold(envelope.at(position))
                count += len(batch)
        self.appended += count
        return count

    async def run(self) -> None:
        await self.catch_up()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow(), name=f"{self.name}-follow")
            tasks.create_task(self._act_loop(), name=f"{self.name}-act")

    async def _act_loop(self) -> None:
        while True:
            self._changed.clear()
            await self.act()
            deadline = self.next_deadline()
            waiters = [asyncio.ensure_future(self._changed.wait())]
            if deadline is not None:
                waiters.append(asyncio.ensure_future(self.clock.sleep_until(deadline)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
