"""The Kafka log's own record batches on a real broker: an append larger than one batch, with
and without compression, is stored at the positions the append returned, and a plain aiokafka
consumer (no eventbatch code on the reading side) reads every record's key, value and
CloudEvents headers as the framing gives them."""

from __future__ import annotations

import uuid

import pytest

from eventbatch.log.cloudevents import KafkaFraming
from eventbatch.log.codec import encode
from eventbatch.log.factory import open_log
from eventbatch.log.kafka import BatchTooLarge
from tests.integration.test_kafka_framing import consume_plainly
from tests.support.events import mixed_batch

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("compression", [None, "zstd"])
async def test_an_append_of_several_record_batches_lands_at_its_positions_with_its_headers(
    kafka_bootstrap: str, compression: str | None
) -> None:
    topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"
    query = "?max_batch_bytes=20000" + ("" if compression is None else f"&compression={compression}")
    events = mixed_batch("batches", 260, start=1)
    async with open_log(f"kafka://{kafka_bootstrap}/{topic}{query}") as log:
        first = await log.append(events[:250])  # about 13 record batches of at most 20,000 bytes
        second = await log.append(events[250:])
        assert first == list(range(250)) and second == list(range(250, 260))
        assert await log.end_position() == 260

    records = await consume_plainly(kafka_bootstrap, topic, len(events))
    framing = KafkaFraming(topic)
    for offset, (record, envelope) in enumerate(zip(records, events, strict=True)):
        data = encode(envelope)
        key, headers = framing(envelope, data)
        assert (record.offset, record.key, record.value, list(record.headers)) == (offset, key, data, headers)


async def test_a_record_too_large_for_a_batch_is_refused_and_nothing_of_its_append_is_stored(
    kafka_bootstrap: str,
) -> None:
    topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"
    events = mixed_batch("large", 12, start=1)
    sizes = sorted(len(encode(e)) for e in events)
    limit = sizes[-1] + 200  # the largest record's value fits, not with its headers
    async with open_log(f"kafka://{kafka_bootstrap}/{topic}?max_batch_bytes={limit}") as log:
        with pytest.raises(BatchTooLarge, match="nothing of its batch was sent"):
            await log.append(events)
        assert await log.end_position() == 0
        small = [e for e in events if len(encode(e)) == sizes[0]][:1]
        assert await log.append(small) == [0]
