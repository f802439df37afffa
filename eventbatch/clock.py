"""Clocks for the runtime: the wall clock, and a virtual one for tests and simulation.

Where it sits: only the runtime reads a clock, to stamp ``recorded_at`` on
what it appends and to decide *when* to append timer and scheduling events.
Handlers never see it. All times are integer milliseconds.

``VirtualClock`` never moves by itself: ``advance_to`` moves it and wakes every
sleeper whose deadline has come, in deadline order, so a simulated day runs
as fast as the CPU allows and a test never sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Milliseconds since the clock's epoch."""

    async def sleep_until(self, deadline: int) -> None:
        """Return once ``now() >= deadline``."""


class SystemClock:
    """Wall-clock milliseconds since the Unix epoch."""

    def now(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep_until(self, deadline: int) -> None:
        delay = (deadline - self.now()) / 1000
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: int = 0) -> None:
        self._now = start
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> int:
        return self._now

    async def sleep_until(self, deadline: int) -> None:
        if deadline <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), future))
        await future

    def next_deadline(self) -> int | None:
        """The earliest deadline anybody waits for, or None."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled sleepers
        return self._sleepers[0][0] if self._sleepers else None

    def advance_to(self, moment: int) -> None:
        """Move to ``moment`` (never backwards) and wake the sleepers it reaches."""
        if moment < self._now:
            raise ValueError(f"virtual clock cannot go back from {self._now} to {moment}")
        self._now = moment
        while self._sleepers and self._sleepers[0][0] <= moment:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def advance(self, delta: int) -> None:
        self.advance_to(self._now + delta)
