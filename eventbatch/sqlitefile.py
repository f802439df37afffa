"""Probing an SQLite file before it is opened: is it there, and is it ours.

Where it sits: under the SQLite log (``eventbatch.log.sqlite``), the snapshot
store (``eventbatch.snapshots``) and the command line's pre-flight checks
(``eventbatch.cli.logcheck``). Opened blindly, a file that is not a database
fails half-way (``file is not a database``) and a database that belongs to
something else gets our tables added to it. ``require`` looks first, writes
nothing, and raises ``MissingFile``, ``ForeignFile`` or ``DamagedFile`` with
one clear line.

- A missing file is created by its store unless it must exist; its directory
  must exist unless the caller may create it (only the default log's).
- An empty file, or an SQLite database without tables, may be taken over.
- Anything else must be a database with the expected table and columns.
- A damaged database is named as such before any connection of the store
  opens it: a header SQLite would refuse (``file is not a database``), a
  file shorter than its header says (cut short by a copy or a full disk),
  a schema that cannot be read. Stores whose ``Kind`` asks for it (the
  snapshot and read-model stores: small, read whole) also get SQLite's
  ``PRAGMA quick_check`` of every page, and so does a log a command is
  about to read whole anyway (``check_pages``). Other commands read only
  part of a log, so damage deeper in it is found where a read meets it
  (``failure`` turns SQLite's error into ``DamagedFile`` there).
- ``failure`` also names a full disk (``SQLITE_FULL``) as ``StoreFull``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from eventbatch.log.errors import DamagedFile, ForeignFile, LogOpenError, MissingFile, StoreFull

HEADER = b"SQLite format 3\x00"
HEADER_SIZE = 100  # the database header: the first 100 bytes of page 1
PROBE_TIMEOUT_S = 5.0  # a database locked by another program: wait this long, then say so
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_NOTADB = 11, 13, 26  # primary result codes


@dataclass(frozen=True)
class Kind:
    """What a store file holds: its key table and the columns it must have."""

    noun: str  # "log"
    what: str  # "an eventbatch log"
    table: str
    columns: frozenset[str]
    check_pages: bool = False  # run PRAGMA quick_check before use (a store small enough to read whole)


LOG = Kind("log", "an eventbatch log", "events", frozenset({"position", "data"}))
SNAPSHOTS = Kind(
    "snapshot store", "an eventbatch snapshot store", "snapshots", frozenset({"name", "position", "data"}),
    check_pages=True,
)


def require(
    path: str | Path, kind: Kind, *, must_exist: bool, create_dirs: bool = False, hint: str = "",
    check_pages: bool = False,
) -> bool:
    """Raise unless ``path`` can be opened as ``kind``; True if it already holds one.

    ``must_exist``: a missing file is an error (``hint`` is added to it);
    otherwise its directory must exist, or be creatable when ``create_dirs``.
    ``check_pages`` (or ``kind.check_pages``): read every page of an existing
    file first (``PRAGMA quick_check``), for a caller about to read it whole.
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
    problem = _problem(path, kind, check_pages or kind.check_pages)
    if problem is None:
        return True
    if problem == "" and not must_exist:
        return False  # nothing in it yet: ours to fill
    raise ForeignFile(f"{path} is not {kind.what} ({problem or 'nothing in it'})")


