"""Bulk reading for an export: an SQLite log's records in large chunks, read ahead on a thread.

Where it sits: under ``eventbatch events export`` (``eventbatch.cli.export``),
beside ``eventbatch.export.records``, which reads any backend through the
log's port. An export of an SQLite log reads the file itself, read-only,
here: one snapshot of the ``events`` table (a read transaction, so that
appends made meanwhile are not half seen), in chunks of consecutive
positions, each one query with no per-row position fetched when the chunk is
complete (positions have no gaps inside a log; a chunk with fewer rows than
its range is fetched again with its positions). ``pieces`` reads given
ranges in one snapshot, for a worker process of a Parquet export
(``eventbatch.export.worker``), refusing a snapshot where the log no longer
starts where the exporter's did. Nothing here writes to the file or its WAL.

``ahead`` runs any iterator of chunks on a thread of its own, a few chunks
ahead of its consumer: SQLite steps through a query and pyarrow compresses
and writes with the GIL released, so reading, splitting and writing overlap
on two cores.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

CHUNK = 16_384
"""Records per query of a bulk read (about 25 MB of a typical log)."""

MAPPED = 2**40
"""The bytes of the file a bulk read maps (SQLite caps it at its build's limit, 2 GB by default)."""

T = TypeVar("T")

Run = tuple[int | list[int], list[bytes]]
"""Records of a chunk: the first position (the rest follow it without a gap) or every position, and the bytes."""


def runs(path: Path, url: str, start: int, stop: int | None, chunk: int = CHUNK, *,
         mapped: int = MAPPED) -> Iterator[Run]:
    """The records of positions ``start`` up to ``stop`` (excluded; None: the end when the read
    began) of the SQLite log at ``path``, as stored, in chunks. A ``start`` the log no longer
    holds is ``LogTruncated``, as the log's own read says it. ``mapped``: the bytes of the file
    mapped into memory (0: none; the pages read are then copied, and the mapped file does not
    count in the process's resident memory)."""
    conn = _snapshot(path, mapped)
    try:
        first, end = _bounds(conn)
        stop = end if stop is None else min(stop, end)
        if start >= stop:
            return
        if start < first:
            from eventbatch.log.port import LogTruncated  # not at the top: a worker's start loads less

            raise LogTruncated(f"{url}: position {start} was removed (the log starts at {first})")
        for low in range(start, stop, chunk):
            run = _read(conn, low, min(low + chunk, stop))
            if run is not None:
                yield run
    finally:
        conn.close()


def bounds(path: Path) -> tuple[int, int]:
    """The first position the SQLite log at ``path`` holds and the position after its last
    (both 0 when it is empty)."""
    conn = _snapshot(path)
    try:
        return _bounds(conn)
    finally:
        conn.close()


def pieces(path: Path, url: str, first: int, ranges: Iterable[tuple[int, int]]) -> Generator[Run | None, None, None]:
    """The records of each range ``(low, high)`` in turn (high excluded), one chunk per range
    (None for one that holds none), in one snapshot: what a reader of part of a range another snapshot bounded
    reads (``eventbatch.export.worker``). A log's records are never rewritten, only a prefix
    removed (compaction): a snapshot in which the log no longer starts at ``first`` is
    ``LogTruncated``, so that every piece is what that other snapshot held."""
    conn = _snapshot(path)
    try:
        now, _ = _bounds(conn)
        if now > first:
            from eventbatch.log.port import LogTruncated  # not at the top: a worker's start loads less

            raise LogTruncated(f"{url}: positions {first}..{now - 1} were removed while they were exported")
        for low, high in ranges:
            yield _read(conn, low, high)
    finally:
        conn.close()


def _snapshot(path: Path, mapped: int = MAPPED) -> sqlite3.Connection:
    """A read-only connection to the file, in a read transaction (one snapshot until closed). The
    file is mapped into memory (up to SQLite's build limit), so that a page is read without a
    system call and a copy (a few per cent of a bulk read)."""
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, check_same_thread=False,
                           isolation_level=None)
    try:
        conn.execute(f"PRAGMA mmap_size = {int(mapped)}")
        conn.execute("BEGIN")
    except BaseException:
        conn.close()
        raise
    return conn


def _bounds(conn: sqlite3.Connection) -> tuple[int, int]:
    # two subqueries: SQLite finds a lone MIN or MAX of the key at one end of the table's b-tree,
    # where a query of both scans the whole table (about 0.2 CPU-s per million records)
    ((first, last),) = conn.execute(
        "SELECT (SELECT MIN(position) FROM events), (SELECT MAX(position) FROM events)").fetchall()
    return (0, 0) if last is None else (first, last + 1)


def _read(conn: sqlite3.Connection, low: int, high: int) -> Run | None:
    """Positions ``low`` up to ``high``: one query with no position fetched when none is missing,
    else again with the positions (None: the range holds no record)."""
    datas = [row[0] for row in conn.execute(
        "SELECT data FROM events WHERE position >= ? AND position < ? ORDER BY position", (low, high))]
    if len(datas) == high - low:
        return low, datas
    rows = conn.execute("SELECT position, data FROM events WHERE position >= ? AND position < ? "
                        "ORDER BY position", (low, high)).fetchall()
    if not rows:
        return None
    return [position for position, _ in rows], [data for _, data in rows]


_END = object()


def ahead(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """``items``, produced on a thread of its own at most ``depth`` items ahead; an exception
    there is raised here, where the item would have come. Closing this generator stops the thread."""
    handed: queue.Queue[object] = queue.Queue(maxsize=depth)
    stopping = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stopping.is_set():
                    return
                handed.put(item)
            handed.put(_END)
        except BaseException as exc:  # handed over, raised in the consumer
            handed.put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator's own cleanup (the read's connection) on this thread
                close()

    thread = threading.Thread(target=produce, name="export-read", daemon=True)
    thread.start()
    try:
        while (item := handed.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]  # anything else is one of ``items``
    finally:
        stopping.set()
        while thread.is_alive():  # unblock a producer waiting for room
            try:
                handed.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()
