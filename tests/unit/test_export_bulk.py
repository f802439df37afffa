"""The export's bulk read (``eventbatch.export.bulk``) on real SQLite files: chunks of consecutive
positions, a gap read with its positions, and a read ahead that hands errors over and stops its
thread when its reader stops early."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from eventbatch.export import bulk
from eventbatch.log.port import LogTruncated


def log_file(path: Path, positions: list[int]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        conn.executemany("INSERT INTO events VALUES (?, ?)", [(p, b"r%d" % p) for p in positions])
    conn.close()
    return path


def test_chunks_of_consecutive_positions_and_a_gap_with_its_positions(tmp_path: Path) -> None:
    path = log_file(tmp_path / "log.db", [*range(0, 10), *range(12, 20)])
    runs = list(bulk.runs(path, "sqlite://x", 0, None, chunk=4))
    assert runs[:2] == [(0, [b"r0", b"r1", b"r2", b"r3"]), (4, [b"r4", b"r5", b"r6", b"r7"])]
    assert runs[2] == ([8, 9], [b"r8", b"r9"])  # positions 10 and 11 are not there
    assert runs[3:] == [(12, [b"r12", b"r13", b"r14", b"r15"]), (16, [b"r16", b"r17", b"r18", b"r19"])]
    assert list(bulk.runs(path, "sqlite://x", 5, 7, chunk=4)) == [(5, [b"r5", b"r6"])]
    assert list(bulk.runs(path, "sqlite://x", 20, None)) == []


def test_a_start_the_log_no_longer_holds_is_refused(tmp_path: Path) -> None:
    path = log_file(tmp_path / "log.db", list(range(5, 9)))
    with pytest.raises(LogTruncated, match="position 2 was removed \\(the log starts at 5\\)"):
        list(bulk.runs(path, "sqlite://x", 2, None))


def test_read_ahead_hands_errors_over_and_stops_when_its_reader_does(tmp_path: Path) -> None:
    closed = threading.Event()

    def endless():
        try:
            number = 0
            while True:
                yield number
                number += 1
        finally:
            closed.set()

    before = {thread.name for thread in threading.enumerate()}
    ahead = bulk.ahead(endless(), depth=2)
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert closed.is_set()  # the source was closed on the reading thread, which has ended
    assert "export-read" not in {thread.name for thread in threading.enumerate()} - before

    def failing():
        yield 1
        raise LogTruncated("gone")

    with pytest.raises(LogTruncated, match="gone"):
        list(bulk.ahead(failing()))


def test_bounds_of_an_empty_log_and_of_a_compacted_one(tmp_path: Path) -> None:
    assert bulk.bounds(log_file(tmp_path / "empty.db", [])) == (0, 0)
    assert bulk.bounds(log_file(tmp_path / "log.db", [*range(5, 9), 12])) == (5, 13)
