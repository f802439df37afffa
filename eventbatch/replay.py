"""Replay: rebuild the read models from position 0, or fold the log to a past moment.

Where it sits: behind ``eventbatch replay``. ``rebuild`` projects the whole
log into a fresh SQLite file next to the target and swaps it in only when it
is complete, so readers never see a half-built store. ``state_at`` folds the
log prefix up to a position (``--to``) or up to the last event recorded at
or before a time (``--at``) into a ``ViewSet`` in memory, without touching
any store. ``parse_time`` reads the times a user types.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import aclosing
from datetime import datetime, timezone
from pathlib import Path

from eventbatch.log.port import EventLog
from eventbatch.readmodels import Projector, ReadModelStore
from eventbatch.readmodels.projector import fold_chunk
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
            moment = moment.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    try:
        return duration_ms(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use an RFC 3339 time, milliseconds, or a duration like 10m") from None


async def rebuild(
    log: EventLog,
    path: str | Path,
    *,
    chunk: int = 5_000,
    snapshot_every: int | None = 100_000,
    on_progress: Callable[[int], None] | None = None,
) -> Projector:
    """Every read model from position 0 into a fresh database at ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = target.with_name(target.name + ".rebuild")
    _remove(fresh)
    async with ReadModelStore(fresh, durable=False) as store:
        projector = Projector(log=log, store=store, chunk=chunk, snapshot_every=snapshot_every, on_progress=on_progress)
        await projector.catch_up()
        await projector.checkpoint()
    _remove(target)
    os.replace(fresh, target)
    return projector


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


async def state_at(
    log: EventLog,
    *,
    to: int | None = None,
    at: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ViewSet:
    """The views after event ``to`` (included), or as the log stood at time ``at``.

    At time ``at`` the log held every event up to the first one recorded
    later than ``at``: decisions carry their trigger's time, so a later
    position can carry an earlier time, but it was appended after ``at``.
    """
    views = ViewSet()
    end = await log.end_position()
    last = end - 1 if to is None else min(to, end - 1)
    if last < 0:
        return views
    async with aclosing(log.read_records(0)) as chunks:
        async for chunk in chunks:
            cut = len(chunk)
            for index, (position, data) in enumerate(chunk):
                record = wire.decode(data) if at is not None else None
                if position > last or (record is not None and record.recorded_at > at):
                    cut = index
                    break
            await fold_chunk(log, views, chunk[:cut])
            if on_progress is not None:
                on_progress(views.position + 1)
            if cut < len(chunk) or views.position >= last:
                break
    return views
