"""The SQLite ``EventLog`` backend (``sqlite:///path/to/events.db``), the embedded default.

Where it sits: the log of a single-host installation, under every handler,
projection and adapter. One file in WAL mode holds three tables: ``events``
(the records, by 0-based consecutive position), ``consumers`` (named
consumer positions) and ``quarantine`` (undecodable records by position).

- An append is one ``BEGIN IMMEDIATE`` transaction: it takes the write lock
  first, reads the tail, inserts the whole batch in a few multi-row
  ``INSERT`` statements (``_insert_rows``) and commits, so positions are
  consecutive and no other writer (another handle or another process) lands
  inside a batch. ``busy_timeout`` makes a second writer wait for the lock
  instead of failing. The write connection belongs to a thread of its own
  (``_WriteThread``). An append whose lock is free at once, with nothing
  queued for that thread, runs on the caller's thread as a plain sqlite3
  insert would (``_insert_now``: no wait, no thread hop); otherwise, and for
  batches above ``_INLINE_MOST`` records, the whole transaction is one call
  into the write thread, and the event loop goes on meanwhile. Either way a
  cancelled caller cannot cut it short.
- Appends and reads go through separate connections: a reader never shares
  a connection with an open append transaction, and each chunk it reads is a
  consistent WAL snapshot, so it sees all of a batch or none of it.
- Followers are woken at once by appends through the same handle. Appends by
  other handles and processes wake them too (``eventbatch.log.wakeup``): every
  append sets the file's modification time once it has committed, and a
  follower waiting at the tail watches the file with inotify. Where inotify
  is not available, or a writer that is not this backend appends (the
  ``sqlite3`` shell), followers find the append by polling every
  ``poll_interval`` seconds (one indexed range query each).
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
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from eventbatch.log.codec import encode_batch
from eventbatch.log.errors import LogOpenError
from eventbatch.log.port import Chunk, EventLog, LogTruncated, Quarantined
from eventbatch.log.wakeup import FileWatch, watch
from eventbatch.sqlitefile import LOG, failure, require
from schemas.envelope import Envelope

_log = logging.getLogger(__name__)

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

_Record = bytes | bytearray
"""A record as inserted: ``bytes`` (``append_raw``) or ``bytearray`` (``append``, through
``codec.encode_batch``: bound without sqlite3's adapter lookup); stored as the same blob."""

T = TypeVar("T")
C = TypeVar("C")


class _WriteThread:
    """The write connection on a daemon thread of its own; ``call(fn)`` runs ``fn(connection)``
    there and returns its result: a whole transaction is one hop from the event loop.

    Calls run one at a time in the order they were made, each with the connection's
    ``busy_timeout`` (waiting for another writer's lock is what this thread is for); between
    calls it is 0, so that what the event loop's thread runs on the connection (``idle``)
    never waits. The thread is a daemon:
    a connection left open on some unforeseen way out never keeps the process
    alive (SQLite is safe against a process that ends mid-transaction)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], name: str, busy_ms: int) -> None:
        self._busy_ms = busy_ms
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._pending = 0  # calls made and not yet answered on the event loop
        self._conn: sqlite3.Connection | None = None  # set by the thread once it has connected
        self._thread = threading.Thread(target=self._serve, args=(connect,), name=name, daemon=True)
        self._thread.start()

    def _serve(self, connect: Callable[[], sqlite3.Connection]) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            fn, future, loop, then = self._calls.get()
            try:
                if fn is None:  # close: the connection, then the thread
                    self._conn = None
                    if conn is not None:
                        conn.close()
                    outcome, value = True, None
                else:
                    if conn is None:
                        conn = connect()
                        conn.execute("PRAGMA busy_timeout=0")
                        self._conn = conn
                    conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
                    try:
                        outcome, value = True, fn(conn)
                    finally:
                        conn.execute("PRAGMA busy_timeout=0")
            except BaseException as exc:  # handed to the caller, whatever it is
                outcome, value = False, exc
            try:
                loop.call_soon_threadsafe(self._settle, future, outcome, value, then)
            except RuntimeError:  # the loop is closed: nobody waits for this any more
                pass
            if fn is None:
                return

    async def call(
        self, fn: Callable[[sqlite3.Connection], Any] | None, then: Callable[[Any], T] | None = None
    ) -> T:
        """``fn(connection)`` on the thread; its result, or ``then(result)`` if ``then`` is given.

        ``then`` runs on the event loop once ``fn`` has returned, also when the caller was
        cancelled meanwhile: what has to follow a committed write happens whoever waits for it.
        A cancelled caller never cuts ``fn`` short (it is one call on the thread)."""
        return await self.submit(fn, then)

    def submit(
        self, fn: Callable[[sqlite3.Connection], Any] | None, then: Callable[[Any], T] | None = None
    ) -> asyncio.Future[T]:
        """``call`` without waiting: the call is queued at once, its future returned."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending += 1
        self._calls.put((fn, future, loop, then))
        return future

    def _settle(self, future: asyncio.Future, outcome: bool, value: Any, then: Callable[[Any], Any] | None) -> None:
        """On the event loop, once a call has returned: the thread has nothing more of it to run."""
        self._pending -= 1
        _settle(future, outcome, value, then)

    def idle(self) -> sqlite3.Connection | None:
        """The connection, for the event loop's thread to use right now, if the write thread has
        no call to run (it waits for the next one and touches nothing meanwhile); else None. Its
        ``busy_timeout`` is 0: a statement that needs a lock another connection holds fails
        with ``SQLITE_BUSY`` at once.

        Whatever the caller runs on it must end before the caller next awaits: a call made
        meanwhile would run on the same connection at the same time."""
        return self._conn if self._pending == 0 else None

    async def close(self) -> None:
        """Close the connection once the calls already made have run; the thread ends."""
        await self.call(None)
        self._thread.join()  # it has answered the close: what is left of it is its return

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> None:
        """One statement on the write connection (its own transaction, outside one)."""
        await self.call(lambda conn: conn.execute(sql, parameters).close())

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list:
        return await self.call(lambda conn: conn.execute(sql, parameters).fetchall())


def _settle(future: asyncio.Future, outcome: bool, value: Any, then: Callable[[Any], Any] | None) -> None:
    if outcome and then is not None:
        try:
            value = then(value)
        except BaseException as exc:
            outcome, value = False, exc
    if future.cancelled():
        return
    if outcome:
        future.set_result(value)
    else:
        future.set_exception(value)


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
        self._busy_ms = int(busy_timeout * 1000)
        self.chunk = chunk
        self.create_dirs = create_dirs
        self._writer: _WriteThread | None = None
        self._unchecked = 0  # bytes appended since the last WAL checkpoint
        self._checkpoint: asyncio.Future | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._stopped = True
        self._watch: FileWatch | None = None  # wakes this handle's followers on other processes' appends
        self._watched = False  # a watch was tried (it is tried once per start)
        self._file: tuple[int, int] | None = None  # the file's identity while this handle has it open
        self.touched_ns = 0  # the modification time the latest append through this handle gave the file

    async def start(self) -> None:
        key = _file_key(self.path)
        if key is None or not _OPEN_FILES.get(key):
            # Only for a file this process does not have open already: checking it opens
            # and closes the file, and closing any descriptor of a file drops every POSIX
            # lock this process holds on it, the open connections' included. Another
            # process closing its last connection could then take the WAL away from under
            # them (their later appends would be seen by no other process).
            require(self.path, LOG, must_exist=False, create_dirs=self.create_dirs)
        # Counted as open here before the first connection: a handle on the same file
        # starting meanwhile (the same process, another task) must not check it either.
        self._file = _opened(key)
        try:
            if self.create_dirs:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _WriteThread(
                self._connect_writer, name=f"eventbatch-log-writer {self.path.name}", busy_ms=self._busy_ms
            )
            await self._writer.call(_create)
            self._reader = await self._connect()
        except BaseException as exc:
            await self.stop()  # an open connection's thread would keep the process alive
            if isinstance(exc, sqlite3.Error):
                raise failure(self.path, exc, "cannot open the log") from exc
            if isinstance(exc, OSError):
                raise LogOpenError(f"cannot open the log {self.path}: {exc}") from exc
            raise
        self._stopped = False
        self._watched = False
        if self._file is None:  # the file was created just now
            self._file = _opened(_file_key(self.path))

    def _connect_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            # No checkpoint at a commit: an append on the event loop's thread would wait for its
            # fsyncs. ``_checkpoint_later`` runs one on the write thread instead.
            conn.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            conn.close()
            raise
        return conn

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
        if self._file is not None:
            _closed(self._file)
            self._file = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        async with self._write_lock:
            reader, writer = self._reader, self._writer
            self._reader = self._writer = None
            if reader is not None:
                await reader.close()
            if writer is not None:
                await writer.close()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _woken(self, modified_ns: int | None) -> None:
        """The file was touched: another handle or process may have appended. The
        touch this handle's own latest append made is not news (its followers were
        woken by ``_notify`` already); any other is."""
        if modified_ns is None or modified_ns != self.touched_ns:
            self._notify()

    # --- writing ---------------------------------------------------------

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        if not batch:
            return []
        positions = await self._insert(encode_batch(batch))
        self.stats.appended += len(positions)
        return positions

    async def append_raw(self, records: list[bytes]) -> list[int]:
        """Append already-encoded records as they are (for tools and tests:
        importing a foreign record). Returns their positions."""
        return await self._insert([bytes(record) for record in records])

    async def _insert(self, records: Sequence[_Record]) -> list[int]:
        if not records:
            return []
        writer = self._connected(self._writer)
        try:
            # At once on this thread if the write lock is free and the write thread idle: the
            # whole transaction runs before anything else on the event loop, and the next append
            # after it. Else one call on the write thread: a cancelled caller cannot leave it
            # open, and the next append runs after it. What follows the commit (``_committed``)
            # runs whether or not the caller still waits.
            conn = writer.idle() if len(records) <= _INLINE_MOST else None
            inserted = None if conn is None else _insert_now(conn, self.path, records)
            if inserted is not None:
                start = self._committed(inserted)
            else:
                start = await writer.call(lambda conn: _insert_batch(conn, self.path, records), self._committed)
            self._checkpoint_later(writer, sum(map(len, records)))
        except sqlite3.Error as exc:
            error = failure(self.path, exc, "cannot append to the log")
            error.args = (f"{error} ({len(records)} record(s) not appended; the log is as it was)",)
            raise error from exc
        return list(range(start, start + len(records)))

    def _checkpoint_later(self, writer: _WriteThread, appended: int) -> None:
        """Once ``CHECKPOINT_BYTES`` were appended since the last one, a passive WAL checkpoint on
        the write thread (what SQLite's automatic checkpoint does at a commit, but off the event
        loop: its fsyncs never hold up an append made on the loop's thread). An append made
        meanwhile queues behind it on the write thread."""
        self._unchecked += appended
        if self._unchecked < CHECKPOINT_BYTES or self._checkpoint is not None:
            return
        self._unchecked = 0
        task: asyncio.Future[None] = writer.submit(_checkpoint)
        self._checkpoint = task

        def done(task: asyncio.Future) -> None:
            self._checkpoint = None
            if not task.cancelled() and (exc := task.exception()) is not None:
                _log.warning("%s: WAL checkpoint failed: %s", self.path, exc)  # the next one retries

        task.add_done_callback(done)

    def _committed(self, inserted: tuple[int, int]) -> int:
        """On the event loop, after an append committed: remember the time it gave the file
        (not news to this handle's watch) and wake this handle's followers."""
        start, self.touched_ns = inserted
        self._notify()
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

    async def _write(self, writer: _WriteThread, sql: str, parameters: tuple) -> None:
        """One writing statement (its own transaction); SQLite's errors become the user's (``failure``)."""
        try:
            await writer.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise failure(self.path, exc, "cannot write to the log") from exc

    # --- reading ---------------------------------------------------------

    async def read_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Chunk, None]:
        position = from_position
        pending: asyncio.Future[Chunk] | None = None
        try:
            while True:
                if pending is None:
                    if follow and self._stopped:
                        return
                    changed, pending = self._changed, self._query(position)
                try:
                    rows = await pending
                except (sqlite3.Error, ValueError) as exc:
                    if follow and self._stopped:  # the log stopped under a follower's look: it ends
                        return
                    if not isinstance(exc, sqlite3.Error):
                        raise
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
                if not self._watched and not self._stopped:
                    # Watch first, then look once more: an append made before the watch
                    # began would wake nobody.
                    self._watched = True
                    self._watch = watch(self.path, self._woken)
                    continue
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

    def _query(self, position: int) -> asyncio.Future[Chunk]:
        rows = self._connected(self._reader).execute_fetchall(
            "SELECT position, data FROM events WHERE position >= ? ORDER BY position LIMIT ?",
            (position, self.chunk),
        )
        # aiosqlite's stubs say an iterable of Row; with no row factory set it is a list of tuples
        return asyncio.ensure_future(cast("Awaitable[Chunk]", rows))

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
            await writer.call(lambda conn: _truncate(conn, before))
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

    def _connected(self, conn: C | None) -> C:
        if conn is None:
            raise RuntimeError(f"{self.url} is not started (use `async with` or `await log.start()`)")
        return conn


