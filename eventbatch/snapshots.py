"""Snapshots: checkpointed handler state, so a restart is snapshot + tail.

Where it sits: beside the log. A ``HandlerRunner`` given a ``SnapshotStore``
saves ``(next position, state, last answered trigger)`` every N events and on
``checkpoint()``, and on start loads it and reads only the tail: its prescan
of its own answers starts at the snapshot position too, because every answer
to a trigger before it is already folded into the saved state. (The read
models checkpoint their fold state in their own store, in the same
transaction as their rows: ``eventbatch.readmodels``.)

While ``serve`` follows the log, a state that took over ``APART_MS`` to encode has its next
snapshots encoded by a forked copy of the process (``SnapshotStore.save_apart``), so encoding
a large state never holds the event loop; ``docs/projections.md`` says what stays guaranteed.

Snapshots are also what keeps a long-lived log bounded (``docs/projections.md``):
once every consumer has a snapshot past position P and finished jobs are
compacted into the read models' history, the log before P is no longer
needed to restart, audit or rebuild the live state.

The store is one SQLite file, named by a path or an ``sqlite://`` URL
(``EVENTBATCH_SNAPSHOTS``, ``--snapshots``). It is created when missing, in
a directory that must exist; a path holding anything but a snapshot store is
refused before it is opened (``eventbatch.sqlitefile``).

The state is kept with ``eventbatch.statecodec`` (msgpack naming only this
project's record classes), never pickled: a planted file can at worst hold
wrong state, never run code. A store written by an older eventbatch (which
pickled) is refused at its first snapshot with one line saying so
(``OldSnapshotStore``); it is not read, and deleting it makes every component
rebuild its state from the log.

A snapshot is used only by code whose state has the shape it was saved
with (``statecodec.shape_changes``: the same record classes with the same
attributes, the same enums): when a class a state holds gains, loses or
renames an attribute, the next start does not load the snapshot. ``load``
says why in one WARNING line and returns None, and the component folds the
log from the start instead, which is always correct (its exactly-once rules
read the log, not the snapshot); its next snapshot replaces the old one. A
snapshot saved before shapes were kept counts as changed. ``positions``
(what ``compact`` reads) refuses such a snapshot (``UnusableSnapshot``):
the log it covers is still needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import select
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from eventbatch import statecodec
from eventbatch.log.errors import LogOpenError
from eventbatch.sqlitefile import SNAPSHOTS, require

log = logging.getLogger(__name__)


class OldSnapshotStore(LogOpenError):
    """A snapshot written by an older eventbatch (a pickle): refused, never read."""


class BadSnapshot(LogOpenError):
    """A snapshot this eventbatch cannot restore (not its format, or a class it does not have)."""


class StateCodecFailed(RuntimeError):
    """A snapshot encoded apart (``SnapshotStore.save_apart``) that its child could not encode."""


class UnusableSnapshot(LogOpenError):
    """A snapshot saved by code whose state had another shape: the log it covers is still needed."""


@dataclass(frozen=True)
class ComponentSnapshot:
    """A component's folded state saved with the next log position it reads (the glossary's
    *snapshot*; not the scheduler's per-session ``handlers.scheduler.snapshot.Snapshot``)."""

    name: str
    position: int  # the next log position to read after loading
    state: Any
    last_answered: int = -1


SPACING_BYTES = 2**19
"""A component's state up to this size is snapshotted every ``snapshot_every`` events; a larger
one after ``snapshot_every`` x (its size / ``SPACING_BYTES``) events (``interval_after``)."""


def interval_after(every: int, size: int) -> int:
    """Events to fold before the next snapshot, after one of ``size`` bytes.

    Encoding a state costs time in proportion to its size, and a state holds every object
    not yet removed (a job that completed stays until it is deleted), so at a fixed interval
    the cost of snapshots per event would grow with that history. Spaced by size, it stays
    what it is for a state of ``SPACING_BYTES``; a restart then reads a tail in proportion to
    the state it loads. A state up to ``SPACING_BYTES`` keeps the interval ``every`` exactly."""
    return every if size <= SPACING_BYTES else every * size // SPACING_BYTES


