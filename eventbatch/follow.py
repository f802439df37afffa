"""Reading the log, for every runtime component that folds it.

Where it sits: shared by the handler runner, the timer service, the cluster
reactors and the scheduling trigger. ``read_to_tail`` feeds each envelope from
``start`` to the tail (including events appended while it reads, e.g. by the
consumer itself) to ``on_event`` and returns the next position to read from;
from a log that holds its recent tail in memory (``SoleWriterLog``) it takes
that tail as a list (``held``) instead of through an async generator.
Unknown and quarantined records are skipped by the log and still move the
position on. ``SharedReads`` is the log handle ``build_pipeline`` gives every
component: their followers share one reader, so ``serve`` reads and decodes
each record once instead of once per component.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, aclosing

from eventbatch.log.codec import decode
from eventbatch.log.port import EventLog
from eventbatch.log.sole_writer import SoleWriterLog
from eventbatch.log.wrapper import LogWrapper
from schemas.envelope import Envelope


async def read_to_tail(
    log: EventLog, start: int, on_event: Callable[[Envelope], Awaitable[None] | None]
) -> int:
    position = start
    held = _held(log)
    while True:
        if held is not None and (recent := held(position)) is not None:
            # what the log holds in memory (a simulation's kept tail): no generator, no backend
            if not recent:
                return position
            for envelope in recent:
                result = on_event(envelope)
                if result is not None:
                    await result
            position = recent[-1].position + 1
            continue
        end = await log.end_position()
        if position >= end:
            return position
        async with aclosing(log.read(position)) as events:
            async for envelope in events:
                result = on_event(envelope)
                if result is not None:
                    await result
                if envelope.position + 1 >= end:
                    break
        position = end


def follow_chunks(log: EventLog, start: int) -> AsyncGenerator[list[Envelope], None]:
    """Follow ``log`` from ``start`` as lists of envelopes in log order: the shared reader's
    chunks as it read them (``SharedReads.follow_chunks``), or, on any other log, one list
    per envelope of its own follow."""
    if isinstance(log, SharedReads):
        return log.follow_chunks(start)
    return _one_by_one(log, start)


async def _one_by_one(log: EventLog, start: int) -> AsyncGenerator[list[Envelope], None]:
    async with aclosing(log.read(start, follow=True)) as events:
        async for envelope in events:
            yield [envelope]


def _held(log: EventLog) -> Callable[[int], list[Envelope] | None] | None:
    """The log's own reader of what it holds in memory (``SoleWriterLog.held``), when its plain
    reads are that log's: through ``SharedReads``, not through a wrapper that changes reads."""
    if type(log) is SharedReads:
        return log.held_reader
    return log.held if isinstance(log, SoleWriterLog) else None


