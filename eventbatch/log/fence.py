"""The reader's side of the one-writer fence: records of a replaced writer are skipped.

Where it sits: between every log backend's ``read_records`` and everything
that reads the log. ``EventLog`` wraps each backend's ``read_records`` with
``fenced`` (``EventLog.__init_subclass__``), so ``read`` (the handler
runners, timers, reactors, ``replay --verify``, ``events tail``) and the
read models, which decode records themselves, all see the same log.

The rule. A pipeline writer starts by appending ``WriterClaimed``; the
position right after that record (claim + 1, so that 0 stays "none") is its
*epoch*, and every record it appends carries it (``Envelope.epoch``, see
``eventbatch.log.fenced.FencedLog``). Reading in log order, a reader keeps
the newest claim it has passed. A record whose epoch is non-zero and not
past that claim (epoch <= claim) was appended by a writer that another one
had already replaced: it is skipped and counted
(``fence_stats(log).fenced``). Records with epoch 0 (requests from the
command line, observations, anything not appended by a pipeline) are never
skipped. A stamped record also proves that a claim came before it (at its
epoch - 1), so the reader learns from those too.

A reader that starts in the middle of the log (a snapshot, a read model, a
compacted log, ``events tail --from``) has not passed the claims below its
start. It learns the newest one from where a previous read on the same
handle stopped, else from the log's consumer positions ``writer`` and
``writer.previous``, which the claiming pipeline keeps (the newest claim and
the one it replaced). Everything the fence knows is a real claim, so it can
fail to skip a record only when that knowledge is missing (three claims in
quick succession around a reader's starting point), never skip one it
should keep.

Cost: two byte comparisons per record; only a record that carries an epoch
(it ends with ``,"epoch":N}``, the encoder writes that field last) or starts
like a claim is looked at further.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import wraps
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from eventbatch.log.port import Chunk, EventLog

WRITER = "writer"  # consumer position: the newest WriterClaimed
PREVIOUS = "writer.previous"  # consumer position: the claim the newest one replaced

_CLAIM = b'{"type":"WriterClaimed"'
_EPOCH = b',"epoch":'
_KEEP = 256  # where recent reads stopped, and the newest claim below each


@dataclass
class FenceStats:
    fenced: int = 0  # records skipped: appended by a replaced writer
    newest_claim: int = -1  # the newest WriterClaimed any read on this handle has passed
    fenced_epochs: dict[int, int] = field(default_factory=dict)  # epoch -> records skipped
    _stops: dict[int, int] = field(default_factory=dict, repr=False)  # read stopped at -> claim below
    _listeners: list = field(default_factory=list, repr=False)

    def claim_seen(self, position: int) -> None:
        if position > self.newest_claim:
            self.newest_claim = position
            for listener in self._listeners:
                listener(position)

    def on_claim(self, listener) -> None:
        """Call ``listener(position)`` for each claim newer than every one seen before."""
        self._listeners.append(listener)

    def stopped(self, at: int, claim: int) -> None:
        stops = self._stops
        stops.pop(at, None)
        stops[at] = claim
        if len(stops) > _KEEP:
            del stops[next(iter(stops))]


def fence_stats(log: EventLog) -> FenceStats:
    """The fence's counters and claims of ``log``'s handle (of the backend under any wrapper)."""
    while (inner := getattr(log, "inner", None)) is not None:
        log = inner
    stats = log.__dict__.get("_fence")
    if stats is None:
        stats = log.__dict__["_fence"] = FenceStats()
    return stats


def epoch_of(data: bytes) -> int:
    """The epoch a record carries (0 if none); the encoder writes it as the last field."""
    if data[-1:] != b"}":
        return 0
    at = data.rfind(_EPOCH, max(0, len(data) - 32))
    if at < 0:
        return 0
    digits = data[at + len(_EPOCH) : -1]
    return int(digits) if digits.isdigit() else 0  # not the top-level field: a nested "epoch" ends in "}}"


def is_claim(data: bytes) -> bool:
    return data.startswith(_CLAIM)


ReadRecords = Callable[..., "AsyncGenerator[Chunk, None]"]
"""A ``read_records`` method: ``(log, from_position=0, *, follow=False)``."""
_R = TypeVar("_R", bound=ReadRecords)


def wrap(method: ReadRecords) -> ReadRecords:
    """``read_records`` of a backend, fenced (what ``EventLog.__init_subclass__`` installs)."""

    @wraps(method)
    def read_records(self: EventLog, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Chunk, None]:
        chunks = method(self, from_position, follow=follow)
        if getattr(chunks, "ag_code", None) is _fenced.__code__:
            return chunks  # a wrapper handing on its inner log's read: fenced there already
        return _fenced(self, chunks, from_position)

    return read_records


def fenced_inside(method: _R) -> _R:
    """Marks a ``read_records`` that hands on a read already fenced (a wrapper's): ``wrap`` leaves it as it is."""
    vars(method)["fenced_inside"] = True
    return method


async def _starting_claim(log: EventLog, stats: FenceStats, start: int) -> int:
    """The newest claim below ``start``, as far as this handle or the log's consumer positions tell."""
    if start <= 0:
        return -1
    known = stats._stops.get(start)
    if known is not None:
        return known
    best = -1
    for name in (WRITER, PREVIOUS):
        claim = await log.get_consumer_position(name)
        if claim is not None and best < claim < start:
            best = claim
    return best


async def _fenced(log: EventLog, chunks: AsyncGenerator[Chunk, None], start: int) -> AsyncGenerator[Chunk, None]:
    stats = fence_stats(log)
    async with aclosing(chunks):
        newest: int | None = None
        async for chunk in chunks:
            if not chunk:
                continue
            if newest is None:
                newest = await _starting_claim(log, stats, chunk[0][0])
            kept, newest = fence_chunk(stats, chunk, newest)
            if kept:
                yield kept


def fence_chunk(stats: FenceStats, chunk: Chunk, newest: int) -> tuple[Chunk, int]:
    """The records of ``chunk`` (not empty) the fence keeps, and the newest claim after it,
    given ``newest``, the newest claim before it; counted in ``stats``."""
    kept = chunk
    for index, (position, data) in enumerate(chunk):
        if data[:1] == b"{" and data.startswith(_CLAIM):
            if position > newest:
                newest = position
            stats.claim_seen(position)
            if kept is not chunk:
                kept.append((position, data))
            continue
        epoch = epoch_of(data) if data[-2:-1].isdigit() else 0
        if epoch and epoch <= newest:
            if kept is chunk:
                kept = chunk[:index]
            stats.fenced += 1
            stats.fenced_epochs[epoch] = stats.fenced_epochs.get(epoch, 0) + 1
            continue
        if epoch > newest + 1:
            newest = epoch - 1  # its claim came before it
        if kept is not chunk:
            kept.append((position, data))
    stats.stopped(chunk[-1][0] + 1, newest)
    return kept, newest
