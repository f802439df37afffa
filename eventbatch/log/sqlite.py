"""The SQLite ``EventLog`` backend (``sqlite:///path/to/events.db``), the embedded default.

Where it sits: the log of a single-host installation, under every handler,
projection and adapter. One file in WAL mode holds three tables: ``events``
(the records, by 0-based consecutive position), ``consumers`` (named
consumer positions) and ``quarantine`` (undecodable records by position).

- An append is one ``BEGIN IMMEDIATE`` transaction: it takes the write lock
  first, reads the tail, inserts the whole batch with ``executemany`` and
  commits, so positions are consecutive and no other writer (another handle
  or another process) lands inside a batch. ``busy_timeout`` makes a second
  writer wait for the lock instead of failing.
- Appends and reads go through separate connections: a reader never shares
  a connection with an open append transaction, and each chunk it reads is a
  consistent WAL snapshot, so it sees all of a batch or none of it.
- Followers are woken at once by appends through the same handle, and find
  other processes' appends by polling every ``poll_interval`` seconds (one
  indexed range query each).
- ``start()`` opens nothing it would have to write into blindly: a path that
  holds a directory, a text file or another program's database is refused
  with ``ForeignFile``, and a file that is visibly damaged (its header, a
  length short of what the header says, an unreadable schema) with
  ``DamagedFile``, before any connection (``eventbatch.sqlitefile``). A
  missing file is created, in a directory that must exist unless
  ``create_dirs`` (the factory sets it for the default log only).
- Damage found later, by a read or an append (a broken page in the middle of
  the file), is ``DamagedFile`` naming the file and the position; a full
  disk is ``StoreFull``. Both are one line for the user; nothing is written
  to a damaged file, and a refused append leaves the log as it was. The
  connections' threads are daemon threads: whatever goes wrong, an open
  connection never keeps the process from exiting.
- ``synchronous=NORMAL`` by default: an acknowledged batch survives a crash of
  the process; ``?synchronous=full`` also survives power loss (docs/log.md).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiosqlite

from eventbatch.log.codec import encode
from eventbatch.log.errors import LogOpenError
from eventbatch.log.port import Chunk, EventLog, LogTruncated, Quarantined
from eventbatch.sqlitefile import LOG, failure, require
from schemas.envelope import Envelope

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS consumers (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    position INTEGER PRIMARY KEY,
    error TEXT NOT NULL,
    data BLOB NOT NULL
);
"""

_SYNCHRONOUS = ("off", "normal", "full", "extra")


