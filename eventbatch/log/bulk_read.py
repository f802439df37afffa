"""Bulk reading of an SQLite log for a rebuild: one read-only snapshot, large chunks, the fence applied.

Where it sits: under ``eventbatch.replay.rebuild`` (``eventbatch replay``),
in place of the log's own ``read_records`` when the log is an SQLite file
(``SqliteLog``; any other backend, or a wrapper around one, keeps its normal
read). It reads the file itself as the Parquet export does
(``eventbatch.export.bulk``: read-only, one snapshot, chunks of consecutive
positions, one query each, no position fetched), in a process of its own
(``eventbatch.log.bulk_process``): the file is read and each chunk's records
joined into one bytes object on the other core while this process folds the
chunk before, and here a chunk is split in one call. (A thread reading ahead
only fought the fold for the GIL.) The file is not mapped: a mapped file's
pages count in the resident memory, and mapping it saved no measurable time.

It hands on the same records the log's fenced read would, in the same order:
the one-writer fence (``eventbatch.log.fence``) is applied to each chunk with
the same rule and the same counters (``fence_stats``), so records of a
replaced writer are skipped and counted as there. A chunk is looked at record
by record only when the reading process found that one of its records may be
a claim or carry an epoch (``bulk_process.may_fence``); otherwise it passes as
it is, which is what the fence's own loop would make of it. Records are
handed on as stored: the caller decodes them, and counts or quarantines those
it cannot read through the log (``EventLog.unreadable``), as it does for a
normal read.
"""

from __future__ import annotations

import fcntl
import itertools
import math
import subprocess
import sys
from array import array
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from eventbatch.log import bulk_process
from eventbatch.log.fence import _starting_claim, fence_chunk, fence_stats
from eventbatch.log.port import Chunk, EventLog, LogTruncated
from eventbatch.log.sqlite import SqliteLog

CHUNK = 5_000
"""Positions per chunk handed on, at most (one query each): what the fold holds of the log at a time."""

PIPE_BYTES = 1 << 20
"""The pipe from the reading process holds up to this (Linux; else the system's default): a
chunk (about 2 MB) then crosses in a few reads."""


class Lines:
    """A chunk of records as the reading process joined them: one JSON object per line of
    ``body``, at ``positions``. The fold decodes it in one call (``ViewSet.fold_lines``),
    without a bytes object per record; ``records()`` is the same chunk as pairs."""

    __slots__ = ("positions", "body")

    def __init__(self, positions: Sequence[int], body: bytes) -> None:
        self.positions = positions
        self.body = body

    def __len__(self) -> int:
        return len(self.positions)

    def records(self) -> Chunk:
        return list(zip(self.positions, self.body.split(bulk_process.SEPARATOR), strict=True))


def records_of(chunk: Chunk | Lines) -> Chunk:
    """A chunk as (position, record) pairs."""
    return chunk.records() if isinstance(chunk, Lines) else chunk


Reader = Callable[[int, int], AsyncGenerator[Chunk | Lines, None]]
"""``read(from_position, stop)``: the log's records from ``from_position`` up to ``stop`` (excluded)."""


def reader_for(log: EventLog, every: int = CHUNK) -> Reader | None:
    """A bulk reader of ``log`` when it is an SQLite file (not a wrapper around one), else None.
    Its chunks end at every multiple of ``every`` (a projector's chunk: its writes, and the fold
    states it keeps, are then where a read through the log puts them) and are at most ``CHUNK``."""
    if type(log) is not SqliteLog:
        return None
    chunk = math.gcd(every, CHUNK)

    def read(from_position: int, stop: int) -> AsyncGenerator[Chunk | Lines, None]:
        return read_records(log, from_position, stop, chunk=chunk, lines=True)

    return read


async def read_records(log: SqliteLog, from_position: int, stop: int, *, chunk: int = CHUNK,
                       lines: bool = False) -> AsyncGenerator[Chunk | Lines, None]:
    """The records of ``log`` from ``from_position`` up to ``stop`` (excluded; fewer if the log
    ends before), fenced as ``log.read_records`` fences them, in chunks of up to ``chunk``
    positions. A position the log no longer holds is ``LogTruncated``, as there. ``lines``: a
    chunk whose records are one JSON object each, none of which the fence could skip, is
    handed on as ``Lines`` (else always as pairs).

    The file is read by a process of its own (``eventbatch.log.bulk_process``), a chunk
    ahead of the caller."""
    stats = fence_stats(log)
    newest: int | None = None
    with _reader(log, from_position, stop, chunk) as frames:
        for first, count, body, flags in frames:
            if newest is None:
                newest = await _starting_claim(log, stats, first if first >= 0 else _positions(count, body)[0])
            if not flags & bulk_process.FENCE:  # no record may be a claim or carry an epoch: all are kept
                if lines and flags & bulk_process.LINES:
                    at = Lines(range(first, first + count) if first >= 0 else _positions(count, body),
                               body if first >= 0 else body[8 * count:])
                    stats.stopped(at.positions[-1] + 1, newest)
                    yield at
                else:
                    records = _records(first, count, body, flags)
                    stats.stopped(records[-1][0] + 1, newest)
                    yield records
                continue
            kept, newest = fence_chunk(stats, _records(first, count, body, flags), newest)
            if kept:
                yield kept


@contextmanager
def _reader(log: SqliteLog, start: int, stop: int, chunk: int) -> Iterator[Iterator[tuple[int, int, bytes, int]]]:
    """The frames of a reading process started on ``log``'s file; the process is ended when
    the caller stops early."""
    root = str(Path(bulk_process.__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {root!r}); from eventbatch.log.bulk_process import main; main()"
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", code, str(log.path), str(start), str(stop), str(chunk)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        with suppress(OSError, AttributeError):  # a larger pipe where the system allows it
            fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        yield _frames(log, start, proc.stdout)
        failed = proc.wait()
        why = proc.stderr.read() if failed and proc.stderr is not None else b""
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    if failed:
        raise RuntimeError(f"reading {log.url} failed (exit status {failed}): {why.decode(errors='replace').strip()}")


def _frames(log: SqliteLog, start: int, stream: IO[bytes]) -> Iterator[tuple[int, int, bytes, int]]:
    header = bulk_process.HEADER
    while head := stream.read(header.size):
        if len(head) < header.size:
            break
        first, count, size, flags = header.unpack(head)
        body = stream.read(size)
        if len(body) < size:
            break
        if flags & bulk_process.TRUNCATED:
            raise LogTruncated(f"{log.url}: position {start} was removed (the log starts at {body.decode()})")
        yield first, count, body, flags


def _numbers(body: bytes, at: int, count: int) -> array[int]:
    numbers = array("q")
    numbers.frombytes(memoryview(body)[at : at + 8 * count])
    return numbers


def _positions(count: int, body: bytes) -> list[int]:
    """The positions at the start of a frame's body (``bulk_process.POSITIONS``)."""
    return _numbers(body, 0, count).tolist()


def _records(first: int, count: int, body: bytes, flags: int) -> Chunk:
    """A frame's records with their positions."""
    at = 0
    if flags & bulk_process.POSITIONS:
        positions: Iterable[int] = _positions(count, body)
        at = 8 * count
    else:
        positions = range(first, first + count)
    if flags & bulk_process.LENGTHS:
        lengths = _numbers(body, at, count)
        at += 8 * count
        datas = [body[a:b] for a, b in itertools.pairwise(itertools.accumulate(lengths, initial=at))]
    else:
        datas = (body[at:] if at else body).split(bulk_process.SEPARATOR)
    return list(zip(positions, datas, strict=True))
