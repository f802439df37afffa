"""The log contract on the Kafka backend (``kafka://host:port/topic``), against a real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from eventbatch.log.codec import encode
from eventbatch.log.factory import open_log
from eventbatch.log.kafka import BatchTooLarge, TruncateRefused
from eventbatch.log.port import EventLog
from tests.contract.log_contract import DurableEventLogContract, read_all
from tests.support.events import mixed_batch, node_added, pod_requested, wrap

pytestmark = pytest.mark.kafka


class TestKafkaLog(DurableEventLogContract):
    @pytest.fixture(autouse=True)
    def _broker(self, kafka_bootstrap: str) -> None:
        self.bootstrap = kafka_bootstrap
        self.topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"

    def create_log(self) -> EventLog:
        return open_log(f"kafka://{self.bootstrap}/{self.topic}")

    # The test broker (tansu) does not implement DeleteRecords: truncating says so
    # and removes nothing. On Kafka itself the prefix goes and the contract holds.
    async def test_truncating_drops_the_prefix_and_keeps_every_position(self, log: EventLog, other: EventLog) -> None:
        await log.append([wrap(node_added(i)) for i in range(10)])
        with pytest.raises(TruncateRefused, match="before offset 6 .*retention.ms"):
            await log.truncate(6)
        assert await other.start_position() == 0
        assert [e.position for e in await read_all(other)] == list(range(10))

    async def test_truncating_keeps_the_last_record_so_positions_are_never_given_twice(self, log: EventLog) -> None:
        await log.append([wrap(node_added(i)) for i in range(5)])
        with pytest.raises(TruncateRefused, match="before offset 4 "):
            await log.truncate(100)
        assert await log.append([wrap(node_added(5))]) == [5]


async def test_a_batch_over_the_topics_message_limit_is_sent_in_order_as_several_record_batches(
    kafka_bootstrap: str,
) -> None:
    topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"
    async with open_log(f"kafka://{kafka_bootstrap}/{topic}?max_batch_bytes=65536") as log:
        await log.append(mixed_batch("first", 3))
        large = mixed_batch("large", 500, start=3)
        assert sum(len(encode(e)) for e in large) > 3 * 65536  # several record batches' worth

        assert await log.append(large) == list(range(3, 503))

        stored = await read_all(log)
        assert [e.position for e in stored] == list(range(503))
        assert [(e.type, e.key, e.recorded_at) for e in stored[3:]] == [(e.type, e.key, e.recorded_at) for e in large]

        # One record that no record batch of the topic's size can hold: refused, nothing sent.
        base = len(encode(wrap(pod_requested("big", 0))))
        huge = wrap(pod_requested("big", 0, annotation_bytes=70_000 - base))
        with pytest.raises(BatchTooLarge, match="does not fit one record batch of at most 65536"):
            await log.append([wrap(node_added(1)), huge, wrap(node_added(2))])
        assert await log.end_position() == 503


async def test_a_topic_with_several_partitions_is_refused(kafka_bootstrap: str) -> None:
    topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        await admin.close()

    with pytest.raises(ValueError, match="has 3 partitions"):
        async with open_log(f"kafka://{kafka_bootstrap}/{topic}"):
            pass
