"""Reactors: runtime components that fold the log and append what is due on the clock.

Where it sits: the shared loop of the timer service and the simulated
cluster. A reactor folds every event in log order (``observe``), knows which
batches are due at a given time (``due(now)``) and when the next one will be
(``next_deadline``).

Exactly once, like a handler:

- ``due`` is a pure function of the folded state: it changes nothing that a
  snapshot would keep. Every batch it returns answers one cause, a log
  position, and carries the causation ``(cause, reactor, index)``.
- The reactor's state changes only by folding the log in order, its own
  answers included. A snapshot is therefore always the state at one log
  position, whenever it is taken.
- An answer is pending from its cause until the answer itself is folded.
  While it is on its way (appended, not yet read back) the cause is *in
  flight* and not appended again; in flight lives in memory only. After a
  restart, ``catch_up`` reads to the tail before anything is acted on, so
  every answer that reached the log is folded and none is repeated; a batch
  that did not reach the log is still due and is appended.

``catch_up`` + ``act`` step it (tests, simulation): ``act`` reads the log to
its tail before each round, so chained effects (a start, then a finish) come
in one call. ``run`` follows the log and the clock until cancelled; there the
follower alone folds.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Collection
from typing import Any

from eventbatch.checkpointed import CheckpointedFollower
from eventbatch.clock import Clock
from eventbatch.log.port import EventLog
from schemas.envelope import Causation, Envelope


class Reactor(CheckpointedFollower, abc.ABC):
    name: str = "reactor"
    # True where ``due`` reads nothing but the folded state and ``now`` (timers, the simulated
    # kubelet), and ``fold`` returns True for every event that changes that state: once nothing
    # is due, ``act`` does not ask again until such an event (or its own answer) is folded or the
    # clock moves. False where it also reads what the outside world holds (the kube adapter).
    # Used while stepping (simulations, tests); a following reactor (serve) asks ``due`` anew
    # at every wake-up, as its act loop runs beside the task that folds.
    DUE_FROM_FOLDS_ONLY: bool = False
    # The batches due at one moment go to the log in one append, up to this many records
    # (a batch larger than that goes alone).
    GROUP_LIMIT: int = 500

    def __init__(self, *, log: EventLog, clock: Clock) -> None:
        self.log = log
        self.clock = clock
        self.next_position = 0
        self.appended = 0
        self._changed = asyncio.Event()
        self._in_flight: set[int] = set()  # causes whose answer is appended but not yet folded
        self._following = False
        self._folds = 0  # changes ``due`` may see so far: folds that say so, own answers read back
        self._idle_at: tuple[int, int] | None = None  # (now, _folds) at which nothing was fresh

    @abc.abstractmethod
    def fold(self, envelope: Envelope) -> bool:
        """Apply one event; return True when it may change what is due."""

    @abc.abstractmethod
    def due(self, now: int) -> list[list[Envelope]]:
        """The batches due at ``now``, in order, one per cause (``cause_of``); pure."""

    @abc.abstractmethod
    def next_deadline(self) -> int | None:
        """When something will next be due, or None."""

    def observe(self, envelope: Envelope) -> None:
        self.next_position = envelope.position + 1
        cause = envelope.causation
        if cause is not None and cause.handler == self.name:
            self._in_flight.discard(cause.position)
            self._folds += 1
        if self.fold(envelope):
            self._changed.set()
            self._folds += 1

    def answer(self, cause: int, events: list, *, now: int) -> list[Envelope]:
        """One batch answering ``cause``, stamped with the position this state has folded up to."""
        return [
            Envelope.wrap(event, recorded_at=now, causation=Causation(cause, self.name, index, self.next_position))
            for index, event in enumerate(events)
        ]

    @staticmethod
    def cause_of(batch: list[Envelope]) -> int:
        """The position a batch answers; -1 for a batch of observations that answers nothing
        (the kube observer reports what the API server holds)."""
        causation = batch[0].causation
        return causation.position if causation is not None else -1

    def fresh(self, now: int) -> list[list[Envelope]]:
        """What is due at ``now`` and not already on its way to the log."""
        return self.due_skipping(now, self._in_flight)

    def due_skipping(self, now: int, skip: Collection[int]) -> list[list[Envelope]]:
        """``due(now)`` without the batches that answer a cause in ``skip``. A reactor with
        much in flight at once (the simulated kubelet) leaves them out before building them."""
        batches = self.due(now)
        return [batch for batch in batches if self.cause_of(batch) not in skip] if skip else batches

    async def act(self) -> int:
        """Append every batch due now; returns how many events were appended."""
        count = 0
        while True:
            if not self._following:
                await self.catch_up()  # fold what is new, own answers included, in order
            now = self.clock.now()
            if self._idle_at == (now, self._folds):
                break  # no change folded and the same moment: still nothing fresh (DUE_FROM_FOLDS_ONLY)
            batches = self.fresh(now)
            if not batches:
                if self.DUE_FROM_FOLDS_ONLY and not self._following:  # stepping only: serve asks anew
                    self._idle_at = (now, self._folds)
                break
            for group in _groups(batches, self.GROUP_LIMIT):
                count += await self._append_group(group)
            if self._following:
                break  # the follower folds them and wakes the act loop
        self.appended += count
        return count

    async def _append_group(self, batches: list[list[Envelope]]) -> int:
        """Append batches due at one moment as one atomic append (each keeps its causation and
        its records together): one commit and one read-back for all of them."""
        causes = [self.cause_of(batch) for batch in batches]
        for cause in causes:
            if cause >= 0:
                self._in_flight.add(cause)  # before the append: the follower may read it back first
        records = batches[0] if len(batches) == 1 else [envelope for batch in batches for envelope in batch]
        try:
            positions = await self.log.append(records)
        except BaseException:
            self._in_flight.difference_update(causes)
            raise
        start = 0
        for cause, batch in zip(causes, batches, strict=True):
            if cause < 0:  # observations answer nothing: known at once, as the observer wrote them
                for envelope, position in zip(batch, positions[start : start + len(batch)], strict=True):
                    self.fold(envelope.at(position))
                self._folds += 1
            start += len(batch)
        return len(records)

    async def run(self) -> None:
        await self.catch_up()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow(), name=f"{self.name}-follow")
            tasks.create_task(self._act_loop(), name=f"{self.name}-act")

    async def _act_loop(self) -> None:
        self._following = True  # a follower task folds from here on
        while True:
            self._changed.clear()
            await self.act()
            deadline = self.next_deadline()
            if deadline is not None and self._in_flight and deadline <= self.clock.now() and not self.fresh(self.clock.now()):
                deadline = None  # what is due now is on its way: wait for it to be read back
            waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._changed.wait())]
            if deadline is not None:
                waiters.append(asyncio.ensure_future(self.clock.sleep_until(deadline)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()


def _groups(batches: list[list[Envelope]], limit: int) -> list[list[list[Envelope]]]:
    """``batches`` in order, in groups of at most ``limit`` records (a larger batch alone)."""
    groups: list[list[list[Envelope]]] = []
    size = limit
    for batch in batches:
        if size + len(batch) > limit:
            groups.append([])
            size = 0
        groups[-1].append(batch)
        size += len(batch)
    return groups
