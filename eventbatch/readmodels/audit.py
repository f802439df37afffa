"""AuditView in SQLite: each chunk's timeline positions, one row per job or queue; records by position.

Where it sits: used by ``ReadModelStore``. AuditView holds one entry per event
per job or queue, which would be one SQLite row per entry; instead a chunk's
entries are conflated like every other row: one row per (scope, name) per
chunk, holding that chunk's positions (msgpack), keyed by its first position.
A timeline keeps positions, not records: reading one reads its records from
the log by position (``read_positions``: a sequential read per run of nearby
positions) and renders them (``projections.views.audit``), each position
once: a restart re-folds the events after its snapshot, and their entries,
written twice, are the same. A decision's trigger that its timeline does
not hold (a scheduling request, another job's event) is read by position
too, from the decision's causation.

Before the log below a position is removed (``eventbatch compact``),
``ReadModelStore.keep_records`` copies the records below it that timelines
show (their events and the triggers described with them) into
``audit_records``, so a timeline stays readable once the log is compacted;
a timeline is read from there below the log's first position and from the
log above it.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import aclosing

import msgspec

from eventbatch.log.port import EventLog
from projections.views import wire

DDL = (
    "CREATE TABLE IF NOT EXISTS audit_view (scope TEXT NOT NULL, name TEXT NOT NULL, first_position INTEGER NOT NULL,"
    " last_position INTEGER NOT NULL, entries BLOB NOT NULL, PRIMARY KEY (scope, name, first_position))"
)
RECORDS_DDL = "CREATE TABLE IF NOT EXISTS audit_records (position INTEGER PRIMARY KEY, record BLOB NOT NULL)"
UPSERT = "INSERT OR REPLACE INTO audit_view (scope, name, first_position, last_position, entries) VALUES (?, ?, ?, ?, ?)"
KEEP_RECORD = "INSERT OR IGNORE INTO audit_records (position, record) VALUES (?, ?)"

Entries = dict[tuple[str, str], list[int]]
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[int])

# Positions closer than this are read from the log in one sequential read (about one
# chunk of a read); farther apart, a new read starts at the next one.
RUN_GAP = 2_000


def segments(entries: Entries) -> list[tuple[str, str, int, int, bytes]]:
    """One row per (scope, name): the positions of this chunk, in log order."""
    return [
        (scope, name, items[0], items[-1], _encoder.encode(items))
        for (scope, name), items in sorted(entries.items())
    ]


def expand(records: Iterable[tuple[str, str, bytes]]) -> Entries:
    """The positions of stored segments, by (scope, name), in the order read."""
    out: Entries = {}
    for scope, name, blob in records:
        out.setdefault((scope, name), []).extend(_decoder.decode(blob))
    return out


def positions(blob: bytes) -> list[int]:
    """The positions of one stored segment."""
    return _decoder.decode(blob)


def trigger_of(data: bytes) -> int | None:
    """The position of the trigger a record names in its causation (None: none, or unreadable)."""
    record = wire.envelope(0, data)
    return record.causation.position if record is not None and record.causation is not None else None


def runs(positions: Iterable[int], gap: int = RUN_GAP) -> list[list[int]]:
    """Sorted distinct positions cut where two are more than ``gap`` apart."""
    out: list[list[int]] = []
    for position in sorted(set(positions)):
        if out and position - out[-1][-1] <= gap:
            out[-1].append(position)
        else:
            out.append([position])
    return out


async def read_positions(log: EventLog, positions: Iterable[int]) -> dict[int, bytes]:
    """The records of the log at ``positions`` (those it holds): one sequential read from
    the first position of each run of nearby positions to its last."""
    out: dict[int, bytes] = {}
    for run in runs(positions):
        wanted, last = set(run), run[-1]
        async with aclosing(log.read_records(run[0])) as chunks:
            async for chunk in chunks:
                for position, data in chunk:
                    if position in wanted:
                        out[position] = data
                if chunk and chunk[-1][0] >= last:
                    break
    return out
