"""The handler runtime: drives one ``Handler`` over the log, exactly once per trigger.

Where it sits: between the log and the pure handlers (``handlers/``). It
folds the handler's state from the log, calls ``decide`` on each event, and
appends each trigger's decisions as one atomic batch stamped with their
causation ``(trigger position, handler name, index)``.

Exactly-once effect without transactions:
- On start, a pre-scan of the log collects the decisions this handler already
  recorded, per trigger (the first copy of each index; a batch appended twice
  is a duplicate and is ignored).
- Replaying, a trigger that was answered gets its recorded decisions folded
  right after it, and ``decide`` is not called again; a trigger past the last
  answered one is decided afresh. A crash between deciding and appending
  therefore re-decides (the same decisions: same log prefix, same state); a
  crash right after appending does not answer twice.
- The handler's own decisions are folded right after their trigger, whatever
  position they landed at, live and on replay alike, so state at trigger T
  never depends on how other writers interleaved with this one.

With a ``SnapshotStore`` (``eventbatch.snapshots``) the runner checkpoints
its state every ``snapshot_every`` events and on ``checkpoint()``; a restart
loads the snapshot and reads only the tail, its prescan included.

A handler that declares the event types it reads (``Handler.interests``) is
offered no other: for those the runner only moves its position on and counts
them towards the next snapshot (``RunnerStats.skipped``), unless the log holds
an answer of this handler to one (then it is folded, with its answer, as
before). Skipping is exact (the handler's fold of such an event changes
nothing and its decide answers nothing), so the log is the same.

Decisions carry the trigger's ``recorded_at``: a replay stamps the same times.
A ``decide`` that raises is recorded as ``HandlerFailed`` (the dead letter,
answering the trigger, with the error) and processing goes on. A failing
``decide`` or ``fold`` is logged as one ERROR line with the error; the
traceback goes to the DEBUG level only.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import Any

from eventbatch.follow import follow_chunks, read_to_tail
from eventbatch.log.port import EventLog
from eventbatch.snapshots import ComponentSnapshot, SnapshotStore, apart_possible, interval_after, when_saved_apart
from handlers.base import Handler, interests_of
from schemas.envelope import Causation, Envelope
from schemas.events import HandlerFailed
from schemas.events.base import Event

log = logging.getLogger(__name__)


@dataclass
class RunnerStats:
    folded: int = 0  # events folded, own decisions included, and events skipped
    skipped: int = 0  # events of a type the handler does not read (``Handler.interests``): neither folded nor decided
    triggers_answered: int = 0
    decisions_appended: int = 0
    replayed_answers: int = 0
    duplicates_ignored: int = 0
    handler_failures: int = 0
    fold_failures: int = 0
    fold_failure_positions: list[int] = field(default_factory=list)
    restored_from: int = -1  # position of the snapshot a start loaded, -1 if none
    snapshots_saved: int = 0
    appends_of_many: int = 0  # appends that carried the decisions to more than one trigger (``run``)
    last_decide_ms: float = 0.0  # how long the latest decision took (wall clock; paces the trigger)


class HandlerRunner:
    """Runs one handler; ``catch_up()`` for stepping, ``run()`` to follow the tail."""

    def __init__(
        self,
        *,
        handler: Handler,
        log: EventLog,
        snapshots: SnapshotStore | None = None,
        snapshot_every: int | None = None,
    ) -> None:
        self.handler = handler
        self.name = handler.name
        self.interests = interests_of(handler)  # the event types it folds or decides on (None: all)
        self.log = log
        self.state: Any = handler.initial()
        self.next_position = 0
        self.stats = RunnerStats()
        self._recorded: dict[int, list[Envelope]] | None = None
        self._last_answered = -1
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every
        self._since_snapshot = 0
        self._snapshot_interval = 0  # events between snapshots, once one was saved (``interval_after``)
        self.answer_chunks = False  # in ``run``: a chunk's decisions appended together (see ``run``)
        self.chunk_in_one = True  # with answer_chunks: as one append (else one per trigger, asked at once)
        self._held: list[Envelope] | None = None  # decisions of the chunk being answered, not yet appended
        self._apart = False  # in ``run``: a large state's snapshots are encoded apart (``_snapshot_due``)
        self._saving: asyncio.Task[int] | None = None  # a snapshot being encoded apart

    # -- public -----------------------------------------------------------

    async def catch_up(self) -> int:
        """Process every event up to the tail, including the tail this run grows.

        Returns the next position to read. Used by tests and simulation, which
        step the pipeline instead of following it.
        """
        if self._recorded is None:
            await self._prescan()
        self.next_position = await read_to_tail(self.log, self.next_position, self._process)
        return self.next_position

    async def run(self) -> None:
        """Follow the tail until the log stops or the task is cancelled.

        With ``answer_chunks`` (set by ``Pipeline.run``) and a handler whose fold of its own decisions reads no position
        (``Handler.position_free_decisions``), the triggers of one chunk are answered in turn,
        each trigger's decisions folded right after it as always, and the decisions of the
        whole chunk appended at its end as one append (each with its own causation): the
        state at every trigger is what it would be one append per trigger, and what a crash
        before the append loses is re-decided the same way on restart. No snapshot is taken
        before the chunk's decisions are on the log. Where a large append is split (Kafka,
        ``chunk_in_one`` off), each trigger's decisions are their own append, all asked at
        once: the shared log groups them into appends that are each one atomic write, so a
        trigger's decisions are all on the log or none of them.

        A snapshot due while following, of a state whose latest snapshot took over
        ``APART_MS`` to encode, is encoded by a forked copy of the process (``save_apart``) while the
        runner goes on: the event loop is not held while a large state is encoded."""
        await self._prescan()
        self._apart = apart_possible()
        together = self.answer_chunks and getattr(self.handler, "position_free_decisions", False)
        async with aclosing(follow_chunks(self.log, self.next_position)) as chunks:
            async for chunk in chunks:
                if together:
                    await self._answer_chunk(chunk)
                    continue
                for envelope in chunk:
                    pending = self._process(envelope)
                    if pending is not None:
                        await pending

    async def _answer_chunk(self, chunk: Sequence[Envelope]) -> None:
        held: list[Envelope] = []
        self._held = held
        try:
            for envelope in chunk:
                self._answer(envelope)
        finally:
            self._held = None
        if held:
            if self.chunk_in_one:
                await self.log.append(held)
            else:
                await _append_by_trigger(self.log, held)
            self.stats.decisions_appended += len(held)
            first, last = held[0].causation, held[-1].causation
            if first is not None and last is not None and first.position != last.position:
                self.stats.appends_of_many += 1
        if self.snapshot_every is not None and self.snapshots is not None:
            self._since_snapshot += len(chunk)
            if self._since_snapshot >= (self._snapshot_interval or self.snapshot_every):
                await self._snapshot_due()

    async def checkpoint(self) -> int:
        """Save the state now (needs a snapshot store); returns the next position it covers.
        A snapshot still being encoded apart is stored first, so this one replaces it."""
        if self.snapshots is None:
            raise RuntimeError(f"handler {self.name} has no snapshot store")
        if self._saving is not None and not self._saving.done():
            await asyncio.wait([self._saving])
        size = await self.snapshots.save(self._snapshot())
        self._saved(size)
        return self.next_position

    def _snapshot(self) -> ComponentSnapshot:
        return ComponentSnapshot(self.name, self.next_position, self.state, self._last_answered)

    def _saved(self, size: int) -> None:
        self.stats.snapshots_saved += 1
        self._since_snapshot = 0
        if self.snapshot_every is not None:
            self._snapshot_interval = interval_after(self.snapshot_every, size)

    async def _snapshot_due(self) -> None:
        """The periodic snapshot: in ``run``, a state whose latest snapshot took over
        ``APART_MS`` to encode is encoded apart (none is started while one is on its way: it
        is taken when the next chunk is folded); otherwise saved here, as ``checkpoint``."""
        assert self.snapshots is not None
        if not (self._apart and self.snapshots.slow_to_encode(self.name)):
            await self.checkpoint()
            return
        if self._saving is not None and not self._saving.done():
            return
        self._since_snapshot = 0
        self._saving = self.snapshots.save_apart(self._snapshot())
        self._saving.add_done_callback(when_saved_apart(self.name, self._saved, handler=self.name))

    # -- internals --------------------------------------------------------

    async def _restore(self) -> None:
        snapshot = await self.snapshots.load(self.name) if self.snapshots is not None else None
        if snapshot is not None and snapshot.position > self.next_position:
            self.state = snapshot.state
            self.next_position = snapshot.position
            self._last_answered = snapshot.last_answered
            self.stats.restored_from = snapshot.position

    async def _prescan(self) -> None:
        if self._recorded is not None:
            return
        await self._restore()
        recorded: dict[int, dict[int, Envelope]] = {}

        def collect(envelope: Envelope) -> None:
            cause = envelope.causation
            if cause is not None and cause.handler == self.name:
                by_index = recorded.setdefault(cause.position, {})
                if cause.index in by_index:
                    self.stats.duplicates_ignored += 1
                else:
                    by_index[cause.index] = envelope

        # Answers to triggers before next_position are already in the (restored) state.
        await read_to_tail(self.log, self.next_position, collect)
        self._recorded = {t: [d[i] for i in sorted(d)] for t, d in recorded.items() if t >= self.next_position}
        self._last_answered = max(self._last_answered, max(recorded, default=-1))

    def _process(self, envelope: Envelope) -> Awaitable[None] | None:
        """Answer one event; what is left to await (an append, a snapshot), or None. Folding,
        deciding and counting towards the next snapshot are synchronous, so an event with
        nothing to append and no snapshot due costs no coroutine."""
        pending = self._answer(envelope)
        if self.snapshot_every is None or self.snapshots is None:
            return pending
        self._since_snapshot += 1
        if self._since_snapshot >= (self._snapshot_interval or self.snapshot_every):
            return self._then_checkpoint(pending)
        return pending

    async def _then_checkpoint(self, pending: Awaitable[None] | None) -> None:
        if pending is not None:
            await pending  # the answer's decisions are folded before the state is saved
        await self._snapshot_due()

    def _answer(self, envelope: Envelope) -> Awaitable[None] | None:
        """Fold and, if it is due, decide ``envelope``; the append to await, or None (nothing to
        append, or the decisions held for the end of the chunk)."""
        self.next_position = envelope.position + 1
        cause = envelope.causation
        if cause is not None and cause.handler == self.name:
            return None  # own decision: folded right after its trigger already
        assert self._recorded is not None
        if (
            self.interests is not None
            and envelope.type not in self.interests
            and envelope.position not in self._recorded
        ):
            # A type the handler reads neither in fold nor in decide: its fold would leave the
            # state as it is and its decide answer nothing (``Handler.interests``).
            self.stats.folded += 1
            self.stats.skipped += 1
            return None
        self._fold(envelope)
        recorded = self._recorded.pop(envelope.position, None)
        if recorded is not None:
            for decision in recorded:
                self._fold(decision)
            self.stats.replayed_answers += 1
            return None
        if envelope.position <= self._last_answered:
            return None  # answered before a restart, with no decisions to record
        started = time.perf_counter()
        decisions = self._decide(envelope)
        self.stats.last_decide_ms = (time.perf_counter() - started) * 1000
        if not decisions:
            self.stats.triggers_answered += 1
            return None
        if self._held is None:
            return self._append(envelope, decisions)
        batch = self._batch(envelope, decisions)  # appended at the end of the chunk (``run``)
        for decision in batch:
            self._fold(decision)
        self._held.extend(batch)
        self.stats.triggers_answered += 1
        return None

    def _fold(self, envelope: Envelope) -> None:
        try:
            self.state = self.handler.fold(self.state, envelope)
        except Exception as exc:  # a fold bug must not stop the pipeline; it is recorded
            self.stats.fold_failures += 1
            self.stats.fold_failure_positions.append(envelope.position)
            _failed("fold", exc, handler=self.name, position=envelope.position)
        self.stats.folded += 1

    def _decide(self, trigger: Envelope) -> Sequence[Event]:
        try:
            return self.handler.decide(self.state, trigger)
        except Exception as exc:
            self.stats.handler_failures += 1
            _failed("decide", exc, handler=self.name, position=trigger.position)
            return [
                HandlerFailed(
                    handler=self.name,
                    trigger_type=trigger.type,
                    error=f"{type(exc).__name__}: {exc}",
                )
            ]

    def _batch(self, trigger: Envelope, decisions: Sequence[Event]) -> list[Envelope]:
        return [
            Envelope.wrap(
                event,
                recorded_at=trigger.recorded_at,
                causation=Causation(trigger.position, self.name, index),
            )
            for index, event in enumerate(decisions)
        ]

    async def _append(self, trigger: Envelope, decisions: Sequence[Event]) -> None:
        batch = self._batch(trigger, decisions)
        positions = await self.log.append(batch)
        for envelope, position in zip(batch, positions, strict=True):
            self._fold(envelope.at(position))
        self.stats.decisions_appended += len(batch)
        self.stats.triggers_answered += 1


async def _append_by_trigger(log: EventLog, held: Sequence[Envelope]) -> None:
    """Append ``held`` (decisions, each trigger's together and in order) as one append per
    trigger, all asked before the first is awaited, so that the log groups them."""
    batches: list[list[Envelope]] = []
    trigger = None
    for envelope in held:
        position = envelope.causation.position if envelope.causation is not None else None
        if not batches or position != trigger:
            batches.append([])
            trigger = position
        batches[-1].append(envelope)
    if len(batches) == 1:
        await log.append(batches[0])
        return
    await asyncio.gather(*(log.append(batch) for batch in batches))


FULL_COLLECTION_S = 600.0
"""How often ``long_lived_frozen`` lets a collection of the oldest generation see every object."""


@contextmanager
def long_lived_frozen(every_s: float = FULL_COLLECTION_S) -> Iterator[None]:
    """While following the log: after each collection of the oldest generation, what survived
    it is frozen (``gc.freeze``), so the next one looks only at objects made since.

    The folded states hold every object not yet removed, so a collection of the oldest
    generation walks a heap that grows with history: at 400 jobs/s on ``bench/load.py`` it
    ran about once a second and held the event loop 50-300 ms (every component waits
    meanwhile). Frozen objects are still freed when their last reference goes; only a cycle
    among them that became garbage after its freeze is kept, until every ``every_s`` seconds
    everything is unfrozen and the next such collection sees the whole heap again (a pause
    as long as one of them was before, once per ``every_s``). Leaving unfreezes everything."""
    next_full = time.monotonic() + every_s

    def after(phase: str, info: dict[str, int]) -> None:
        nonlocal next_full
        if phase != "stop" or info["generation"] != 2:
            return
        if time.monotonic() < next_full:
            gc.freeze()
        else:
            gc.unfreeze()  # the next collection of the oldest generation sees every object
            next_full = time.monotonic() + every_s

    gc.callbacks.append(after)
    try:
        yield
    finally:
        gc.callbacks.remove(after)
        gc.unfreeze()


def _failed(step: str, exc: Exception, *, handler: str, position: int) -> None:
    """One ERROR line naming the error; the traceback only at DEBUG (the log keeps the error)."""
    extra = {"handler": handler, "position": position}
    log.error("%s failed: %s: %s", step, type(exc).__name__, " ".join(str(exc).split()), extra=extra)
    log.debug("%s failed at #%d", step, position, exc_info=exc, extra=extra)
