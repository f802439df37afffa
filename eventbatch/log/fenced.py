"""The log as the pipeline writes it: one claimed writer, fenced.

Where it sits: wrapped around the configured log by the composition root
(``eventbatch.app.open_pipeline``) for ``eventbatch serve``, plain or as the
leading kube replica. On start the pipeline appends ``WriterClaimed``; the
position right after it (claim + 1: 0 means "no writer") is this writer's
*epoch*. Every batch the pipeline appends
(decisions, timers, the cluster's observations) is stamped with it
(``Envelope.epoch``). When another pipeline claims the log later, every
reader skips what this one appends after that claim
(``eventbatch.log.fence``), whether it was in flight, or the process was
paused and wakes up after losing its lease. As soon as any read on this
handle passes the newer claim, ``append`` refuses (``WriterFenced``) and
``superseded`` is set, and ``serve`` exits with one line.

The claim also keeps the log's consumer positions ``writer`` (the newest
claim) and ``writer.previous`` (the one it replaced), from which a reader
that starts in the middle of the log learns where the fence stands.

On SQLite a second pipeline is stopped before it claims, by the lock beside
the log (``eventbatch.log.lockfile``); Kafka has no such lock, and the claim
is the fence.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from contextlib import aclosing

import msgspec

from eventbatch.log.fence import PREVIOUS, WRITER, fence_stats
from eventbatch.log.lockfile import WriterLock
from eventbatch.log.port import EventLog
from eventbatch.log.wrapper import LogWrapper
from schemas.envelope import Envelope
from schemas.events import WriterClaimed


class WriterFenced(RuntimeError):
    """Another pipeline claimed the log after this one: this one must not append."""

    def __init__(self, claim: int) -> None:
        super().__init__(f"another serve claimed this log at #{claim}; this one stops")
        self.claim = claim


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class FencedLog(LogWrapper):
    def __init__(self, inner: EventLog, *, identity: str | None = None, lock: WriterLock | None = None) -> None:
        super().__init__(inner)
        self.identity = identity or default_identity()
        self.lock = lock
        self.claimed_at = -1  # the position of this writer's WriterClaimed
        self.epoch = 0  # claimed_at + 1, stamped on every record appended
        self.fence = fence_stats(inner)
        self.superseded_by: int | None = None
        self._superseded = asyncio.Event()

    # -- the claim ----------------------------------------------------------

    async def claim(self, recorded_at: int) -> int:
        """Append ``WriterClaimed`` (the inner log is started); returns the epoch (its position + 1)."""
        replaced = await self.inner.get_consumer_position(WRITER)
        [self.claimed_at] = await self.inner.append(
            [Envelope.wrap(WriterClaimed(identity=self.identity), recorded_at=recorded_at)]
        )
        self.epoch = self.claimed_at + 1
        self.fence.on_claim(self._claim_seen)
        # A claim that landed before this one's (two pipelines starting at once) has lost
        # to it; one that landed after it wins, and the read below finds it.
        async with aclosing(self.inner.read_records(self.claimed_at)) as chunks:
            async for _ in chunks:
                pass
        if self.superseded_by is not None:
            raise WriterFenced(self.superseded_by)
        if replaced is not None and replaced < self.claimed_at:
            await self.inner.set_consumer_position(PREVIOUS, replaced)
        await self.inner.set_consumer_position(WRITER, self.claimed_at)
        return self.epoch

    def _claim_seen(self, position: int) -> None:
        if self.epoch and position >= self.epoch and self.superseded_by is None:
            self.superseded_by = position
            self._superseded.set()

    async def superseded(self, *, watch: bool = True) -> int:
        """Wait until a read on this log passes a newer claim; returns its position.

        With ``watch``, reads the log from this writer's claim on while it waits (records
        are only looked at by the fence, not decoded), so a claim is seen even while the
        pipeline's own readers are busy or idle. Without, the reads the caller makes
        anyway do it (``serve``: its shared reader follows the log to the tail)."""
        watcher = asyncio.ensure_future(self._watch()) if watch else None
        try:
            await self._superseded.wait()
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
        assert self.superseded_by is not None
        return self.superseded_by

    async def _watch(self) -> None:
        async with aclosing(self.inner.read_records(self.epoch, follow=True)) as chunks:
            async for _ in chunks:
                if self.superseded_by is not None:
                    return

    # -- the port -------------------------------------------------------------

    async def stop(self) -> None:
        try:
            await self.inner.stop()
        finally:
            if self.lock is not None:
                self.lock.release()

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        if self.superseded_by is not None:
            raise WriterFenced(self.superseded_by)
        if not self.epoch:
            raise RuntimeError("the pipeline's log appends only after its claim")
        epoch = self.epoch
        return await self.inner.append([msgspec.structs.replace(e, epoch=epoch) for e in batch])