class SharedReads(LogWrapper):
    """A handle on ``inner`` whose followers share one reader: each record is read and
    decoded once, and every follower gets the same envelopes, in log order.

    ``Pipeline.run`` gives it to every component: the handler runners, the timer
    service, the cluster reactors and the scheduling trigger each follow the log from
    their own position (``read(position, follow=True)``), but one task reads the
    backend and decodes each record once, keeping the decoded chunks until the
    slowest follower has passed them. A follower that starts below what the shared
    reader holds reads that gap from ``inner`` first. Everything else (appends, plain
    reads, positions) goes to ``inner`` as it is, so stepping (``settle``) is unchanged.

    Each follower sees exactly what its own ``inner.read`` would have yielded:
    unknown records are skipped and counted, undecodable ones quarantined, once.
    The shared reader stops reading ahead while ``window`` records wait for the
    slowest follower; memory stays bounded by the window, not by the backlog.
    """

    def __init__(self, inner: EventLog, *, window: int = 50_000, group_limit: int = 1000) -> None:
        super().__init__(inner)
        self.window = window
        self.held_reader = _held(inner)  # its plain reads are inner's, and so is what it holds
        self.group_appends = False  # group commit (``append``): on while the pipeline follows the log
        self.group_limit = group_limit
        # Where a large append is split (Kafka: record batches of at most max_batch_bytes), the
        # context a group is appended in, so that it is refused instead of split (``append``).
        self.group_whole: Callable[[], AbstractContextManager[None]] | None = None
        self.grouped = 0  # appends that carried more than one batch (for tests and benchmarks)
        self._queued: deque[tuple[Sequence[Envelope], asyncio.Future[list[int]]]] = deque()
        self._writer: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._segments: deque[tuple[int, int, list[Envelope]]] = deque()  # (start, end, envelopes)
        self._trimmed = 0  # segments dropped from the front so far
        self._buffered = 0  # records held in _segments
        self._cursors: dict[int, int] = {}  # follower -> the next position it needs
        self._pump: asyncio.Task | None = None
        self._pump_from = 0
        self._grown = asyncio.Event()
        self._advanced = asyncio.Event()
        self._error: BaseException | None = None
        self._done = False
        self.decoded = 0  # records the shared reader decoded (for tests and benchmarks)

    # -- the port: everything but following goes to inner ------------------------

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self._writer is not None:
            self._writer.cancel()
        await self.inner.stop()

    def read(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Envelope, None]:
        if not follow:
            return self.inner.read(from_position)
        return self._follow(from_position)

    async def _follow(self, position: int) -> AsyncGenerator[Envelope, None]:
        async with aclosing(self.follow_chunks(position)) as chunks:
            async for chunk in chunks:
                for envelope in chunk:
                    yield envelope

    # -- grouped appends ----------------------------------------------------------------

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        """Append ``batch`` atomically; returns its positions.

        With ``group_appends`` (set while the pipeline follows the log), the batches that
        components append while one append is on its way, or within one turn of the event
        loop, go to the log together as one append (group commit): each keeps its records
        contiguous and in the order it was asked for, and gets its own positions. One append
        instead of many means one commit, one wake-up of the shared reader and one chunk for
        every follower. Batches are grouped up to ``group_limit`` records; a batch larger than
        that goes alone. Where the log splits a large append (Kafka), a group is appended within
        ``group_whole``, which refuses it before anything is sent if it would not be one atomic
        write (one record batch): a group is all on the log or none of it, like each of its
        batches. If a group is refused (too large to go whole, a record too large, a fenced
        writer), each of its batches is appended alone, so each caller gets the outcome of its
        own batch."""
        if not self.group_appends or not batch:
            return await self.inner.append(batch)
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._queued.append((batch, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_queued())
        return await future

    async def _write_queued(self) -> None:
        queued = self._queued
        while queued:
            group = [queued.popleft()]
            size = len(group[0][0])
            while queued and size + len(queued[0][0]) <= self.group_limit:
                size += len(queued[0][0])
                group.append(queued.popleft())
            group = [(batch, future) for batch, future in group if not future.cancelled()]
            if not group:
                continue
            if len(group) == 1:
                await self._append_one(*group[0])
                continue
            records = [envelope for batch, _ in group for envelope in batch]
            try:
                if self.group_whole is None:
                    positions = await self.inner.append(records)
                else:
                    with self.group_whole():
                        positions = await self.inner.append(records)
            except asyncio.CancelledError:
                raise
            except BaseException:  # nothing of the group was appended: each batch on its own
                for batch, future in group:
                    await self._append_one(batch, future)
                continue
            self.grouped += 1
            start = 0
            for batch, future in group:
                if not future.done():
                    future.set_result(positions[start : start + len(batch)])
                start += len(batch)

    async def _append_one(self, batch: Sequence[Envelope], future: asyncio.Future[list[int]]) -> None:
        try:
            positions = await self.inner.append(batch)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(positions)

    # -- the shared reader ------------------------------------------------------------

    def follow_chunks(self, position: int) -> AsyncGenerator[list[Envelope], None]:
        """Follow the log from ``position`` as lists of envelopes, each a part of what the
        shared reader read at once: a follower folds a list without a resumption per event."""
        return self._follow_chunks(position)

    async def _follow_chunks(self, position: int) -> AsyncGenerator[list[Envelope], None]:
        key = object()
        self._cursors[id(key)] = position
        try:
            if self._pump is None:
                self._pump_from = position
                self._pump = asyncio.ensure_future(self._read(position))
            if position < self._pump_from or (
                self._trimmed and (not self._segments or position < self._segments[0][0])
            ):
                # Below what the shared reader holds (its start, or what the others have
                # passed and dropped): read the gap alone (waiting at the tail if the gap
                # is not written yet), then join it at the first segment it holds. This
                # follower's cursor keeps every segment from now on.
                async with aclosing(self.inner.read(position, follow=True)) as events:
                    async for envelope in events:
                        held = self._segments[0][0] if self._segments else None
                        if held is None and not self._trimmed:
                            held = self._pump_from
                        if held is not None and envelope.position >= held:
                            break
                        yield [envelope]
                        position = envelope.position + 1
                position = max(position, self._pump_from)
                self._cursors[id(key)] = position
            seq = self._trimmed
            while True:
                grown = self._grown
                while (seq := max(seq, self._trimmed)) - self._trimmed < len(self._segments):
                    # (segments below this follower's position may be dropped under it)
                    start, end, envelopes = self._segments[seq - self._trimmed]
                    seq += 1
                    if end <= position:
                        continue
                    if envelopes and envelopes[0].position < position:
                        envelopes = [envelope for envelope in envelopes if envelope.position >= position]
                    if envelopes:
                        yield envelopes
                    position = end
                    self._cursors[id(key)] = position
                    self._trim()
                if self._error is not None:
                    raise self._error
                if self._done:
                    return
                await grown.wait()
        finally:
            del self._cursors[id(key)]
            if not self._cursors and self._pump is not None:
                self._pump.cancel()  # the last follower left: the next one starts afresh
                self._reset()
            else:
                self._trim()

    def _trim(self) -> None:
        lowest = min(self._cursors.values(), default=None)
        segments = self._segments
        while segments and (lowest is None or segments[0][1] <= lowest):
            self._buffered -= len(segments[0][2]) or 1
            segments.popleft()
            self._trimmed += 1
        if self._buffered < self.window:
            advanced, self._advanced = self._advanced, asyncio.Event()
            advanced.set()

    def _grew(self) -> None:
        grown, self._grown = self._grown, asyncio.Event()
        grown.set()

    async def _read(self, start: int) -> None:
        try:
            async with aclosing(self.inner.read_records(start, follow=True)) as chunks:
                async for chunk in chunks:
                    envelopes = []
                    for position, data in chunk:
                        item = decode(position, data)
                        if type(item) is Envelope:
                            envelopes.append(item)
                        else:  # counted or quarantined as a plain read does
                            await self.inner.unreadable(position, data)
                    self.stats.read += len(envelopes)
                    self.decoded += len(chunk)
                    self._segments.append((chunk[0][0], chunk[-1][0] + 1, envelopes))
                    self._buffered += len(envelopes) or 1
                    self._grew()
                    while self._buffered >= self.window and self._cursors:
                        await self._advanced.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # every follower raises it, as its own read would have
            self._error = exc
        self._done = True
        self._grew()
