"""AuditView in SQLite: each chunk's timeline entries, one row per job or queue.

Where it sits: used by ``ReadModelStore``. AuditView holds one entry per event
per job or queue, which would be one SQLite row per entry; instead a chunk's
entries are conflated like every other row: one row per (scope, name) per
chunk, holding that chunk's ``(position, record)`` entries (msgpack), keyed by
its first position. The records are the log's own bytes, so a timeline stays
readable once the log is compacted; ``audit_causes`` keeps the triggers that
belong to no timeline of their decision (a scheduling request, another job's
event). Reading a timeline renders it (``projections.views.audit``), each
position once: a restart re-folds the events after its snapshot, and their
entries, written twice, are the same.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

DDL = (
    "CREATE TABLE IF NOT EXISTS audit_view (scope TEXT NOT NULL, name TEXT NOT NULL, first_position INTEGER NOT NULL,"
    " last_position INTEGER NOT NULL, entries BLOB NOT NULL, PRIMARY KEY (scope, name, first_position))"
)
CAUSES_DDL = "CREATE TABLE IF NOT EXISTS audit_causes (position INTEGER PRIMARY KEY, record BLOB NOT NULL)"
UPSERT = "INSERT OR REPLACE INTO audit_view (scope, name, first_position, last_position, entries) VALUES (?, ?, ?, ?, ?)"
UPSERT_CAUSE = "INSERT OR REPLACE INTO audit_causes (position, record) VALUES (?, ?)"

Entries = dict[tuple[str, str], list[tuple[int, bytes]]]
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[tuple[int, bytes]])


def segments(entries: Entries) -> list[tuple[str, str, int, int, bytes]]:
    """One row per (scope, name): the entries of this chunk, in log order."""
    return [
        (scope, name, items[0][0], items[-1][0], _encoder.encode(items))
        for (scope, name), items in sorted(entries.items())
    ]


def expand(records: Iterable[tuple[str, str, bytes]]) -> Entries:
    """The entries of stored segments, by (scope, name), in the order read."""
    out: Entries = {}
    for scope, name, blob in records:
        out.setdefault((scope, name), []).extend(_decoder.decode(blob))
    return out