def _problem(path: Path, kind: Kind, check_pages: bool) -> str | None:
    """None if ``path`` holds ``kind``; "" if it is empty; else what it holds instead."""
    try:
        with path.open("rb") as file:
            head = file.read(HEADER_SIZE)
            size = file.seek(0, 2)
    except OSError as exc:
        raise ForeignFile(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        return ""
    if head[: len(HEADER)] != HEADER:
        return "not an SQLite database"
    damage = header_damage(path, head, size)
    if damage:
        raise DamagedFile(f"{path} is damaged: {damage}; it was left as it is")
    try:
        tables = _columns(path, check_pages)
    except sqlite3.Error as exc:
        raise failure(path, exc, "cannot read") from None
    if not tables:
        return ""
    if kind.table not in tables:
        return f"an SQLite database with tables {', '.join(sorted(tables))} but no {kind.table!r}"
    missing = kind.columns - tables[kind.table]
    if missing:
        return f"its {kind.table!r} table has no {', '.join(sorted(missing))} column"
    return None


def header_damage(path: Path, head: bytes, size: int) -> str:
    """What is wrong with an SQLite file's header and length, in SQLite's words; "" if nothing.

    Cheap: the header and the file's length only. A database file is a whole
    number of pages, and when its header's page count is valid (the change
    counter and the version-valid-for number agree) the file holds at least
    that many pages. Pages still in a ``-wal`` file may lie beyond the end of
    the database file, and a ``-journal`` left by a crash restores what a
    transaction changed, so the length is not judged while either is there.
    """
    if len(head) < HEADER_SIZE:
        return f"file is not a database (only {size:,} bytes, shorter than an SQLite header)"
    raw = int.from_bytes(head[16:18], "big")
    page = 65536 if raw == 1 else raw
    if page < 512 or page & (page - 1):
        return f"file is not a database (its header gives a page size of {raw})"
    if head[21:24] != b"\x40\x20\x20":  # payload fractions, fixed at 64, 32, 32
        return "file is not a database (its header is not one SQLite writes)"
    wal = Path(f"{path}-wal")
    if (wal.exists() and wal.stat().st_size > 0) or Path(f"{path}-journal").exists():
        return ""
    pages = int.from_bytes(head[28:32], "big")
    if size % page:
        return (
            f"database disk image is malformed (truncated: {size:,} bytes is not a whole number of {page}-byte pages)"
        )
    if pages and head[24:28] == head[92:96] and size < pages * page:
        return f"database disk image is malformed (truncated: {size:,} bytes, its header says {pages * page:,})"
    return ""


def failure(path: str | Path, exc: sqlite3.Error, doing: str, where: str = "") -> LogOpenError:
    """The one-line error for SQLite's ``exc`` on ``path`` while ``doing`` (e.g. "cannot read the log"),
    ``where`` in it (e.g. " from position 1200").

    A damaged file (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) is ``DamagedFile``,
    a full disk (``SQLITE_FULL``) ``StoreFull``, anything else (locked,
    permission, I/O) ``LogOpenError`` with SQLite's words.
    """
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return DamagedFile(f"{doing} {path}{where}: {exc} (the file is damaged)")
    if code == SQLITE_FULL:
        return StoreFull(f"{doing} {path}{where}: {exc} (the disk is full, or the file reached its size limit)")
    return LogOpenError(f"{doing} {path}{where}: {exc}")


def _columns(path: Path, check_pages: bool = False) -> dict[str, set[str]]:
    """Each table's columns, read without writing (no statement here writes).

    ``check_pages``: every page is read first (``PRAGMA quick_check``), and a
    problem it finds raises ``DamagedFile``. A file no connection has open
    (no ``-wal``, no ``-journal`` beside it) is read as immutable: no lock,
    no ``-wal``/``-shm`` made and removed, not a byte of the directory
    touched. Damage seen that way stands if the file was still idle and
    unchanged afterwards; otherwise a writer began in between, and an
    ordinary connection reads it again.
    """
    before = _idle_state(path)
    if before is not None:
        try:
            return _read_columns(path, check_pages, immutable=True)
        except (DamagedFile, sqlite3.DatabaseError):
            if _idle_state(path) == before:
                raise
    return _read_columns(path, check_pages, immutable=False)


def _idle_state(path: Path) -> tuple[int, int] | None:
    """The file's size and modification time if no connection has it open (no -wal, no -journal), else None."""
    if any(Path(f"{path}{side}").exists() for side in ("-wal", "-journal")):
        return None
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _read_columns(path: Path, check_pages: bool, *, immutable: bool) -> dict[str, set[str]]:
    if immutable:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
    else:
        conn = sqlite3.connect(path, timeout=PROBE_TIMEOUT_S)
    try:
        names = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if check_pages and names:
            found = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
            if found != ["ok"]:
                raise DamagedFile(
                    f"{path} is damaged: database disk image is malformed ({'; '.join(found)}); it was left as it is"
                )
        return {name: {row[1] for row in conn.execute(f"PRAGMA table_info({_quoted(name)})")} for name in names}
    finally:
        conn.close()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
