"""Damaged SQLite files made from real ones, the way they get damaged in use.

Where it sits: test data for the damaged-file tests
(``tests/integration/test_corrupt_files.py``, ``tests/e2e/test_corrupt_cli.py``).
Each function takes the bytes of a real, healthy SQLite file (a log written
by the backend or by ``eventbatch simulate``) and returns them damaged:
cut short by a copy or a full disk, a header overwritten, one B-tree page in
the middle of the events table overwritten. ``checksum`` tells whether a
file was left as it was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PAGE_LEAF, PAGE_INTERIOR = 0x0D, 0x05  # table B-tree page types
GARBAGE = 0xA5


def page_size(data: bytes) -> int:
    raw = int.from_bytes(data[16:18], "big")
    return 65536 if raw == 1 else raw


def cut_in_half(data: bytes) -> bytes:
    """The first half of the file, wherever that falls (a copy that stopped half-way)."""
    return data[: len(data) // 2]


def cut_at_a_page(data: bytes) -> bytes:
    """The first half of the file's pages: whole pages, fewer than the header says."""
    size = page_size(data)
    return data[: (len(data) // size // 2) * size]


def bad_header(data: bytes) -> bytes:
    """The header's page size overwritten with a value SQLite never writes."""
    return data[:16] + b"\x00\x03" + data[18:]


def broken_btree_page(data: bytes) -> tuple[bytes, int]:
    """A B-tree leaf page of a table near the middle of the file overwritten; and its page number (1-based).

    Page 1 (the schema) and the first pages stay readable, so the file opens
    and its tables are found: the damage is met only by a read that reaches it.
    """
    size = page_size(data)
    pages = len(data) // size
    middle = pages // 2
    for number in sorted(range(3, pages + 1), key=lambda n: abs(n - middle)):
        offset = (number - 1) * size
        if data[offset] == PAGE_LEAF:
            return data[:offset] + bytes([GARBAGE]) * size + data[offset + size :], number
    raise ValueError("no table leaf page past the first two: write a larger log")


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
