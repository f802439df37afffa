"""A record larger than the codec's ``MAX_RECORD_BYTES`` is refused by every backend, naming
the limit, and nothing of its batch is appended; a record just under it goes in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventbatch.log.codec import MAX_RECORD_BYTES, RecordTooLarge, encode
from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from tests.contract.log_contract import read_all
from tests.support.events import node_added, pod_requested, wrap


@pytest.fixture(params=["memory", "sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/events.db"
    else:
        url = f"kafka://{request.getfixturevalue('kafka_bootstrap')}/eventbatch-test-{uuid.uuid4().hex[:12]}"
    async with open_log(url) as opened:
        yield opened


def _sized(target: int):
    """A pod request whose record is ``target`` bytes or a little less."""
    base = len(encode(wrap(pod_requested("big", 0))))
    return wrap(pod_requested("big", 0, annotation_bytes=target - base - 200))


async def test_a_record_over_the_limit_is_refused_and_nothing_of_its_batch_is_appended(log: EventLog) -> None:
    await log.append([wrap(node_added(0))])
    too_large = _sized(MAX_RECORD_BYTES + 1000)

    with pytest.raises(RecordTooLarge, match=f"at most {MAX_RECORD_BYTES:,} bytes") as refused:
        await log.append([wrap(node_added(1)), too_large, wrap(node_added(2))])

    assert refused.value.size > MAX_RECORD_BYTES and "PodRequested" in str(refused.value)
    assert await log.end_position() == 1
    fits = _sized(MAX_RECORD_BYTES - 1000)
    assert len(encode(fits)) <= MAX_RECORD_BYTES
    assert await log.append([fits]) == [1]
    assert [e.position for e in await read_all(log)] == [0, 1]
