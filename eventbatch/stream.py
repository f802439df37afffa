"""Consuming the event stream: a typed consumer for programs built on eventbatch's log.

Where it sits: beside the pipeline, for readers outside it (other teams'
processors, audit tools, reports). It reads the same ``EventLog`` every
component reads (SQLite or Kafka, through the one-writer fence, unknown
types skipped and undecodable records quarantined exactly as ``read``
does) and adds what such a reader needs:

- a starting point: a position, the first event recorded at or after a
  time, the start or the end of the log;
- filters by event type and by key (exact keys or a key prefix), applied
  before a record's payload is decoded;
- progress kept under a consumer group name: ``commit()`` stores the
  position after the last record read as the log's consumer position
  ``stream.<group>`` (SQLite: a row of the log's ``consumers`` table; Kafka:
  the committed offset of the consumer group ``eventbatch.stream.<group>``),
  and a consumer of the same group started later resumes there, whatever
  starting point it was given. The prefix keeps a group apart from the
  positions the pipeline keeps for itself.

Nothing here appends to the log; the only write is the group's position.

```python
async with open_consumer(url, group="wait-times", types={"JobCreated", "JobPhaseChanged"}) as stream:
    async for event in stream:
        ...
        await stream.commit()
```
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import msgspec

from eventbatch.log.codec import decode
from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from schemas.envelope import Envelope
from schemas.events import REGISTRY

GROUP_PREFIX = "stream."
"""A group's position is the log's consumer position ``stream.<group>``: apart from the names the
pipeline keeps its own positions under (``writer``, ``writer.previous``, ``kube-actuator``)."""

Start = int | Literal["start", "end"]
"""Where a consumer without a committed position begins: a position, or the log's start or end."""


class StreamError(ValueError):
    """A consumer asked for something that cannot be: an unknown event type, a negative position."""


class _Header(msgspec.Struct):
    """The two fields a filter looks at; the rest of the record (the payload) is skipped unparsed."""

    type: str
    key: str


class _Stamp(msgspec.Struct):
    recorded_at: int


_header = msgspec.json.Decoder(_Header)
_stamp = msgspec.json.Decoder(_Stamp)


@dataclass(frozen=True)
class Filter:
    """Which events a consumer hands out: of these types (all if empty), with these keys or this key prefix."""

    types: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    key_prefix: str = ""

    def __post_init__(self) -> None:
        unknown = sorted(self.types - REGISTRY.keys())
        if unknown:
            raise StreamError(
                f"unknown event type(s): {', '.join(unknown)} (`eventbatch schema events` lists every type)"
            )

    def wants(self, type_: str, key: str) -> bool:
        if self.types and type_ not in self.types:
            return False
        if self.keys and key not in self.keys:
            return False
        return key.startswith(self.key_prefix)