class SqliteLog(EventLog):
    """``sqlite:///path``: the log in one SQLite file, shared safely by processes."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "normal",
        poll_interval: float = 0.05,
        busy_timeout: float = 30.0,
        chunk: int = 1000,
        create_dirs: bool = False,
    ) -> None:
        super().__init__()
        if synchronous.lower() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}")
        self.path = Path(path)
        self.url = f"sqlite://{self.path}"
        self.synchronous = synchronous.upper()
        self.poll_interval = poll_interval
        self.busy_timeout = busy_timeout
        self.chunk = chunk
        self.create_dirs = create_dirs
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._stopped = True

    async def start(self) -> None:
        require(self.path, LOG, must_exist=False, create_dirs=self.create_dirs)
        try:
            if self.create_dirs:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = await self._connect()
            await self._writer.execute("PRAGMA journal_mode=WAL")
            await self._writer.executescript(_SCHEMA)
            self._reader = await self._connect()
        except BaseException as exc:
            await self.stop()  # an open connection's thread would keep the process alive
            if isinstance(exc, sqlite3.Error):
                raise failure(self.path, exc, "cannot open the log") from exc
            if isinstance(exc, OSError):
                raise LogOpenError(f"cannot open the log {self.path}: {exc}") from exc
            raise
        self._stopped = False

    async def _connect(self) -> aiosqlite.Connection:
        conn = aiosqlite.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
        # A daemon thread: a connection left open on some unforeseen way out
        # must not keep the process alive (SQLite is safe against a process
        # that ends mid-transaction). aiosqlite creates its thread unstarted.
        thread = getattr(conn, "_thread", None)
        if isinstance(thread, threading.Thread) and not thread.is_alive():
            thread.daemon = True
        conn = await conn
        try:
            await conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            await conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def stop(self) -> None:
        self._stopped = True
        self._notify()
        async with self._write_lock:
            for conn in (self._reader, self._writer):
                if conn is not None:
                    await conn.close()
            self._reader = self._writer = None

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # --- writing ---------------------------------------------------------

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        if not batch:
            return []
        positions = await self._insert([encode(envelope) for envelope in batch])
        self.stats.appended += len(positions)
        return positions

    async def append_raw(self, records: list[bytes]) -> list[int]:
        """Append already-encoded records as they are (for tools and tests:
        importing a foreign record). Returns their positions."""
        return await self._insert([bytes(record) for record in records])

    async def _insert(self, records: list[bytes]) -> list[int]:
        if not records:
            return []
        # Shielded: a cancelled caller must not leave the transaction open
        # or let the next append start inside it.
        try:
            start = await asyncio.shield(self._locked_insert(records))
        except sqlite3.Error as exc:
            error = failure(self.path, exc, "cannot append to the log")
            error.args = (f"{error} ({len(records)} record(s) not appended; the log is as it was)",)
            raise error from exc
        return list(range(start, start + len(records)))

    async def _locked_insert(self, records: list[bytes]) -> int:
        async with self._write_lock:
            writer = self._connected(self._writer)
            if len(records) == 1:
                # One statement is one transaction, and a writing statement
                # takes the write lock before it reads the tail.
                ((start,),) = await writer.execute_fetchall(
                    "INSERT INTO events (position, data) "
                    "SELECT COALESCE(MAX(position) + 1, 0), ? FROM events RETURNING position",
                    (records[0],),
                )
            else:
                start = await self._insert_many(writer, records)
        self._notify()
        return start

    @staticmethod
    async def _insert_many(writer: aiosqlite.Connection, records: list[bytes]) -> int:
        await writer.execute("BEGIN IMMEDIATE")
        try:
            ((start,),) = await writer.execute_fetchall("SELECT COALESCE(MAX(position) + 1, 0) FROM events")
            await writer.executemany(
                "INSERT INTO events (position, data) VALUES (?, ?)",
                [(start + i, record) for i, record in enumerate(records)],
            )
            await writer.execute("COMMIT")
        except BaseException:
            await _rollback(writer)
            raise
        return start

    async def set_consumer_position(self, name: str, position: int) -> None:
        writer = self._connected(self._writer)
        async with self._write_lock:
            await self._write(
                writer,
                "INSERT INTO consumers (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, position),
            )

    async def _quarantine(self, record: Quarantined) -> None:
        writer = self._connected(self._writer)
        async with self._write_lock:
            await self._write(
                writer,
                "INSERT OR IGNORE INTO quarantine (position, error, data) VALUES (?, ?, ?)",
                (record.position, record.error, record.data),
            )

    async def _write(self, writer: aiosqlite.Connection, sql: str, parameters: tuple) -> None:
        """One writing statement (its own transaction); SQLite's errors become the user's (``failure``)."""
        try:
            await writer.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise failure(self.path, exc, "cannot write to the log") from exc

    # --- reading ---------------------------------------------------------

    async def read_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncIterator[Chunk]:
        position = from_position
        pending: asyncio.Future[list] | None = None
        try:
            while True:
                if pending is None:
                    changed, pending = self._changed, self._query(position)
                try:
                    rows = await pending
                except sqlite3.Error as exc:
                    raise failure(self.path, exc, "cannot read the log", f" from position {position}") from exc
                finally:
                    pending = None
                if rows:
                    if rows[0][0] > position:  # positions have no gaps: the ones asked for were removed
                        raise LogTruncated(
                            f"{self.url}: position {position} was removed (the log starts at {rows[0][0]})"
                        )
                    position = rows[-1][0] + 1
                full = len(rows) == self.chunk
                if full:  # fetch the next chunk while this one is read
                    changed, pending = self._changed, self._query(position)
                if rows:
                    yield rows
                if full:
                    continue
                if not follow:
                    return
                try:
                    # Not wait_for: on 3.11 it can swallow a cancellation.
                    async with asyncio.timeout(self.poll_interval):
                        await changed.wait()
                except TimeoutError:
                    pass
                if self._stopped:
                    return
        finally:
            if pending is not None:
                pending.cancel()

    def _query(self, position: int) -> "asyncio.Future[list]":
        return asyncio.ensure_future(
            self._connected(self._reader).execute_fetchall(
                "SELECT position, data FROM events WHERE position >= ? ORDER BY position LIMIT ?",
                (position, self.chunk),
            )
        )

    async def _fetch(self, sql: str, parameters: tuple = ()) -> list:
        """One query on the reader connection; SQLite's errors become the user's (``failure``)."""
        try:
            return list(await self._connected(self._reader).execute_fetchall(sql, parameters))
        except sqlite3.Error as exc:
            raise failure(self.path, exc, "cannot read the log") from exc

    async def start_position(self) -> int:
        ((start,),) = await self._fetch("SELECT COALESCE(MIN(position), 0) FROM events")
        return start

    async def truncate(self, before: int) -> int:
        writer = self._connected(self._writer)
        async with self._write_lock:
            await writer.execute("BEGIN IMMEDIATE")
            try:
                ((last,),) = await writer.execute_fetchall("SELECT COALESCE(MAX(position), -1) FROM events")
                cut = min(before, last)  # the last record stays: it carries the next position
                await writer.execute("DELETE FROM events WHERE position < ?", (cut,))
                await writer.execute("DELETE FROM quarantine WHERE position < ?", (cut,))
                await writer.execute("COMMIT")
            except BaseException:
                await _rollback(writer)
                raise
        return await self.start_position()

    async def end_position(self) -> int:
        ((end,),) = await self._fetch("SELECT COALESCE(MAX(position) + 1, 0) FROM events")
        return end

    async def get_consumer_position(self, name: str) -> int | None:
        rows = await self._fetch("SELECT position FROM consumers WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    async def quarantined(self) -> list[Quarantined]:
        rows = await self._fetch("SELECT position, error, data FROM quarantine ORDER BY position")
        return [Quarantined(position, error, bytes(data)) for position, error, data in rows]

    def _connected(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise RuntimeError(f"{self.url} is not started (use `async with` or `await log.start()`)")
        return conn


async def _rollback(writer: aiosqlite.Connection) -> None:
    """End a failed transaction, if SQLite has not ended it already.

    On some errors (``SQLITE_FULL``, ``SQLITE_IOERR``, ``SQLITE_NOMEM``, ...)
    SQLite rolls the transaction back itself; a ROLLBACK then fails with
    "cannot rollback - no transaction is active" and would hide the real
    error. Either way nothing of the batch is in the file.
    """
    if writer.in_transaction:
        await writer.execute("ROLLBACK")
