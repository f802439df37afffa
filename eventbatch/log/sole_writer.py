"""A log that this process alone appends to, with its recent tail kept in memory.

Where it sits: between a simulation (``eventbatch simulate``, the demo,
benchmarks) and its real log backend. In a simulation every component runs in
one process and steps the pipeline, reading each new event once per component;
with the log to itself, the process knows the end position and the newest
events without asking the backend. Reads of anything older than the kept tail
go to the backend as usual. Every follower in the process reads that kept tail
through ``held`` (``eventbatch.follow.read_to_tail``): a slice of what is in
memory, handed over without an async generator or a call to the backend.

On SQLite, whose positions are consecutive, appends are written behind: each
gets its positions at once, and the backend receives them in batches of
``flush_every`` records (one transaction each), before any read that goes to
the backend, and when the log stops. The log on disk is the same as without
this wrapper; a simulation killed midway leaves a prefix of it, never a gap.

Not for ``eventbatch serve`` or anything with another writer: it would not
see their appends. On an SQLite log it holds the pipelines' lock
(``eventbatch.log.lockfile``) while it runs, so a ``serve`` started on the
same log is refused, and it is refused while a ``serve`` writes there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from eventbatch.log import fence
from eventbatch.log.factory import sqlite_path
from eventbatch.log.lockfile import WriterLock
from eventbatch.log.port import Chunk, EventLog
from eventbatch.log.wrapper import LogWrapper
from schemas.envelope import Envelope


class SoleWriterLog(LogWrapper):
    def __init__(
        self, inner: EventLog, *, keep: int = 200_000, command: str = "simulate", flush_every: int = 4_096
    ) -> None:
        super().__init__(inner)
        self.keep = keep
        self.command = command
        self.flush_every = flush_every if self.url.startswith("sqlite:") else 0
        self._lock: WriterLock | None = None
        self._tail: list[Envelope] = []  # consecutive positions from _tail_start
        self._tail_start = 0
        self._end = 0
        self._pending: list[Envelope] = []  # appended, positions given, not yet in the backend

    async def start(self) -> None:
        await self.inner.start()
        self._end = self._tail_start = await self.inner.end_position()
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
            try:
                await self.flush()
            finally:
                await self.inner.stop()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        if not self.flush_every:
            positions = await self.inner.append(batch)
            placed = [envelope.at(position) for envelope, position in zip(batch, positions, strict=True)]
        else:
            positions = list(range(self._end, self._end + len(batch)))
            placed = [envelope.at(position) for envelope, position in zip(batch, positions, strict=True)]
            self._pending.extend(placed)
        if not self._tail:
            self._tail_start = self._end if not placed else placed[0].position
        self._tail.extend(placed)
        if positions:
            self._end = positions[-1] + 1
        if self.flush_every and len(self._pending) >= self.flush_every:
            await self.flush()
        excess = len(self._tail) - self.keep
        if excess > self.keep // 8:  # dropped in slices (amortised), only what the backend holds
            drop = min(excess, self._end - len(self._pending) - self._tail_start)
            if drop > 0:
                del self._tail[:drop]
                self._tail_start += drop
        return positions

    async def flush(self) -> None:
        """Write every appended event to the backend now."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            positions = await self.inner.append(pending)
        except BaseException:
            self._pending = pending + self._pending
            raise
        if positions != [envelope.position for envelope in pending]:  # pragma: no cover - another writer
            raise RuntimeError(f"{self.url}: another writer appended while a simulation wrote this log")

    async def append_raw(self, records: list[bytes]) -> list[int]:
        await self.flush()
        positions = await self.inner.append_raw(records)
        self._tail.clear()  # the records are not decoded here: reads past them go to the backend
        self._end = self._tail_start = await self.inner.end_position()
        return positions

    @fence.fenced_inside
    async def read_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Chunk, None]:
        await self.flush()
        async with aclosing(self.inner.read_records(from_position, follow=follow)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def truncate(self, before: int) -> int:
        await self.flush()
        return await self.inner.truncate(before)

    async def read(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Envelope, None]:
        if follow:
            await self.flush()
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
            # older than the kept tail: the backend has it (only written records leave the tail)
            async with aclosing(self.inner.read(position)) as events:
                async for envelope in events:
                    if envelope.position >= start:
                        break
                    yield envelope
                    position = envelope.position + 1
            position = max(position, start)

    async def end_position(self) -> int:
        return self._end

    def held(self, from_position: int) -> list[Envelope] | None:
        """Every envelope from ``from_position`` to the end, when the kept tail holds them all
        (a new list, in order; empty at the end); None when older ones must come from the backend."""
        offset = from_position - self._tail_start
        if offset < 0:
            return None
        return self._tail[offset:] if offset else self._tail[:]