class Consumer:
    """Follows (or reads up to the end of) one log from a starting point, filtered, with a group's progress.

    Iterate with ``async for``; each item is an ``Envelope`` with its position. With
    ``follow=True`` (the default) the iteration waits at the tail until the log is stopped
    or the caller breaks out; with ``follow=False`` it ends at the end it finds.

    Where it starts, first that applies: the group's committed position; ``since`` (the
    first event, in log order, whose ``recorded_at`` is at or after it, in milliseconds on
    the appender's clock); ``start`` (a position, ``"start"`` or ``"end"``).
    """

    def __init__(
        self,
        log: EventLog,
        *,
        group: str | None = None,
        types: Iterable[str] = (),
        keys: Iterable[str] = (),
        key_prefix: str = "",
        start: Start = "start",
        since: int | None = None,
        follow: bool = True,
    ) -> None:
        if isinstance(start, int) and start < 0:
            raise StreamError(f"a start position is 0 or more, not {start}")
        if group is not None and not group:
            raise StreamError("a consumer group needs a name")
        self.log = log
        self.group = group
        self.filter = Filter(frozenset(types), frozenset(keys), key_prefix)
        self.start = start
        self.since = since
        self.follow = follow
        self.position: int | None = None
        """The position of the next record to read (after the last one read, handed out or
        filtered out); None until iteration begins. ``commit()`` stores this."""
        self.committed: int | None = None
        """The group's stored position as this consumer last read or wrote it."""
        self.resumed = False
        """Whether this consumer began at its group's committed position."""

    async def begin(self) -> int:
        """Where the next record will be read from (resolving the starting point once)."""
        if self.position is not None:
            return self.position
        if self.group is not None:
            self.committed = await self.log.get_consumer_position(GROUP_PREFIX + self.group)
        if self.committed is not None:
            self.position, self.resumed = self.committed, True
        elif self.since is not None:
            self.position = await self._first_since(self.since)
        elif self.start == "start":
            self.position = await self.log.start_position()
        elif self.start == "end":
            self.position = await self.log.end_position()
        else:
            self.position = self.start
        return self.position

    async def _first_since(self, since: int) -> int:
        """The position of the first record recorded at or after ``since`` (the end if none is)."""
        start = await self.log.start_position()
        end = await self.log.end_position()
        async with aclosing(self.log.read_records(start)) as chunks:
            async for chunk in chunks:
                for position, data in chunk:
                    try:
                        if _stamp.decode(data).recorded_at >= since:
                            return position
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        continue  # an unreadable record has no time: the read quarantines it
        return end

    def __aiter__(self) -> AsyncGenerator[Envelope, None]:
        return self.events()

    async def events(self) -> AsyncGenerator[Envelope, None]:
        """The events, in log order (what ``async for event in consumer`` iterates). To break out
        early and close the read at once, iterate ``async with aclosing(consumer.events()) as events``."""
        position = await self.begin()
        wanted = self.filter
        everything = not (wanted.types or wanted.keys or wanted.key_prefix)
        async with aclosing(self.log.read_records(position, follow=self.follow)) as chunks:
            async for chunk in chunks:
                for position, data in chunk:
                    self.position = position + 1
                    if not everything:
                        try:
                            header = _header.decode(data)
                        except (msgspec.DecodeError, msgspec.ValidationError):
                            pass  # let the full decode below say what is wrong, as ``read`` would
                        else:
                            if not wanted.wants(header.type, header.key):
                                continue
                    item = decode(position, data)
                    envelope = item if isinstance(item, Envelope) else await self.log.unreadable(position, data)
                    if envelope is None:
                        continue
                    self.log.stats.read += 1
                    yield envelope

    async def commit(self) -> int | None:
        """Store the group's position: the record after the last one this consumer read.

        A consumer of the same group started later begins there. Returns the position stored
        (None if nothing was read yet). Without a group there is nothing to commit: ``StreamError``.
        """
        if self.group is None:
            raise StreamError("commit() needs a consumer group (Consumer(..., group=NAME))")
        if self.position is None:
            return None
        if self.position != self.committed:
            await self.log.set_consumer_position(GROUP_PREFIX + self.group, self.position)
            self.committed = self.position
        return self.committed


@asynccontextmanager
async def open_consumer(
    url: str,
    *,
    group: str | None = None,
    types: Iterable[str] = (),
    keys: Iterable[str] = (),
    key_prefix: str = "",
    start: Start = "start",
    since: int | None = None,
    follow: bool = True,
) -> AsyncIterator[Consumer]:
    """Open the log at ``url``, yield a ``Consumer`` on it, stop the log on the way out."""
    consumer_filter = Filter(frozenset(types), frozenset(keys), key_prefix)  # refuse a bad filter before opening
    log = open_log(url)
    async with log:
        yield Consumer(
            log,
            group=group,
            types=consumer_filter.types,
            keys=consumer_filter.keys,
            key_prefix=key_prefix,
            start=start,
            since=since,
            follow=follow,
        )
