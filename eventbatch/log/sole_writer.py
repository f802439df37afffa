"""A log that this process alone appends to, with its recent tail kept in memory.

Where it sits: between a simulation (``eventbatch simulate``, the demo,
benchmarks) and its real log backend. In a simulation every component runs in
one process and steps the pipeline, reading each new event once per component;
with the log to itself, the process knows the end position and the newest
events without asking the backend. Appends still go to the backend first (the
log on disk is the same as without this wrapper); reads of anything older
than the kept tail go to the backend as usual.

Not for ``eventbatch serve`` or anything with another writer: it would not
see their appends. On an SQLite log it holds the pipelines' lock
(``eventbatch.log.lockfile``) while it runs, so a ``serve`` started on the
same log is refused, and it is refused while a ``serve`` writes there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

from eventbatch.log.factory import sqlite_path
from eventbatch.log.lockfile import WriterLock
from eventbatch.log.port import EventLog
from eventbatch.log.wrapper import LogWrapper
from schemas.envelope import Envelope


class SoleWriterLog(LogWrapper):
    def __init__(self, inner: EventLog, *, keep: int = 200_000, command: str = "simulate") -> None:
        super().__init__(inner)
        self.keep = keep
        self.command = command
        self._lock: WriterLock | None = None
        self._tail: deque[Envelope] = deque()
        self._end = 0

    @property
    def _tail_start(self) -> int:
        return self._tail[0].position if self._tail else self._end

    async def start(self) -> None:
        await self.inner.start()
        self._end = await self.inner.end_position()
        if self._end == 0 and self.url.startswith("sqlite:"):
            # The pipelines' lock, so that no serve writes this log meanwhile. Only on an
            # empty log, the one a simulation writes (it refuses any other, and a log that
            # a serve writes is never empty): a refused log gets no lock file beside it.
            lock = WriterLock(sqlite_path(self.url), self.url, command=self.command)
            if not lock.try_acquire():
                await self.inner.stop()
                raise lock.refusal()
            self._lock = lock

    async def stop(self) -> None:
        try:
            await self.inner.stop()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        positions = await self.inner.append(batch)
        for envelope, position in zip(batch, positions, strict=True):
            self._tail.append(envelope.at(position))
        if positions:
            self._end = positions[-1] + 1
        while len(self._tail) > self.keep:
            self._tail.popleft()
        return positions

    async def read(self, from_position: int = 0, *, follow: bool = False) -> AsyncIterator[Envelope]:
        if follow:
            async with aclosing(self.inner.read(from_position, follow=True)) as events:
                async for envelope in events:
                    yield envelope
            return
        position, end = from_position, self._end
        while position < end:
            start = self._tail_start
            if position >= start:
                envelope = self._tail[position - start]
                yield envelope
                position += 1
                continue
            # older than the kept tail: the backend has it (it has everything)
            async with aclosing(self.inner.read(position)) as events:
                async for envelope in events:
                    if envelope.position >= start:
                        break
                    yield envelope
                    position = envelope.position + 1
            position = max(position, start)

    async def end_position(self) -> int:
        return self._end
