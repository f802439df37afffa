"""The in-memory ``EventLog`` backend (``memory://``), for fast unit tests.

Where it sits: a stand-in for the SQLite and Kafka backends when a test needs
a log and nothing else. It still encodes every event through ``codec`` on
append and decodes it on read, so unknown tags, quarantine and payload
round-trips behave as they do on the durable backends. Nothing survives the
process. Two handles share one log by sharing its ``MemoryStore``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from eventbatch.log.codec import encode
from eventbatch.log.port import Chunk, EventLog, LogTruncated, Quarantined
from schemas.envelope import Envelope


class MemoryStore:
    """The records of one in-memory log, shared by every handle that opens it."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.start = 0  # records below it were truncated (their slots hold b"")
        self.consumers: dict[str, int] = {}
        self.quarantine: dict[int, Quarantined] = {}
        self._changed = asyncio.Event()

    def extend(self, records: list[bytes]) -> list[int]:
        start = len(self.records)
        self.records.extend(records)
        self.notify()
        return list(range(start, start + len(records)))

    def changed(self) -> asyncio.Event:
        """An event set at the next append or stop (take it before looking)."""
        return self._changed

    def notify(self) -> None:
        """Wake every follower; each looks again and waits on a fresh event."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class MemoryLog(EventLog):
    """``memory://``: a log held in a Python list; pass ``store=`` to share one."""

    def __init__(self, *, store: MemoryStore | None = None, chunk: int = 1000) -> None:
        super().__init__()
        self.url = "memory://"
        self.store = store if store is not None else MemoryStore()
        self.chunk = chunk
        self._stopped = False

    async def start(self) -> None:
        self._stopped = False

    async def stop(self) -> None:
        self._stopped = True
        self.store.notify()

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        if not batch:
            return []
        records = [encode(envelope) for envelope in batch]
        positions = self.store.extend(records)
        self.stats.appended += len(records)
        return positions

    async def append_raw(self, records: list[bytes]) -> list[int]:
        """Append already-encoded records as they are (for tools and tests:
        importing a foreign record). Returns their positions."""
        return self.store.extend([bytes(record) for record in records])

    async def read_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Chunk, None]:
        if from_position < self.store.start:
            raise LogTruncated(
                f"{self.url}: position {from_position} was removed (the log starts at {self.store.start})"
            )
        position = from_position
        records = self.store.records
        while True:
            changed = self.store.changed()
            end = min(len(records), position + self.chunk)
            if end > position:
                yield [(offset, records[offset]) for offset in range(position, end)]
            position = max(position, end)
            if position < len(records):
                continue
            if not follow or self._stopped:
                return
            await changed.wait()
            if self._stopped:
                return

    async def start_position(self) -> int:
        return self.store.start

    async def truncate(self, before: int) -> int:
        store = self.store
        cut = max(store.start, min(before, len(store.records) - 1))
        for position in range(store.start, cut):
            store.records[position] = b""
            store.quarantine.pop(position, None)
        store.start = cut
        return cut

    async def end_position(self) -> int:
        return len(self.store.records)

    async def get_consumer_position(self, name: str) -> int | None:
        return self.store.consumers.get(name)

    async def set_consumer_position(self, name: str, position: int) -> None:
        self.store.consumers[name] = position

    async def quarantined(self) -> list[Quarantined]:
        return [self.store.quarantine[p] for p in sorted(self.store.quarantine)]

    async def _quarantine(self, record: Quarantined) -> None:
        self.store.quarantine.setdefault(record.position, record)