_OPEN_FILES: dict[tuple[int, int], int] = {}  # (device, inode) -> handles of this process that have it open


def _file_key(path: Path) -> tuple[int, int] | None:
    """The file's (device, inode), None if there is no file yet."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _opened(key: tuple[int, int] | None) -> tuple[int, int] | None:
    if key is not None:
        _OPEN_FILES[key] = _OPEN_FILES.get(key, 0) + 1
    return key


def _closed(key: tuple[int, int]) -> None:
    left = _OPEN_FILES.get(key, 0) - 1
    if left > 0:
        _OPEN_FILES[key] = left
    else:
        _OPEN_FILES.pop(key, None)


def _create(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_SCHEMA)


CHECKPOINT_BYTES = 4 * 2**20
"""Bytes appended between two WAL checkpoints (SQLite's automatic one comes at 1,000 pages, ~4 MiB)."""


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


_INLINE_MOST = 1024
"""The largest batch appended on the event loop's thread (``_insert_now``): a few milliseconds of
inserting at most. A larger one (a simulation's written-behind flush, an import) goes to the write
thread, and the event loop goes on while SQLite inserts it."""


def _insert_now(conn: sqlite3.Connection, path: Path, records: Sequence[_Record]) -> tuple[int, int] | None:
    """On the caller's thread, on the idle write connection (``_WriteThread.idle``):
    ``_insert_batch`` if the write lock is free this instant, None if another connection holds it
    (nothing was written; the write thread then waits for the lock).

    The connection's ``busy_timeout`` is 0 here, so a held lock is ``SQLITE_BUSY`` at once instead
    of a wait that would stop the event loop. The lock is taken first, so a busy attempt wrote
    nothing; should anything later in the transaction be busy, it is rolled back whole and the
    write thread appends the batch."""
    try:
        return _insert_batch(conn, path, records)
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            return None
        raise


def _insert_batch(conn: sqlite3.Connection, path: Path, records: Sequence[_Record]) -> tuple[int, int]:
    """On the write connection (in the write thread, or on the caller's through ``_insert_now``):
    append ``records`` as one transaction; returns the first position and the modification time
    given to the file afterwards (the wake-up)."""
    if len(records) == 1:
        # One statement is one transaction, and a writing statement takes the
        # write lock before it reads the tail.
        ((start,),) = conn.execute(
            "INSERT INTO events (position, data) "
            "SELECT COALESCE(MAX(position) + 1, 0), ? FROM events RETURNING position",
            (records[0],),
        ).fetchall()
    else:
        conn.execute("BEGIN IMMEDIATE")  # the write lock before the tail is read
        try:
            ((start,),) = conn.execute("SELECT COALESCE(MAX(position) + 1, 0) FROM events").fetchall()
            _insert_rows(conn, start, records)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    return start, touch(path)


_MOST_ROWS = 256
"""The most rows one ``INSERT`` statement carries (257 parameters: SQLite allows 999 and more)."""


def _insert_rows(conn: sqlite3.Connection, start: int, records: Sequence[_Record]) -> None:
    """Insert ``records`` at ``start`` onwards in a few multi-row ``INSERT`` statements.

    A statement of ``n`` rows binds the first position once and the records after it; ``n`` is a
    power of two up to ``_MOST_ROWS``, so a batch of 100 is three statements (64, 32, 4 rows) and
    every batch uses the same nine statements, compiled once and kept in the connection's cache.
    One statement steps through all its rows with the GIL released; ``executemany`` binds, steps
    and resets row by row, which costs about 15% more per record."""
    done, count, rows = 0, len(records), _MOST_ROWS
    while done < count:
        while rows > count - done:
            rows //= 2
        conn.execute(_insert_statement(rows), (start + done, *records[done : done + rows]))
        done += rows


_STATEMENTS: dict[int, str] = {}


def _insert_statement(rows: int) -> str:
    sql = _STATEMENTS.get(rows)
    if sql is None:
        values = ",".join(f"(?1+{i},?{i + 2})" for i in range(rows))
        sql = _STATEMENTS[rows] = f"INSERT INTO events (position, data) VALUES {values}"
    return sql


def touch(path: Path) -> int:
    """Set the file's modification time to now, to the nanosecond: the committed append's
    signal to followers in other processes (``eventbatch.log.wakeup``). Returns the time
    set, 0 if it could not be (the append stands; followers then find it by polling)."""
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except OSError:
        return 0
    return now


def _truncate(conn: sqlite3.Connection, before: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        ((last,),) = conn.execute("SELECT COALESCE(MAX(position), -1) FROM events").fetchall()
        cut = min(before, last)  # the last record stays: it carries the next position
        conn.execute("DELETE FROM events WHERE position < ?", (cut,))
        conn.execute("DELETE FROM quarantine WHERE position < ?", (cut,))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    """End a failed transaction, if SQLite has not ended it already.

    On some errors (``SQLITE_FULL``, ``SQLITE_IOERR``, ``SQLITE_NOMEM``, ...)
    SQLite rolls the transaction back itself; a ROLLBACK then fails with
    "cannot rollback - no transaction is active" and would hide the real
    error. Either way nothing of the batch is in the file.
    """
    if conn.in_transaction:
        conn.execute("ROLLBACK")
