"""``ReadModelStore``: the SQLite file of the read models (aiosqlite).

Where it sits: written by ``eventbatch.readmodels.Projector``, read by the
CLI. One table per view (``projections.views.rows.TABLES``; AuditView as
conflated segments of log positions, whose records are read from the log, or
from ``audit_records`` once compaction has removed them: ``eventbatch.readmodels.audit``), a ``tracking``
table with each read model's log position, a ``snapshots`` table with
the checkpointed fold state, and ``past_views``: the fold state at positions
spread over the log (``Projector``), which ``replay --to/--at`` starts from
instead of position 0. ``apply`` writes a chunk's rows, deletions,
audit rows and positions in one transaction: after a crash, the rows and the
position agree, and the projector resumes from there.

The fold state is kept with ``eventbatch.statecodec`` (``encode_state`` /
``decode_state``), never pickled: a planted store can at worst show wrong
rows, never run code. A store whose snapshot was written by an older
eventbatch (a pickle), or holds a fold state of a shape this code does not
have, is refused with one line (``OldViewsStore``) and never read; deleting
it rebuilds the read models from the log. The file's layout has a version
(``SCHEMA_VERSION``, SQLite's ``user_version``): a store of another layout
is refused the same way (``OldViewsStore``) rather than misread.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from pathlib import Path

import aiosqlite
import msgspec

from eventbatch import statecodec
from eventbatch.log.errors import LogOpenError
from eventbatch.log.port import EventLog
from eventbatch.readmodels import audit
from projections.views import TABLES, Changes
from projections.views.audit import TRIGGER_WINDOW, fill_causes, timelines, triggers_wanted
from projections.views.rows import AuditRow, columns

VIEWS = ("QueueView", "JobView", "PodGroupView", "PodView", "NodeView", "PriorityClassView", "AuditView", "JobHistory")
_CHANGE_TABLES = {
    "queue_view": "queues",
    "job_view": "jobs",
    "podgroup_view": "podgroups",
    "pod_view": "pods",
    "node_view": "nodes",
    "priority_class_view": "priority_classes",
    "job_history": "history",
}
_SQL_TYPES = {int: "INTEGER", str: "TEXT", float: "REAL", bool: "INTEGER"}
# The layout of the file (PRAGMA user_version): 2 since timelines keep log positions
# instead of records (1 was never written: stores before it have 0).
SCHEMA_VERSION = 2


def _sql_type(annotation) -> str:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return _SQL_TYPES[annotation]


def _ddl() -> list[str]:
    statements = []
    for table, (row_type, key) in TABLES.items():
        if table == "audit_view":
            continue  # stored as conflated segments: eventbatch.readmodels.audit
        hints = typing.get_type_hints(row_type)
        cols = ", ".join(f"{c} {_sql_type(hints[c])}" for c in columns(row_type))
        # WITHOUT ROWID: a row is stored in its primary key's b-tree, one insert per row.
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {table} ({cols}, PRIMARY KEY ({', '.join(key)})) WITHOUT ROWID"
        )
    statements += [
        audit.DDL,
        audit.RECORDS_DDL,
        "CREATE TABLE IF NOT EXISTS tracking (view TEXT PRIMARY KEY, position INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS snapshots (name TEXT PRIMARY KEY, position INTEGER NOT NULL, state BLOB NOT NULL)",
        # latest_at: the latest recorded_at at or below the position, for --at (NULL: not known)
        "CREATE TABLE IF NOT EXISTS past_views (position INTEGER PRIMARY KEY, latest_at INTEGER,"
        " state BLOB NOT NULL)",
        "CREATE INDEX IF NOT EXISTS job_view_queue ON job_view (queue)",
        "CREATE INDEX IF NOT EXISTS pod_view_job ON pod_view (job)",
    ]
    return statements


def _upsert(table: str) -> str:
    row_type, _ = TABLES[table]
    cols = columns(row_type)
    return f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"


_UPSERTS = {table: _upsert(table) for table in _CHANGE_TABLES}


class OldViewsStore(LogOpenError):
    """Read models whose fold snapshot an older eventbatch wrote (a pickle): refused, never read."""


class BadViewsStore(LogOpenError):
    """Read models whose fold snapshot this eventbatch cannot restore."""


def encode_state(state) -> bytes:
    """The read models' fold state as a snapshot blob (``eventbatch.statecodec``)."""
    return statecodec.encode(state)


def decode_state(blob: bytes, *, where: str = "the read-model store"):
    """The fold state ``encode_state`` wrote; ``OldViewsStore`` / ``BadViewsStore`` with one line otherwise.

    A state whose shape this code does not have (saved by another eventbatch, or before
    shapes were kept) is refused like an older pickle: folding on from it would show
    wrong rows, and the read models are rebuilt from the log when the store is deleted."""
    store = f"read-model store {where}"
    try:
        changes = statecodec.shape_changes(blob)
    except statecodec.OldFormat:
        changes = []  # decode_stored names it
    except statecodec.StateCodecError as exc:
        raise BadViewsStore(f"{store} cannot be read: {exc}; delete it to rebuild from the log") from None
    if changes is None or changes:
        what = "keeps no shape of its state" if changes is None else f"the shape of {', '.join(changes)} has changed"
        raise OldViewsStore(f"{store} was written by another eventbatch ({what}); delete it to rebuild from the log")
    return statecodec.decode_stored(blob, store=store, old=OldViewsStore, bad=BadViewsStore)
