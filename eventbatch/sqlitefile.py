"""Probing an SQLite file before it is opened: is it there, and is it ours.

Where it sits: under the SQLite log (``eventbatch.log.sqlite``), the snapshot
store (``eventbatch.snapshots``) and the command line's pre-flight checks
(``eventbatch.cli.logcheck``). Opened blindly, a file that is not a database
fails half-way (``file is not a database``) and a database that belongs to
something else gets our tables added to it. ``require`` looks first, writes
nothing, and raises ``MissingFile`` or ``ForeignFile`` with one clear line.

- A missing file is created by its store unless it must exist; its directory
  must exist unless the caller may create it (only the default log's).
- An empty file, or an SQLite database without tables, may be taken over.
- Anything else must be a database with the expected table and columns.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from eventbatch.log.errors import ForeignFile, MissingFile

HEADER = b"SQLite format 3\x00"
PROBE_TIMEOUT_S = 5.0  # a database locked by another program: wait this long, then say so


@dataclass(frozen=True)
class Kind:
    """What a store file holds: its key table and the columns it must have."""

    noun: str  # "log"
    what: str  # "an eventbatch log"
    table: str
    columns: frozenset[str]


LOG = Kind("log", "an eventbatch log", "events", frozenset({"position", "data"}))
SNAPSHOTS = Kind("snapshot store", "an eventbatch snapshot store", "snapshots", frozenset({"name", "position", "data"}))


def require(path: str | Path, kind: Kind, *, must_exist: bool, create_dirs: bool = False, hint: str = "") -> bool:
    """Raise unless ``path`` can be opened as ``kind``; True if it already holds one.

    ``must_exist``: a missing file is an error (``hint`` is added to it);
    otherwise its directory must exist, or be creatable when ``create_dirs``.
    """
    path = Path(path)
    if path.is_dir():
        raise ForeignFile(f"{path} is a directory, not {kind.what}")
    if not path.exists():
        if must_exist:
            raise MissingFile(f"no {kind.noun} at {path}{hint}")
        if not create_dirs and not path.parent.is_dir():
            raise MissingFile(f"cannot create the {kind.noun} {path}: no directory {path.parent} (create it first)")
        return False
    problem = _problem(path, kind)
    if problem is None:
        return True
    if problem == "" and not must_exist:
        return False  # nothing in it yet: ours to fill
    raise ForeignFile(f"{path} is not {kind.what} ({problem or 'nothing in it'})")


def _problem(path: Path, kind: Kind) -> str | None:
    """None if ``path`` holds ``kind``; "" if it is empty; else what it holds instead."""
    try:
        with path.open("rb") as file:
            head = file.read(len(HEADER))
    except OSError as exc:
        raise ForeignFile(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        return ""
    if head != HEADER:
        return "not an SQLite database"
    try:
        tables = _columns(path)
    except sqlite3.Error as exc:
        raise ForeignFile(f"cannot read {path}: {exc}") from None
    if not tables:
        return ""
    if kind.table not in tables:
        return f"an SQLite database with tables {', '.join(sorted(tables))} but no {kind.table!r}"
    missing = kind.columns - tables[kind.table]
    if missing:
        return f"its {kind.table!r} table has no {', '.join(sorted(missing))} column"
    return None


def _columns(path: Path) -> dict[str, set[str]]:
    """Each table's columns, read without writing (no statement here writes)."""
    conn = sqlite3.connect(path, timeout=PROBE_TIMEOUT_S)
    try:
        names = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: {row[1] for row in conn.execute(f"PRAGMA table_info({_quoted(name)})")} for name in names}
    finally:
        conn.close()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