APART_MS = 10.0
"""While ``serve`` follows the log, a component whose latest snapshot took longer than this to
encode here has the next ones encoded apart (``SnapshotStore.save_apart``): encoding a large
state takes tens to hundreds of milliseconds, during which nothing else on the event loop
runs, while the fork that encodes it apart holds the loop about 5 ms. The time, not the
size, decides: states of the same size encode 10-50 times faster or slower by what they
hold (``encode_ms``)."""


def apart_possible() -> bool:
    """Whether this platform can encode a snapshot apart (a forked child: Linux)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def _fork_dumps(snapshot: ComponentSnapshot) -> tuple[int, int]:
    """Fork now; the child writes ``dumps(snapshot)`` to a pipe and exits. Returns (pid, the
    pipe's read end). The child is a copy of this process at this instant, so what it encodes
    is the state as it is now, whatever this process folds meanwhile; it touches nothing but
    the pipe (no log, no store, no event loop) and leaves by ``os._exit``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
        code = 1
        try:
            gc.disable()  # no finalizer of the parent's objects (connections, tasks) runs here
            os.close(read_end)
            view = memoryview(dumps(snapshot))
            while view:
                view = view[os.write(write_end, view):]
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


APART_DEADLINE_S = 120.0
"""The longest a forked encoder may take (a state of hundreds of MB encodes in seconds): past it,
it is killed and the snapshot counts as failed, so a stuck child can never hold up a checkpoint."""


def _collect(pid: int, read_end: int, deadline_s: float = APART_DEADLINE_S) -> bytes | None:
    """What the child wrote, once it exited; None if it failed (it could not encode the state)
    or was still at it after ``deadline_s`` (then it is killed)."""
    parts: list[bytes] | None = []
    ends = time.monotonic() + deadline_s
    try:
        while True:
            left = ends - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                parts = None
                break
            part = os.read(read_end, 1 << 20)
            if not part:
                break
            assert parts is not None
            parts.append(part)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    return b"".join(parts) if parts is not None and os.waitstatus_to_exitcode(status) == 0 else None


def when_saved_apart(name: str, saved: Callable[[int], None], **extra: Any) -> Callable[[asyncio.Task[int]], None]:
    """The done callback of a ``save_apart`` task: ``saved(size)`` once it is stored, one WARNING
    line naming ``name`` if it failed (``extra`` goes to the log record), nothing if cancelled."""

    def done(task: asyncio.Task[int]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.warning("snapshot of %s not saved: %s", name, error, extra=extra or None)
            return
        saved(task.result())

    return done


def dumps(snapshot: ComponentSnapshot) -> bytes:
    return statecodec.encode([snapshot.name, snapshot.position, snapshot.state, snapshot.last_answered])


def loads(blob: bytes, *, where: str = "the snapshot store") -> ComponentSnapshot:
    """The snapshot ``dumps`` wrote; ``OldSnapshotStore`` / ``BadSnapshot`` (one line, naming ``where``)."""
    fields = statecodec.decode_stored(blob, store=f"snapshot store {where}", old=OldSnapshotStore, bad=BadSnapshot)
    if (
        type(fields) is not list or len(fields) != 4 or type(fields[0]) is not str
        or type(fields[1]) is not int or type(fields[3]) is not int
    ):
        raise BadSnapshot(f"snapshot store {where} holds something that is not a snapshot; delete it to rebuild from the log")
    name, position, state, last_answered = fields
    return ComponentSnapshot(name, position, state, last_answered)


def unfit(blob: bytes, *, where: str = "the snapshot store") -> str | None:
    """Why this code cannot use the snapshot in ``blob`` (its state's shape differs), or None.

    ``OldSnapshotStore`` / ``BadSnapshot`` as ``loads`` for bytes that are no snapshot at all.
    """
    try:
        changed = statecodec.shape_changes(blob)
    except statecodec.OldFormat:
        raise OldSnapshotStore(f"snapshot store {where} was written by an older eventbatch; delete it to rebuild from the log") from None
    except statecodec.StateCodecError as exc:
        raise BadSnapshot(f"snapshot store {where} cannot be read: {exc}; delete it to rebuild from the log") from None
    if changed is None:
        return "it was saved by an older eventbatch, which did not record the shape of its state"
    if changed:
        named = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        return f"the shape of its state has changed since it was saved ({named})"
    return None


def store_path(value: str | Path) -> str:
    """The file of a snapshot store given as a path or as ``sqlite:///ABS`` / ``sqlite://REL``.

    ``ValueError`` for another scheme or URL options: the store is always one SQLite file.
    """
    text = str(value)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    if scheme != "sqlite":
        raise ValueError(f"snapshot store {text!r}: the store is an SQLite file (a path or sqlite:///PATH), not {scheme}://")
    if "?" in rest:
        raise ValueError(f"snapshot store {text!r}: takes no options")
    if not rest.strip("/"):
        raise ValueError(f"snapshot store {text!r} names no file (expected sqlite:///PATH)")
    return "/" + rest.lstrip("/") if rest.startswith("/") else rest


class SnapshotStore:
    """Named snapshots in one SQLite file; ``async with SnapshotStore(path)``."""

    def __init__(self, path: str | Path) -> None:
        self.path = store_path(path)
        self._db: aiosqlite.Connection | None = None
        self.encode_ms: dict[str, float] = {}  # name -> how long its latest ``save`` took to encode

    async def start(self) -> None:
        if self.path != ":memory:":
            require(self.path, SNAPSHOTS, must_exist=False)
        try:
            self._db = await aiosqlite.connect(self.path)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute(
                "CREATE TABLE IF NOT EXISTS snapshots "
                "(name TEXT PRIMARY KEY, position INTEGER NOT NULL, data BLOB NOT NULL)"
            )
            await self._db.commit()
        except BaseException as exc:
            await self.stop()  # an open connection's thread would keep the process alive
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise LogOpenError(f"cannot open the snapshot store {self.path}: {exc}") from exc
            raise

    async def stop(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> SnapshotStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def save(self, snapshot: ComponentSnapshot) -> int:
        """Keep ``snapshot`` (replacing the component's previous one); returns its size in bytes."""
        started = time.perf_counter()
        blob = dumps(snapshot)
        self.encode_ms[snapshot.name] = (time.perf_counter() - started) * 1000
        return await self._write(snapshot, blob)

    def slow_to_encode(self, name: str) -> bool:
        """Whether ``name``'s latest snapshot encoded here took over ``APART_MS``."""
        return self.encode_ms.get(name, 0.0) > APART_MS

    def save_apart(self, snapshot: ComponentSnapshot) -> asyncio.Task[int]:
        """Keep ``snapshot`` as ``save`` does, but encoded by a forked copy of this process
        (``apart_possible``), which is made before this returns: the snapshot is the state as
        it is at this call, and the caller may go on folding into it at once. The returned task
        stores the blob and gives its size; the event loop is never held by the encoding, only
        by the fork (a few milliseconds for a large process). If the child fails (a state the
        codec refuses), the task raises ``StateCodecFailed`` and nothing is stored."""
        assert self._db is not None, "snapshot store is not started"
        pid, read_end = _fork_dumps(snapshot)
        return asyncio.ensure_future(self._finish_apart(snapshot, pid, read_end))

    async def _finish_apart(self, snapshot: ComponentSnapshot, pid: int, read_end: int) -> int:
        blob = await asyncio.to_thread(_collect, pid, read_end)
        if blob is None:
            self.encode_ms.pop(snapshot.name, None)  # the next one is encoded here, raising what the codec refuses
            raise StateCodecFailed(f"snapshot {snapshot.name} (#{snapshot.position}) could not be encoded apart")
        return await self._write(snapshot, blob)

    async def _write(self, snapshot: ComponentSnapshot, blob: bytes) -> int:
        assert self._db is not None, "snapshot store is not started"
        await self._db.execute(
            "INSERT OR REPLACE INTO snapshots (name, position, data) VALUES (?, ?, ?)",
            (snapshot.name, snapshot.position, blob),
        )
        await self._db.commit()
        return len(blob)

    async def load(self, name: str, *, keys: Iterable[str] | None = None) -> ComponentSnapshot | None:
        """The snapshot saved as ``name``, or None: none saved, or one this code cannot use
        (``unfit``; also, with ``keys``, a state that is not a dict of exactly those keys),
        which one WARNING line names: the caller then folds the log from the start."""
        assert self._db is not None, "snapshot store is not started"
        async with self._db.execute("SELECT position, data FROM snapshots WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        position, blob = row
        why = unfit(blob, where=self.path)
        snapshot = loads(blob, where=self.path) if why is None else None
        if snapshot is not None and keys is not None:
            wanted = sorted(keys)
            if type(snapshot.state) is not dict or sorted(snapshot.state) != wanted:
                held = sorted(snapshot.state) if type(snapshot.state) is dict else type(snapshot.state).__name__
                why, snapshot = f"it holds {held}, this eventbatch keeps {wanted}", None
        if snapshot is None:
            log.warning(
                "snapshot %s (#%d) in %s not used: %s; %s folds its state from the log instead",
                name, position, self.path, why, name,
            )
        return snapshot

    async def positions(self) -> dict[str, int]:
        """Each snapshot's position: the log before the lowest one is not needed to restart.

        ``OldSnapshotStore`` / ``BadSnapshot`` if a snapshot is not in this eventbatch's format
        (its header only is looked at): ``compact`` must not cut the log for a state that
        cannot be loaded. ``UnusableSnapshot`` for one this code would not load (``unfit``):
        its component folds from the start of the log, so none of the log may go.
        """
        assert self._db is not None, "snapshot store is not started"
        # A snapshot no one can load holds nothing back: refuse rather than let the log go.
        async with self._db.execute(
            "SELECT name, substr(data, 1, ?) FROM snapshots WHERE substr(data, 1, ?) != ? ORDER BY name",
            (len(statecodec.MAGIC), len(statecodec.MAGIC), statecodec.MAGIC),
        ) as cur:
            foreign = await cur.fetchone()
        if foreign is not None:
            loads(foreign[1], where=self.path)  # raises, saying what it is
        positions: dict[str, int] = {}
        async with self._db.execute("SELECT name, position, data FROM snapshots ORDER BY name") as cur:
            async for name, position, blob in cur:
                why = unfit(blob, where=self.path)
                if why is not None:
                    raise UnusableSnapshot(
                        f"snapshot {name} (#{position}) in {self.path} cannot be used by this eventbatch: {why}; "
                        f"{name} needs the log from the start until serve saves a new snapshot of it"
                    )
                positions[name] = position
        return positions


async def retention_needs(
    *, snapshots: SnapshotStore, handlers: list[str], views_position: int | None, with_views: bool = True
) -> dict[str, int]:
    """The first log position each component still needs to restart.

    ``handlers`` names every component that reads the log (handlers, timers,
    cluster reactors, the scheduling trigger); one without a snapshot needs
    the log from 0. ``views_position`` is the position of the read models' own
    snapshot (the next position they read is one past it), None if they have
    none; ``with_views=False`` leaves the read models out.
    """
    positions = await snapshots.positions()
    needs = {name: positions.get(name, 0) for name in handlers}
    if with_views:
        needs["read models"] = 0 if views_position is None else views_position + 1
    return needs


async def retention_horizon(**kwargs) -> int:
    """The first log position still needed to restart every component (``retention_needs``).

    Below the horizon, the log may go: finished jobs live on in AuditView and
    the job history, and ``replay --verify`` checks the tail from the snapshots.
    """
    return min((await retention_needs(**kwargs)).values(), default=0)