_astuple = msgspec.structs.astuple


class ReadModelStore:
    """Use as ``async with ReadModelStore(path) as store:``.

    ``log`` is the log the store folds (a ``Projector`` sets it): reading a timeline
    reads its records from it by position."""

    def __init__(self, path: str | Path, *, durable: bool = True, log: EventLog | None = None) -> None:
        self.path = str(path)
        self.durable = durable
        self.log = log
        self._db: aiosqlite.Connection | None = None

    async def start(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        # A store that is not durable is a rebuild into a fresh file, swapped in once
        # complete and thrown away if anything fails: no journal to write twice.
        await self._db.execute(f"PRAGMA journal_mode={'WAL' if self.durable else 'OFF'}")
        await self._db.execute(f"PRAGMA synchronous={'NORMAL' if self.durable else 'OFF'}")
        await self._check_version(self._db)
        for statement in _ddl():
            await self._db.execute(statement)
        await self._db.commit()

    async def _check_version(self, db: aiosqlite.Connection) -> None:
        """Refuse a store of another layout (``OldViewsStore``); mark a new one as this layout."""
        async with db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = row[0] if row is not None else 0
        if version == SCHEMA_VERSION:
            return
        async with db.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'") as cur:
            row = await cur.fetchone()
        if version or (row is not None and row[0]):
            await db.close()
            self._db = None
            raise OldViewsStore(
                f"read-model store {self.path} was written by another eventbatch (layout {version}, this one reads"
                f" {SCHEMA_VERSION}); delete it to rebuild from the log"
            )
        await db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def stop(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> ReadModelStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("read model store is not started")
        return self._db

    # -- writing ---------------------------------------------------------------

    async def apply(
        self,
        changes: Changes,
        *,
        snapshot: bytes | None = None,
        past: tuple[int | None, bytes] | None = None,
        forget: Sequence[int] = (),
    ) -> None:
        """Write one chunk and the position it reached, in one transaction; ``past``
        (latest_at, state) keeps the fold state at ``changes.position`` in ``past_views``,
        ``forget`` removes the ones at those positions."""
        db = self.db
        await db.execute("BEGIN")
        try:
            for table, attr in _CHANGE_TABLES.items():
                rows = getattr(changes, attr)
                if rows:
                    await db.executemany(_UPSERTS[table], [_astuple(r) for r in rows])
            if changes.audit:
                await db.executemany(audit.UPSERT, audit.segments(changes.audit))
            for table, keys in changes.deleted.items():
                key = TABLES[table][1][0]
                await db.executemany(f"DELETE FROM {table} WHERE {key} = ?", [(k,) for k in keys])
            await db.executemany(
                "INSERT OR REPLACE INTO tracking (view, position) VALUES (?, ?)",
                [(view, changes.position) for view in VIEWS],
            )
            if snapshot is not None:
                await db.execute(
                    "INSERT OR REPLACE INTO snapshots (name, position, state) VALUES ('views', ?, ?)",
                    (changes.position, snapshot),
                )
            if past is not None:
                await db.execute(
                    "INSERT OR REPLACE INTO past_views (position, latest_at, state) VALUES (?, ?, ?)",
                    (changes.position, past[0], past[1]),
                )
            if forget:
                await db.executemany("DELETE FROM past_views WHERE position = ?", [(p,) for p in forget])
            await db.commit()
        except BaseException:
            await db.rollback()
            raise

    # -- reading ---------------------------------------------------------------

    async def position(self) -> int:
        """The last log position every read model has folded (-1: none yet)."""
        async with self.db.execute("SELECT MIN(position), COUNT(*) FROM tracking") as cur:
            row = await cur.fetchone()
        if row is None:  # an aggregate has its one row; said for the type checker
            return -1
        low, count = row
        return low if count == len(VIEWS) else -1

    async def snapshot(self) -> tuple[int, bytes] | None:
        async with self.db.execute("SELECT position, state FROM snapshots WHERE name = 'views'") as cur:
            row = await cur.fetchone()
        return (row[0], row[1]) if row is not None else None

    async def past_positions(self) -> list[tuple[int, int | None]]:
        """``(position, latest_at)`` of every fold state kept in ``past_views``, oldest first."""
        async with self.db.execute("SELECT position, latest_at FROM past_views ORDER BY position") as cur:
            return [tuple(row) for row in await cur.fetchall()]

    async def past_state(self, position: int) -> bytes | None:
        async with self.db.execute("SELECT state FROM past_views WHERE position = ?", (position,)) as cur:
            row = await cur.fetchone()
        return row[0] if row is not None else None

    async def snapshot_position(self) -> int | None:
        """The position of the checkpointed fold state (``snapshot``), without reading it."""
        async with self.db.execute("SELECT position FROM snapshots WHERE name = 'views'") as cur:
            row = await cur.fetchone()
        return row[0] if row is not None else None

    async def rows(self, table: str, where: str = "", params: tuple = (), order: str = "") -> list:
        """Rows of ``table`` as its row type (``where``/``order`` are SQL of this module's callers)."""
        if table == "audit_view":
            raise ValueError("read AuditView with ReadModelStore.audit()")
        row_type, key = TABLES[table]
        sql = f"SELECT {', '.join(columns(row_type))} FROM {table}"
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {order or ', '.join(key)}"
        async with self.db.execute(sql, params) as cur:
            return [row_type(*row) for row in await cur.fetchall()]

    async def _timelines(self, scope: str | None = None, name: str | None = None) -> dict[tuple[str, str], list[int]]:
        """The positions of AuditView's timelines (of one job or queue, or all), by (scope, name)."""
        where, params = [], []
        if scope is not None:
            where.append("scope = ?")
            params.append(scope)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        sql = "SELECT scope, name, entries FROM audit_view"
        if where:
            sql += " WHERE " + " AND ".join(where)
        async with self.db.execute(sql + " ORDER BY scope, name, first_position", tuple(params)) as cur:
            return audit.expand((scope, name, blob) for scope, name, blob in await cur.fetchall())

    async def _in(self, sql: str, positions: list[int]) -> list:
        """``sql`` (with ``IN ({marks})``) over ``positions``, 500 at a time."""
        out: list = []
        for start in range(0, len(positions), 500):
            batch = positions[start:start + 500]
            async with self.db.execute(sql.format(marks=", ".join("?" for _ in batch)), batch) as cur:
                out += await cur.fetchall()
        return out

    async def records(self, positions: Sequence[int]) -> dict[int, bytes]:
        """The records at ``positions`` that are still to be had: from the log where it holds
        them, from ``audit_records`` (kept by ``keep_records``) below its first position."""
        wanted = sorted(set(positions))
        if not wanted:
            return {}
        if self.log is None:
            raise RuntimeError(f"read-model store {self.path}: reading a timeline needs the log it was folded from")
        start = await self.log.start_position()
        kept = [p for p in wanted if p < start]
        out: dict[int, bytes] = dict(await self._in(
            "SELECT position, record FROM audit_records WHERE position IN ({marks})", kept))
        out.update(await audit.read_positions(self.log, (p for p in wanted if p >= start)))
        return out

    async def timeline_records(self, scope: str, name: str) -> list[tuple[int, bytes]]:
        """The records of one job's or queue's timeline, each position once, in log order
        (those no longer to be had are left out)."""
        positions = sorted(set((await self._timelines(scope, name)).get((scope, name), [])))
        found = await self.records(positions)
        return [(p, found[p]) for p in positions if p in found]

    async def audit(self, scope: str | None = None, name: str | None = None) -> list[AuditRow]:
        """AuditView rows (of one job or queue, or all), in (scope, name, position) order."""
        entries = await self._timelines(scope, name)
        found = await self.records([p for positions in entries.values() for p in positions])
        rows = timelines({key: [(p, found.get(p)) for p in positions] for key, positions in entries.items()})
        return fill_causes(rows, await self.records(triggers_wanted(rows)))

    async def keep_records(self, log: EventLog, before: int) -> int:
        """Copy into ``audit_records`` the records below ``before`` that the log still holds and
        a timeline shows: its events, and the triggers the audit describes for them (of
        decisions up to ``TRIGGER_WINDOW`` records later, so above ``before`` too). Run before
        the log below ``before`` is removed: the timelines stay readable without it. Returns
        how many were copied."""
        start = await log.start_position()
        if before <= start:
            return 0
        reach = before + TRIGGER_WINDOW
        positions: set[int] = set()
        async with self.db.execute(
            "SELECT entries FROM audit_view WHERE first_position < ? AND last_position >= ?", (reach, start)
        ) as cur:
            for (blob,) in await cur.fetchall():
                positions.update(p for p in audit.positions(blob) if start <= p < reach)
        found = await audit.read_positions(log, positions)
        keep = {p: data for p, data in found.items() if p < before}
        triggers = {t for p, data in found.items() if (t := audit.trigger_of(data)) is not None
                    and start <= t < before and p - t < TRIGGER_WINDOW and t not in keep}
        keep.update(await audit.read_positions(log, triggers))
        db = self.db
        await db.execute("BEGIN")
        try:
            await db.executemany(audit.KEEP_RECORD, sorted(keep.items()))
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
        return len(keep)

    async def all_rows(self) -> dict[str, list]:
        """Every row of every view, in key order: what two stores compare on."""
        return {table: await (self.audit() if table == "audit_view" else self.rows(table)) for table in TABLES}
