"""``Projector``: folds the log into the read models, in chunks, resumably.

Where it sits: between the log and ``ReadModelStore``. It reads from the
position the store tracks, folds up to ``chunk`` events into a
``projections.views.ViewSet`` in memory, then writes only the final value of
each touched row, with the position, in one transaction. Every
``snapshot_every`` events (and on ``checkpoint()``) the fold state goes into
the same transaction, so a restart loads the snapshot and folds only the
tail: the rows between the snapshot and the tracked position are written
again with the same values.

It also keeps the fold state of the past, for ``replay --to/--at``: once
``past_every`` events (default 50,000; more for a large state: one event per
256 bytes of the last state kept, ``kept_bytes_per_event``) have been folded since the newest
one kept, the state goes into ``past_views`` with the chunk. At most
``past_keep`` (default 32) are kept: past that, the one whose removal leaves
the smallest gap between its neighbours goes (``thin``), never the newest, so
they stay spread over the whole log.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass

from eventbatch.log.port import Chunk, EventLog
from eventbatch.readmodels.store import BadViewsStore, ReadModelStore, decode_state, encode_state
from projections.views import ViewSet

PAST_EVERY = 50_000  # events folded between two fold states kept for time travel, at least
PAST_KEEP = 32  # fold states kept for time travel, at most
KEPT_BYTES_PER_EVENT = 256
"""A fold state (for time travel, or the snapshot a restart loads) is kept again only once
as many events have been folded as its last copy's size / this: keeping one costs time in
proportion to its size (the live objects: every job the read models still show), and so,
spread over the events between two copies, about 7 us per event however large it is (a
quarter of folding one), where a fixed interval would cost in proportion to the state's size.
The price: time travel may read up to size / 256 events after the state it starts from."""


class ViewsAhead(RuntimeError):
    """The store has folded more than the log holds: it belongs to another log."""


@dataclass
class ProjectorStats:
    folded: int = 0
    chunks: int = 0
    snapshots: int = 0
    resumed_from: int = -1  # the snapshot position a restart loaded, -1 if none
    seconds: float = 0.0


def dump_views(views: ViewSet) -> bytes:
    return encode_state(views)


def dump_past(views: ViewSet) -> bytes:
    """The fold state as time travel needs it (the same as a snapshot's)."""
    return encode_state(views)


def thin(positions: list[int], keep: int) -> list[int]:
    """The positions to forget so that at most ``keep`` remain: each time, the one whose
    neighbours are closest together (the oldest of equals), never the newest."""
    left = sorted(positions)
    gone: list[int] = []
    while len(left) > max(keep, 1):
        gaps = [left[i + 1] - (left[i - 1] if i else -1) for i in range(len(left) - 1)]
        gone.append(left.pop(gaps.index(min(gaps))))
    return gone


def load_views(blob: bytes, where: str = "the read-model store") -> ViewSet:
    views = decode_state(blob, where=where)  # never a pickle: eventbatch.statecodec
    if not isinstance(views, ViewSet):
        raise BadViewsStore(f"read-model store {where} holds no read models; delete it to rebuild from the log")
    return views


class Projector:
    def __init__(
        self,
        *,
        log: EventLog,
        store: ReadModelStore,
        chunk: int = 5_000,
        snapshot_every: int | None = 100_000,
        past_every: int | None = PAST_EVERY,
        past_keep: int = PAST_KEEP,
        kept_bytes_per_event: int | None = KEPT_BYTES_PER_EVENT,
        on_progress: Callable[[int], None] | None = None,
        read: Callable[[int, int], AsyncGenerator[Chunk, None]] | None = None,
    ) -> None:
        self.log = log
        # ``catch_up``'s read, ``read(from_position, end)``: the log's own (None), or another that hands on
        # the same records (``eventbatch.log.bulk_read`` for a rebuild of an SQLite log)
        self.read = read
        self.store = store
        if store.log is None:
            store.log = log  # timelines are read from the log the store folds
        self.chunk = chunk
        self.snapshot_every = snapshot_every
        self.past_every = past_every
        self.past_keep = past_keep
        self.kept_bytes_per_event = kept_bytes_per_event  # None: keep at the fixed intervals whatever the size
        self._past: list[int] | None = None  # positions kept in past_views
        self._past_bytes = 0  # the size of the newest fold state kept for time travel (0: none this run)
        self._snapshot_bytes = 0  # the size of the newest snapshot written (0: none this run)
        self.on_progress = on_progress
        self.views: ViewSet | None = None
        self.stats = ProjectorStats()
        self._since_snapshot = 0

    async def _load(self) -> ViewSet:
        if self.views is None:
            saved = await self.store.snapshot()
            if saved is not None:
                self.views = load_views(saved[1], self.store.path)
                self.stats.resumed_from = saved[0]
            else:
                self.views = ViewSet()
        if self._past is None:
            self._past = [position for position, _ in await self.store.past_positions()]
        return self.views

    def _keep_past(self, views: ViewSet) -> tuple[tuple[int | None, bytes] | None, list[int]]:
        """What ``apply`` keeps and forgets in ``past_views`` after a chunk ending at ``views.position``."""
        past = self._past
        if self.past_every is None or past is None or views.position < 0:
            return None, []
        if views.position - (past[-1] if past else -1) < self._spacing(self.past_every, self._past_bytes):
            return None, []
        latest = views.latest_at
        past.append(views.position)
        gone = thin(past, self.past_keep)
        self._past = [p for p in past if p not in gone]
        blob = dump_past(views)
        self._past_bytes = len(blob)
        return (latest, blob), gone

    def _spacing(self, every: int, kept_bytes: int) -> int:
        """Events to fold before a fold state is kept again: ``every``, or more for a large state."""
        per_event = self.kept_bytes_per_event
        return every if per_event is None else max(every, kept_bytes // per_event)

    @property
    def position(self) -> int:
        return self.views.position if self.views is not None else -1

    async def catch_up(self, to: int | None = None) -> int:
        """Fold every event up to the tail (or to position ``to`` excluded); returns the next position."""
        views = await self._load()
        started = time.perf_counter()
        end = await self.log.end_position() if to is None else to
        if to is None and views.position >= end:
            raise ViewsAhead(
                f"the read models have folded up to #{views.position} but the log ends at #{end - 1}: "
                "they were built from another log; rebuild them with `eventbatch replay`"
            )
        pending = 0
        if views.position + 1 < end:
            start = views.position + 1
            reading = self.log.read_records(start) if self.read is None else self.read(start, end)
            async with aclosing(reading) as chunks:
                async for chunk in chunks:
                    if chunk[-1][0] >= end:
                        chunk = [item for item in chunk if item[0] < end]
                    pending += await self._fold(views, chunk)
                    if pending >= self.chunk:
                        await self._write(views, pending)
                        pending = 0
                    if not chunk or chunk[-1][0] + 1 >= end:
                        break
        if pending or views.position + 1 < end:
            views.position = max(views.position, end - 1)  # unknown/quarantined records at the tail
            await self._write(views, pending)
        self.stats.seconds += time.perf_counter() - started
        return views.position + 1

    async def _write(self, views: ViewSet, count: int) -> None:
        self.stats.folded += count
        self.stats.chunks += 1
        self._since_snapshot += count
        changes = views.flush()
        snapshot = None
        if self.snapshot_every is not None and self._since_snapshot >= self._spacing(self.snapshot_every, self._snapshot_bytes):
            snapshot = dump_views(views)
            self._snapshot_bytes = len(snapshot)
            self._since_snapshot = 0
            self.stats.snapshots += 1
        past, forget = self._keep_past(views)
        # Written before the next chunk is folded: a write running in its own
        # thread beside the fold only fights it for the GIL.
        await self.store.apply(changes, snapshot=snapshot, past=past, forget=forget)
        if self.on_progress is not None:
            self.on_progress(changes.position + 1)

    async def checkpoint(self) -> int:
        """Write pending rows and a snapshot of the fold state now; returns its position."""
        views = await self._load()
        changes = views.flush()
        past, forget = self._keep_past(views)
        await self.store.apply(changes, snapshot=dump_views(views), past=past, forget=forget)
        self.stats.snapshots += 1
        self._since_snapshot = 0
        return views.position

    async def run(self) -> None:
        """Follow the tail, writing a chunk when it is full or the log goes quiet."""
        views = await self._load()
        pending = 0
        known_end = 0  # the log's end as last asked; asked again only when reached
        async with aclosing(self.log.read_records(views.position + 1, follow=True)) as chunks:
            async for chunk in chunks:
                pending += await self._fold(views, chunk)
                at_tail = chunk[-1][0] + 1 >= known_end and (
                    chunk[-1][0] + 1 >= (known_end := await self.log.end_position())
                )
                if pending >= self.chunk or at_tail:
                    await self._write(views, pending)
                    pending = 0

    async def _fold(self, views: ViewSet, chunk: list[tuple[int, bytes]]) -> int:
        await fold_chunk(self.log, views, chunk)
        return len(chunk)


async def fold_chunk(log: EventLog, views: ViewSet, chunk: list[tuple[int, bytes]]) -> None:
    """Fold a chunk of records; those the views cannot read are counted or quarantined by the log."""
    for position, data in views.fold_records(chunk):
        envelope = await log.unreadable(position, data)
        if envelope is not None:  # pragma: no cover - the views read whatever the codec reads
            views.fold(envelope, data)
