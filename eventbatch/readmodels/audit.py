"""AuditView in SQLite: each chunk's timeline entries, one row per job or queue.

Where it sits: used by ``ReadModelStore``. AuditView holds one entry per event
per job or queue, which would be one SQLite row per entry; instead a chunk's
entries are conflated like every other row: one row per (scope, name) per
chunk, holding that chunk's entries (msgpack), keyed by its first position.
Reading a timeline decodes its rows in order and keeps each position once
(a restart re-folds the events after its snapshot; their entries, written
twice, are the same).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from projections.views.rows import AuditRow

DDL = (
    "CREATE TABLE IF NOT EXISTS audit_view (scope TEXT NOT NULL, name TEXT NOT NULL, first_position INTEGER NOT NULL,"
    " last_position INTEGER NOT NULL, entries BLOB NOT NULL, PRIMARY KEY (scope, name, first_position)) WITHOUT ROWID"
)
UPSERT = "INSERT OR REPLACE INTO audit_view (scope, name, first_position, last_position, entries) VALUES (?, ?, ?, ?, ?)"

Entry = tuple[int, str, int, str, "int | None", str, str, str]  # AuditRow without scope and name
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[tuple[int, str, int, str, int | None, str, str, str]])


def segments(rows: Iterable[AuditRow]) -> list[tuple[str, str, int, int, bytes]]:
    """One row per (scope, name): the entries of this chunk, in log order."""
    grouped: dict[tuple[str, str], list[tuple]] = {}
    for row in rows:
        grouped.setdefault((row.scope, row.name), []).append(msgspec.structs.astuple(row)[2:])
    return [
        (scope, name, entries[0][0], entries[-1][0], _encoder.encode(entries))
        for (scope, name), entries in sorted(grouped.items())
    ]


def expand(records: Iterable[tuple[str, str, bytes]]) -> list[AuditRow]:
    """Timeline rows from stored segments, each (scope, name, position) once, in key order."""
    seen: dict[tuple[str, str, int], AuditRow] = {}
    for scope, name, blob in records:
        for entry in _decoder.decode(blob):
            seen.setdefault((scope, name, entry[0]), AuditRow(scope, name, *entry))
    return [seen[key] for key in sorted(seen)]
