"""A log handle that wraps another: every call goes to the wrapped log unless overridden.

Where it sits: the base of the handles the runtime puts in front of a backend
(``eventbatch.follow.SharedReads``: one reader for every component;
``eventbatch.log.fenced.FencedLog``: the pipeline's claim and epoch;
``eventbatch.log.sole_writer.SoleWriterLog``: a simulation's tail in memory).
Each overrides what it changes and inherits the rest from here. Its
``read_records`` is the wrapped log's own, already behind the one-writer fence,
so it is not fenced a second time.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

from eventbatch.log import fence
from eventbatch.log.port import Chunk, EventLog, Quarantined
from schemas.envelope import Envelope


class LogWrapper(EventLog):
    def __init__(self, inner: EventLog) -> None:
        super().__init__()
        self.inner = inner
        self.url = inner.url
        self.stats = inner.stats

    def __getattr__(self, name: str) -> Any:
        # What a particular backend or wrapper adds (a fenced log's claim, ...).
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        return await self.inner.append(batch)

    async def append_raw(self, records: list[bytes]) -> list[int]:
        return await self.inner.append_raw(records)

    def read(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Envelope, None]:
        return self.inner.read(from_position, follow=follow)

    @fence.fenced_inside
    def read_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Chunk, None]:
        return self.inner.read_records(from_position, follow=follow)

    async def unreadable(self, position: int, data: bytes) -> Envelope | None:
        return await self.inner.unreadable(position, data)

    async def end_position(self) -> int:
        return await self.inner.end_position()

    async def start_position(self) -> int:
        return await self.inner.start_position()

    async def truncate(self, before: int) -> int:
        return await self.inner.truncate(before)

    async def get_consumer_position(self, name: str) -> int | None:
        return await self.inner.get_consumer_position(name)

    async def set_consumer_position(self, name: str, position: int) -> None:
        await self.inner.set_consumer_position(name, position)

    async def quarantined(self) -> list[Quarantined]:
        return await self.inner.quarantined()
