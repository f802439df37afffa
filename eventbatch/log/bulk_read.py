"""Bulk reading of an SQLite log for a rebuild: one read-only snapshot, large chunks, the fence applied.

Where it sits: under ``eventbatch.replay.rebuild`` (``eventbatch replay``),
in place of the log's own ``read_records`` when the log is an SQLite file
(``SqliteLog``; any other backend, or a wrapper around one, keeps its normal
read). It reads the file itself as the Parquet export does
(``eventbatch.export.bulk``: read-only, one snapshot, chunks of consecutive
positions, one query each, no position fetched), but on the folding thread
and without mapping the file (``MAPPED``): a thread reading ahead only
fought the fold for the GIL. It hands on the same records the log's fenced
read would, in the same order: the one-writer fence
(``eventbatch.log.fence``) is applied to each chunk with the same rule and
the same counters (``fence_stats``), so records of a replaced writer are
skipped and counted as there. Records are handed on as stored: the caller
decodes them, and counts or quarantines those it cannot read through the log
(``EventLog.unreadable``), as it does for a normal read.

A chunk is looked at record by record only when one of its records may be a
claim or carry an epoch (two byte tests per record, in one comprehension);
otherwise it passes as it is, which is what the fence's own loop would make of
it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from eventbatch.export import bulk
from eventbatch.log.fence import _CLAIM, FenceStats, _starting_claim, fence_chunk, fence_stats
from eventbatch.log.port import Chunk, EventLog
from eventbatch.log.sqlite import SqliteLog

CHUNK = 5_000
"""Positions per chunk handed on, at most (one query each): what the fold holds of the log at a time."""

MAPPED = 0
"""The bytes of the file a rebuild's read maps: none. A mapped file's pages count in the
process's resident memory (the whole log, by the end of a rebuild), and mapping it saved
no measurable time here: the fold, not the read, bounds a rebuild."""

Reader = Callable[[int, int], AsyncGenerator[Chunk, None]]
"""``read(from_position, stop)``: the log's records from ``from_position`` up to ``stop`` (excluded)."""


def reader_for(log: EventLog, every: int = CHUNK) -> Reader | None:
    """A bulk reader of ``log`` when it is an SQLite file (not a wrapper around one), else None.
    Its chunks end at every multiple of ``every`` (a projector's chunk: its writes, and the fold
    states it keeps, are then where a read through the log puts them) and are at most ``CHUNK``."""
    if type(log) is not SqliteLog:
        return None
    chunk = math.gcd(every, CHUNK)

    def read(from_position: int, stop: int) -> AsyncGenerator[Chunk, None]:
        return read_records(log, from_position, stop, chunk=chunk)

    return read


async def read_records(log: SqliteLog, from_position: int, stop: int, *, chunk: int = CHUNK) -> AsyncGenerator[Chunk, None]:
    """The records of ``log`` from ``from_position`` up to ``stop`` (excluded; fewer if the log
    ends before), fenced as ``log.read_records`` fences them, in chunks of up to ``chunk``
    positions. A position the log no longer holds is ``LogTruncated``, as there."""
    stats = fence_stats(log)
    newest: int | None = None
    async with aclosing(_chunks(log, from_position, stop, chunk)) as chunks:
        async for records in chunks:
            if newest is None:
                newest = await _starting_claim(log, stats, records[0][0])
            kept, newest = fence(stats, records, newest)
            if kept:
                yield kept


async def _chunks(log: SqliteLog, start: int, stop: int, chunk: int) -> AsyncGenerator[Chunk, None]:
    runs = bulk.runs(log.path, log.url, start, stop, chunk, mapped=MAPPED)
    try:
        for first, datas in runs:
            if isinstance(first, int):
                yield list(zip(range(first, first + len(datas)), datas, strict=True))
            else:
                yield list(zip(first, datas, strict=True))
    finally:
        close = getattr(runs, "close", None)
        if close is not None:  # the read's connection, closed now rather than when collected
            close()


def fence(stats: FenceStats, chunk: Chunk, newest: int) -> tuple[Chunk, int]:
    """The records of ``chunk`` the fence keeps, and the newest claim after it
    (``eventbatch.log.fence.fence_chunk``), looked at record by record only when some record
    may be a claim or carry an epoch (the others it keeps without a change)."""
    if not [None for _, data in chunk if data[-2:-1].isdigit() or data.startswith(_CLAIM)]:
        stats.stopped(chunk[-1][0] + 1, newest)
        return chunk, newest
    return fence_chunk(stats, chunk, newest)
