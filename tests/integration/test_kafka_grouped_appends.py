"""Grouped appends on the Kafka log (``SharedReads`` with ``group_whole``, as ``serve``
runs it): batches asked together go as one record batch when they fit one, and a group
that would not fit one record batch is refused before anything is sent and its batches
appended one by one, so no group is ever split across record batches."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from eventbatch.follow import SharedReads
from eventbatch.log.factory import open_log
from eventbatch.log.kafka import WouldSplit, one_record_batch
from tests.support.events import mixed_batch, pod_requested, wrap

pytestmark = pytest.mark.kafka

LIMIT = 64 * 1024


def large_batch(job: str, size: int) -> list:
    """``size`` pod requests of about 10 KiB each."""
    return [wrap(pod_requested(job, i, annotation_bytes=10_000), at=i) for i in range(size)]


async def test_a_group_that_fits_one_record_batch_goes_as_one(kafka_bootstrap: str) -> None:
    url = f"kafka://{kafka_bootstrap}/grouped-{uuid.uuid4().hex[:8]}?max_batch_bytes={LIMIT}"
    async with open_log(url) as backend:
        shared = SharedReads(backend)
        shared.group_appends, shared.group_whole = True, one_record_batch
        batches = [mixed_batch(f"job-{i}", size) for i, size in enumerate((1, 4, 2, 7, 3))]
        results = await asyncio.gather(*(shared.append(batch) for batch in batches))
        assert shared.grouped >= 1
        expected = 0
        for batch, positions in zip(batches, results, strict=True):
            assert positions == list(range(expected, expected + len(batch)))
            expected += len(batch)
        stored = [e async for e in backend.read(0)]
        assert [e.payload for e in stored] == [e.payload for batch in batches for e in batch]


async def test_a_group_larger_than_one_record_batch_is_never_split(kafka_bootstrap: str) -> None:
    """Four batches of about 30 KiB each, asked together, do not fit one 64 KiB record batch:
    the group is refused before anything is sent and each batch goes alone, whole, in order,
    with its own positions: nothing lost, nothing twice."""
    url = f"kafka://{kafka_bootstrap}/grouped-{uuid.uuid4().hex[:8]}?max_batch_bytes={LIMIT}"
    async with open_log(url) as backend:
        # Directly: an append that would need two record batches is refused, nothing lands.
        with one_record_batch(), pytest.raises(WouldSplit):
            await backend.append(large_batch("whole", 8))
        assert await backend.end_position() == 0
        shared = SharedReads(backend)
        shared.group_appends, shared.group_whole = True, one_record_batch
        batches = [large_batch(f"job-{i}", 3) for i in range(4)]
        results = await asyncio.gather(*(shared.append(batch) for batch in batches))
        assert shared.grouped == 0  # no group went: each batch alone
        assert results == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
        stored = [e async for e in backend.read(0)]
        assert [e.payload for e in stored] == [e.payload for batch in batches for e in batch]
        # Outside the context a large append is still split and lands whole and in order.
        assert await backend.append(large_batch("split", 8)) == list(range(12, 20))
