"""How the SQLite backend appends a batch: a few multi-row statements in one transaction, at once
when the write lock is free, else one call on the write thread, its wake-up after the commit,
whoever still waits for it.

Where it sits: beside the log contract (``tests/contract/log_contract.py``), on a real file. The
contract holds for any way of appending; these pin what the backend's own way of inserting must
keep: every size of batch (the statements carry 256, 128, ... 1 rows) stored whole, in order,
byte for byte as the codec encodes it, and an append that waits for another writer's lock neither
stops the event loop nor, once its caller is cancelled, is torn or lost to the handle's followers.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import aclosing
from pathlib import Path

import pytest

from eventbatch.log.codec import encode
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from tests.support.events import mixed_batch

POLL_S = 60  # the followers below would poll only this often: a wake-up within DEADLINE_S is the append's
DEADLINE_S = 10


async def test_batches_of_every_size_are_stored_whole_in_order_and_byte_for_byte(tmp_path: Path) -> None:
    sizes = [2, 3, 4, 100, 255, 256, 257, 511, 513, 1000, 1]
    batches = [mixed_batch(f"job-{n}", size) for n, size in enumerate(sizes)]
    path = tmp_path / "events.db"
    async with open_log(f"sqlite://{path}") as log:
        positions = [await log.append(batch) for batch in batches]
        async with aclosing(log.read(0)) as events:
            read = [e async for e in events]
    sent = [e for batch in batches for e in batch]
    offsets = [sum(sizes[:n]) for n in range(len(sizes))]
    assert positions == [list(range(offset, offset + size)) for offset, size in zip(offsets, sizes, strict=True)]
    assert [e.position for e in read] == list(range(len(sent)))
    assert [e.at(-1) for e in read] == sent
    conn = sqlite3.connect(path)
    try:
        stored = conn.execute("SELECT position, data FROM events ORDER BY position").fetchall()
    finally:
        conn.close()
    assert stored == [(position, encode(e)) for position, e in enumerate(sent)]


async def next_record(events, deadline: float) -> Envelope:
    async with asyncio.timeout(deadline):
        return await anext(events)


@pytest.mark.parametrize("size", [1, 100], ids=["single", "batch-of-100"])
async def test_an_append_waiting_for_another_writer_leaves_the_loop_free_and_is_whole_if_its_caller_is_cancelled(
    tmp_path: Path, size: int
) -> None:
    """Another writer (``eventbatch apply`` in another process) holds the write lock: the append
    waits for it on the write thread while the event loop goes on, and once its caller is
    cancelled it still goes in whole when the lock is free, and wakes the handle's followers."""
    cancelled_batch, next_batch = mixed_batch("cancelled", size), mixed_batch("next", size)
    path = tmp_path / "events.db"
    async with open_log(f"sqlite://{path}?poll_interval={POLL_S}") as log:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            async with aclosing(log.read(0, follow=True)) as events:
                waiting = asyncio.ensure_future(next_record(events, DEADLINE_S))  # the follower waits at the tail
                await asyncio.sleep(0)
                other.execute("BEGIN IMMEDIATE")  # the other writer's transaction: the lock is held
                append = asyncio.ensure_future(log.append(cancelled_batch))
                for _ in range(10):  # the loop goes on while the append waits for the lock
                    await asyncio.sleep(0)
                assert not append.done() and not waiting.done()
                append.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await append
                other.execute("COMMIT")  # the lock is free: the cancelled append goes in, whole
                first = await waiting  # woken by the committed append, not by a poll 60 s away
                rest = [await next_record(events, DEADLINE_S) for _ in range(size - 1)]
                assert await log.append(next_batch) == list(range(size, 2 * size))
                after = [await next_record(events, DEADLINE_S) for _ in range(size)]
        finally:
            other.close()
    assert [e.position for e in [first, *rest, *after]] == list(range(2 * size))
    assert [e.at(-1) for e in [first, *rest]] == cancelled_batch
    assert [e.at(-1) for e in after] == next_batch
