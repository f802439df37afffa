"""The ``EventLog`` port: one ordered log, whatever stores it.

Where it sits: the source of truth of the pipeline. Edges append intents and
observations, handlers append decision batches, projections and handlers read.
Every backend (``memory``, ``sqlite``, ``kafka``) implements this class and
passes the one contract suite in ``tests/contract``.

Semantics every backend keeps:
- positions are consecutive integers from 0, assigned by the log, in the one
  total order every reader sees;
- ``append`` is atomic per batch: a reader sees all of a batch or none of it,
  and no other writer's event lands inside it;
- ``read(from_position, follow=...)`` yields decoded envelopes in order. An
  unknown event tag is skipped and counted in ``stats.unknown``; an
  undecodable record is quarantined with its position (``quarantined()``),
  counted in ``stats.quarantined``, and reading goes on;
- named consumer positions survive a process restart.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

from eventbatch.log import fence
from eventbatch.log.codec import Undecodable, Unknown, decode
from schemas.envelope import Envelope

Chunk = list[tuple[int, bytes]]
"""Consecutive records as stored: ``(position, record)`` pairs, in log order."""


class LogTruncated(RuntimeError):
    """A read asked for positions the log no longer holds (it was compacted)."""


@dataclass
class LogStats:
    appended: int = 0
    read: int = 0
    unknown: int = 0
    quarantined: int = 0
    unknown_types: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Quarantined:
    position: int
    error: str
    data: bytes


class EventLog(abc.ABC):
    """The port. Use as ``async with log:`` or ``await log.start()`` / ``stop()``."""

    url: str

    def __init__(self) -> None:
        self.stats = LogStats()

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Every backend's ``read_records`` goes through the one-writer fence
        (``eventbatch.log.fence``): no reader sees a replaced writer's records."""
        super().__init_subclass__(**kwargs)
        method = cls.__dict__.get("read_records")
        if method is not None and not getattr(method, "__isabstractmethod__", False) and not getattr(
            method, "fenced_inside", False
        ):
            cls.read_records = fence.wrap(method)  # type: ignore[method-assign]  # installing the fence is this hook's job

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections, create storage if missing."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Close connections; readers that follow the tail end."""

    async def __aenter__(self) -> EventLog:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @abc.abstractmethod
    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        """Append a batch atomically; return the position given to each event.

        An empty batch appends nothing and returns ``[]``.
        """

    @abc.abstractmethod
    async def append_raw(self, records: list[bytes]) -> list[int]:
        """Append already-encoded records as they are (for tools and tests:
        importing a foreign record), atomically; return their positions."""

    @abc.abstractmethod
    def read_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Chunk, None]:
        """Yield the records from ``from_position`` on as stored, in chunks, in log order.

        Raises ``LogTruncated`` if ``from_position`` is below ``start_position()``.

        For readers that decode records themselves (the read models); a
        record they cannot read goes to ``unreadable``. With ``follow=True``
        the iterator waits at the tail, like ``read``.
        """

    async def read(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Envelope, None]:
        """Yield envelopes from ``from_position`` on, in log order.

        With ``follow=True`` the iterator waits for new events at the tail and
        ends only when the log is stopped or the consumer breaks out.
        """
        async with aclosing(self.read_records(from_position, follow=follow)) as chunks:
            async for chunk in chunks:
                for position, data in chunk:
                    item = decode(position, data)
                    if isinstance(item, Envelope):
                        self.stats.read += 1
                        yield item
                    else:
                        await self._skip(item)

    async def unreadable(self, position: int, data: bytes) -> Envelope | None:
        """A record a reader of ``read_records`` could not read: the envelope if
        the log codec can decode it after all, else None once it is counted
        (unknown type) or quarantined (undecodable), as ``read`` does."""
        item = decode(position, data)
        if isinstance(item, Envelope):
            return item
        await self._skip(item)
        return None

    @abc.abstractmethod
    async def end_position(self) -> int:
        """The position the next appended event will get (= number of records)."""

    @abc.abstractmethod
    async def start_position(self) -> int:
        """The first position the log still holds (0 until it is compacted)."""

    @abc.abstractmethod
    async def truncate(self, before: int) -> int:
        """Drop the records below ``before`` for good; returns the new start position.

        Positions never move and are never given again: the last record is
        always kept, so the next append still gets the next position.
        """

    @abc.abstractmethod
    async def get_consumer_position(self, name: str) -> int | None:
        """The position a named consumer stored, or None if it never did."""

    @abc.abstractmethod
    async def set_consumer_position(self, name: str, position: int) -> None:
        """Store a named consumer's position durably."""

    @abc.abstractmethod
    async def quarantined(self) -> list[Quarantined]:
        """Every record quarantined so far, in position order, one per position."""

    # --- shared by the backends' readers --------------------------------

    async def _skip(self, item: Unknown | Undecodable) -> None:
        """Count a record a reader does not yield; quarantine it if undecodable."""
        if isinstance(item, Unknown):
            self.stats.unknown += 1
            self.stats.unknown_types[item.type] = self.stats.unknown_types.get(item.type, 0) + 1
            return
        self.stats.quarantined += 1
        await self._quarantine(Quarantined(item.position, item.error, item.data))

    async def _quarantine(self, record: Quarantined) -> None:
        """Store an undecodable record by its position (once per position)."""
        raise NotImplementedError
