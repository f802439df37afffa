"""Following the log with snapshots: timers, the simulated kubelet, the trigger.

Where it sits: the base of ``eventbatch.reactor.Reactor`` and
``eventbatch.triggers.SchedulingTrigger``, which fold every event
(``observe``) as they catch up with the log or follow it. Like a ``HandlerRunner``, a component
given a ``SnapshotStore`` saves its folded state (the attributes its ``STATE``
names) with the next position it will read, every ``snapshot_every`` events;
a restart loads it and reads only the tail. With every component snapshotted,
the log before the lowest snapshot is not needed to restart ``serve``, and
``eventbatch compact`` may remove it. A component whose state cannot be kept
(``STATE = None``, e.g. the Kubernetes adapter, which holds live API state)
holds the horizon at 0.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing

from eventbatch.follow import follow_chunks, read_to_tail
from eventbatch.log.port import EventLog
from eventbatch.snapshots import ComponentSnapshot, SnapshotStore, apart_possible, interval_after, when_saved_apart
from schemas.envelope import Envelope

log = logging.getLogger(__name__)


class CheckpointedFollower:
    name: str
    log: EventLog
    next_position: int
    # The attributes that make up the folded state, or None: no snapshot.
    STATE: tuple[str, ...] | None = None
    snapshots: SnapshotStore | None = None
    snapshot_every: int | None = None
    _since_snapshot: int = 0
    _snapshot_interval: int = 0  # events between snapshots, once one was saved (``interval_after``)
    _restored: bool = False
    _saving: asyncio.Task[int] | None = None  # a snapshot being encoded apart (``_snapshot_due``)

    def observe(self, envelope: Envelope) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    async def catch_up(self) -> int:
        if not self._restored:
            await self.restore()
        before = self.next_position
        self.next_position = await read_to_tail(self.log, self.next_position, self.observe)
        if self.snapshot_every is not None:
            await self.folded(self.next_position - before)
        return self.next_position

    async def _follow(self) -> None:
        """Fold the log as it grows (``run``). A snapshot due here, of a state whose latest
        snapshot took over ``APART_MS`` to encode, is encoded apart (``SnapshotStore.save_apart``)."""
        apart = self.snapshots if apart_possible() else None  # the store that may encode apart
        async with aclosing(follow_chunks(self.log, self.next_position)) as chunks:
            async for chunk in chunks:
                every = self.snapshot_every if self.snapshots is not None and self.STATE is not None else None
                for envelope in chunk:
                    self.observe(envelope)
                    if every is not None:  # counted here: a coroutine only when a snapshot is due
                        self._since_snapshot += 1
                        if self._since_snapshot >= (self._snapshot_interval or every):
                            if apart is not None and apart.slow_to_encode(self.name):
                                self._snapshot_apart()
                            else:
                                await self.checkpoint()

    @property
    def keeps_snapshots(self) -> bool:
        return self.STATE is not None

    async def restore(self) -> None:
        """Load the snapshot once, before the first read (nothing happens without one)."""
        if self._restored:
            return
        self._restored = True
        if self.snapshots is None or self.STATE is None:
            return
        snapshot = await self.snapshots.load(self.name, keys=self.STATE)  # another STATE: not used
        if snapshot is not None and snapshot.position > self.next_position:
            for attribute, value in snapshot.state.items():
                setattr(self, attribute, value)
            self.next_position = snapshot.position

    async def checkpoint(self) -> int:
        """Save the folded state now; returns the next position it covers."""
        if self.snapshots is None or self.STATE is None:
            raise RuntimeError(f"{self.name} keeps no snapshot")
        if self._saving is not None and not self._saving.done():
            await asyncio.wait([self._saving])  # stored first, so this one replaces it
        self._saved(await self.snapshots.save(self._state_snapshot()))
        return self.next_position

    def _state_snapshot(self) -> ComponentSnapshot:
        assert self.STATE is not None
        return ComponentSnapshot(self.name, self.next_position, {a: getattr(self, a) for a in self.STATE})

    def _saved(self, size: int) -> None:
        self._since_snapshot = 0
        if self.snapshot_every is not None:
            self._snapshot_interval = interval_after(self.snapshot_every, size)

    def _snapshot_apart(self) -> None:
        """Start encoding the state as it is now in a forked copy of the process; none is
        started while one is on its way (the next event folded asks again)."""
        if self._saving is not None and not self._saving.done():
            return
        assert self.snapshots is not None
        self._since_snapshot = 0
        self._saving = self.snapshots.save_apart(self._state_snapshot())
        self._saving.add_done_callback(when_saved_apart(self.name, self._saved))

    async def folded(self, count: int) -> None:
        """``count`` more events folded: snapshot when ``snapshot_every`` is reached."""
        if self.snapshot_every is None or self.snapshots is None or self.STATE is None:
            return
        self._since_snapshot += count
        if self._since_snapshot >= (self._snapshot_interval or self.snapshot_every):
            await self.checkpoint()
