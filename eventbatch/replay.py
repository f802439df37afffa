"""Replay: rebuild the read models from position 0, or fold the log to a past moment.

Where it sits: behind ``eventbatch replay``. ``rebuild`` projects the whole
log into a fresh SQLite file next to the target and swaps it in only when it
is complete, so readers never see a half-built store. ``state_at`` folds the
log up to a position (``--to``) or up to the last event recorded at or before
a time (``--at``) into a ``ViewSet`` in memory: it starts from the nearest
fold state the read-model store keeps at or below that moment (``past_views``
or its checkpoint; position 0 without one) and reads only the log after it.
It writes nothing and keeps no timeline or history, so its memory follows the
live objects, not the distance folded. ``parse_time`` reads the times a user
types.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from eventbatch.log import bulk_read
from eventbatch.log.port import EventLog
from eventbatch.readmodels import Projector, ReadModelStore
from eventbatch.readmodels.projector import fold_chunk, load_views
from projections.views import ViewSet, wire
from schemas.quantity import duration_ms


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from ``2026-11-28T10:00:00Z``, ``1764324000000``
    (ms) or a duration such as ``10m`` (time since the epoch: simulations start at 0)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    try:
        return duration_ms(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use an RFC 3339 time, milliseconds, or a duration like 10m") from None


async def rebuild(
    log: EventLog,
    path: str | Path,
    *,
    chunk: int = 20_000,
    snapshot_every: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    bulk: bool = True,
) -> Projector:
    """Every read model from position 0 into a fresh database at ``path``.

    An SQLite log is read in bulk (``eventbatch.log.bulk_read``: one read-only
    snapshot, large chunks, the same fence; ``bulk=False``: through the log's
    own read, as any other backend is), with the same result: its chunks end
    where the projector writes, so the fold states kept for time travel are
    at the same positions too.

    The file is thrown away unless the rebuild completes, so the checkpoint at
    the end is its only fold snapshot (the fold states kept for time travel,
    one every ``PAST_EVERY`` events, are written as it goes); chunks are
    larger than a live projector's, so each row is written fewer times."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = target.with_name(target.name + ".rebuild")
    _remove(fresh)
    async with ReadModelStore(fresh, durable=False) as store:
        projector = Projector(log=log, store=store, chunk=chunk, snapshot_every=snapshot_every, on_progress=on_progress,
                              read=bulk_read.reader_for(log, chunk) if bulk else None)
        with fewer_collections():
            await projector.catch_up()
            await projector.checkpoint()
    _remove(target)
    os.replace(fresh, target)
    return projector


# The young generation's threshold while a rebuild folds: the fold makes a few short-lived
# objects per record (the decoded record, the timelines' entries), and the collector,
# run every 700 of them by default, took about a seventh of the fold's time.
YOUNG_THRESHOLD = 10_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector's young generation less often for a while; the
    thresholds before are restored after (garbage is still collected, in larger batches)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], YOUNG_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


@dataclass
class Travel:
    """Where ``state_at`` started: the fold state it loaded (-1: none, position 0) and
    how many records it then read from the log."""

    snapshot: int = -1
    read: int = 0


async def start_of(store: ReadModelStore | None, end: int, last: int, at: int | None) -> tuple[int, bytes | None]:
    """The nearest fold state ``store`` keeps at or below ``last`` (and, for a time ``at``,
    folded from no event recorded after ``at``): its position and blob, or (-1, None).
    A store that has folded more than the log holds belongs to another log: not used."""
    if store is None or await store.position() >= end:
        return -1, None
    best = -1
    for position, latest_at in await store.past_positions():
        if position <= last and (at is None or (latest_at is not None and latest_at <= at)):
            best = position
    checkpoint = await store.snapshot_position()
    if at is None and checkpoint is not None and best < checkpoint <= last:
        saved = await store.snapshot()
        if saved is not None and saved[0] == checkpoint:
            return checkpoint, saved[1]
    if best < 0:
        return -1, None
    return best, await store.past_state(best)


async def state_at(
    log: EventLog,
    *,
    to: int | None = None,
    at: int | None = None,
    store: ReadModelStore | None = None,
    on_progress: Callable[[int], None] | None = None,
    travel: Travel | None = None,
) -> ViewSet:
    """The views after event ``to`` (included), or as the log stood at time ``at``.

    At time ``at`` the log held every event up to the first one recorded
    later than ``at``: decisions carry their trigger's time, so a later
    position can carry an earlier time, but it was appended after ``at``.
    ``store`` (the read models of this log, or None) gives the fold state to
    start from; ``travel`` is filled with where it started and what it read.
    """
    travel = travel if travel is not None else Travel()
    views = ViewSet(timelines=False)
    end = await log.end_position()
    last = end - 1 if to is None else min(to, end - 1)
    if last < 0:
        return views
    travel.snapshot, blob = await start_of(store, end, last, at)
    if blob is not None and store is not None:  # a blob comes only from a store
        views = load_views(blob, store.path)
        views.timelines = False
    if views.position >= last:
        return views
    async with aclosing(log.read_records(views.position + 1)) as chunks:
        async for chunk in chunks:
            travel.read += len(chunk)
            cut = len(chunk) if chunk[-1][0] <= last else next(i for i, (p, _) in enumerate(chunk) if p > last)
            if at is not None:
                for index in range(cut):
                    record = wire.decode(chunk[index][1])
                    if record is not None and record.recorded_at > at:
                        cut = index
                        break
            await fold_chunk(log, views, chunk[:cut] if cut < len(chunk) else chunk)
            views.drop_changes()
            if on_progress is not None:
                on_progress(views.position + 1)
            if cut < len(chunk) or views.position >= last:
                break
    return views
