"""The reading process of a rebuild's bulk read: an SQLite log's records, in chunks, down a pipe.

Where it sits: started by ``eventbatch.log.bulk_read`` (under
``eventbatch.replay.rebuild``, ``eventbatch replay``) as a process of its own,
so that reading the file runs on another core than the fold, without sharing
its GIL. It reads as the export does (``eventbatch.export.bulk``): one
read-only snapshot of the ``events`` table, chunks of consecutive positions,
one query each, no position fetched when a chunk has no gap, the file not
mapped. For each chunk it writes one frame to its standard output: a header,
the chunk's positions when it has a gap, and its records joined by newlines
into one bytes object (the lengths of the records instead when one of them
holds a newline), so nothing is pickled and the reader splits a chunk in one
call, or decodes it as lines in one call without splitting it (``LINES``:
every record is one JSON object alone on its line). The header says whether a
record of the chunk may be a claim or carry an epoch (``may_fence``): only
then does the reader apply the fence record by record
(``eventbatch.log.fence``).

It imports the standard library and ``eventbatch.log.fence`` only (no
``msgspec``, no schemas), so it starts in a few milliseconds. Run as
``python -m eventbatch.log.bulk_process PATH START STOP CHUNK``.
"""

from __future__ import annotations

import sqlite3
import struct
import sys
from array import array
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote

from eventbatch.log.fence import _CLAIM

HEADER = struct.Struct("<qqqB")
"""A frame: first position (-1: the positions follow, 8 bytes each), records, bytes of the body, flags."""

POSITIONS = 1  # the frame's positions follow its header
LENGTHS = 2  # the records' lengths (8 bytes each) follow instead of newlines between them
FENCE = 4  # a record of the chunk may be a claim or carry an epoch
TRUNCATED = 8  # the start is no longer in the log: the body says why (and no frame follows)
LINES = 16  # every record is one JSON object alone on its line: the chunk can be decoded as lines

SEPARATOR = b"\n"


def may_fence(datas: list[bytes]) -> bool:
    """Whether a record may be a claim or carry an epoch (it ends with ``,"epoch":N}``, the
    encoder writes that field last): two byte tests per record. The others the fence keeps."""
    return bool([None for data in datas if data[-2:-1].isdigit() or data.startswith(_CLAIM)])


def one_per_line(datas: list[bytes]) -> bool:
    """Whether every record starts with ``{`` and ends with ``}`` (then, with no newline in any,
    each line of the joined records decodes as one value or none, as the record alone does)."""
    return not [None for data in datas if data[:1] != b"{" or data[-1:] != b"}"]


def chunks(path: str, start: int, stop: int, chunk: int) -> Iterator[tuple[int | list[int], list[bytes]]]:
    """The records of positions ``start`` up to ``stop`` (excluded; fewer if the log ends
    before) of the log at ``path``, in one snapshot: (first position, or every position when
    the chunk has a gap; records). ``LookupError`` with the first position the log holds
    when ``start`` is below it."""
    conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA mmap_size = 0")
        conn.execute("BEGIN")
        # two subqueries: a lone MIN or MAX of the key is found at one end of the b-tree
        ((first, last),) = conn.execute(
            "SELECT (SELECT MIN(position) FROM events), (SELECT MAX(position) FROM events)").fetchall()
        if last is None:
            return
        stop = min(stop, last + 1)
        if start >= stop:
            return
        if start < first:
            raise LookupError(first)
        for low in range(start, stop, chunk):
            high = min(low + chunk, stop)
            datas = [row[0] for row in conn.execute(
                "SELECT data FROM events WHERE position >= ? AND position < ? ORDER BY position", (low, high))]
            if len(datas) == high - low:
                yield low, datas
                continue
            rows = conn.execute("SELECT position, data FROM events WHERE position >= ? AND position < ? "
                                "ORDER BY position", (low, high)).fetchall()
            if rows:
                yield [position for position, _ in rows], [data for _, data in rows]
    finally:
        conn.close()


def write_frames(out: BinaryIO, path: str, start: int, stop: int, chunk: int) -> None:
    try:
        for first, datas in chunks(path, start, stop, chunk):
            # one pass for the common case: every record a JSON object that the fence keeps
            plain = not [None for data in datas if data[:1] != b"{" or data[-1:] != b"}" or data[-2:-1].isdigit()
                         or data.startswith(_CLAIM)]
            flags = 0 if plain or not may_fence(datas) else FENCE
            head = b""
            if not isinstance(first, int):
                flags |= POSITIONS
                head = array("q", first).tobytes()
                first = -1
            body = SEPARATOR.join(datas)
            if body.count(SEPARATOR) == len(datas) - 1:
                if plain or one_per_line(datas):
                    flags |= LINES
            else:
                flags |= LENGTHS
                head += array("q", map(len, datas)).tobytes()
                body = b"".join(datas)
            out.write(HEADER.pack(first, len(datas), len(head) + len(body), flags))
            out.write(head)
            out.write(body)
    except LookupError as exc:
        reason = str(exc.args[0]).encode()
        out.write(HEADER.pack(-1, 0, len(reason), TRUNCATED))
        out.write(reason)
    out.flush()


def main() -> None:
    path, start, stop, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    try:
        write_frames(sys.stdout.buffer, path, start, stop, chunk)
    except BrokenPipeError:  # the reader stopped early: nothing more is wanted
        pass


if __name__ == "__main__":
    main()
