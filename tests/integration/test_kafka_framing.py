"""The log's standard framing: every Kafka record's key and CloudEvents headers, read by a
plain aiokafka consumer (no eventbatch code on the reading side), the same attributes from
the SQLite log, and Kafka records written before the framing still read."""

from __future__ import annotations

import hashlib
import json
import uuid
from contextlib import aclosing
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from eventbatch.log.cloudevents import Framed, read_framed
from eventbatch.log.codec import encode
from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from schemas.envelope import Causation, Envelope
from schemas.events import JobPhaseChanged, QueueStateChanged
from tests.support.events import mixed_batch, node_added, pod_bound, wrap

pytestmark = pytest.mark.kafka

REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type")


def known_events() -> list[Envelope]:
    """A few events whose key and attributes the test spells out, then realistic traffic."""
    return [
        wrap(JobPhaseChanged(job="ml-training/train", phase="Running", previous="Pending"), at=1,
             causation=Causation(7, "job-controller", 1)),
        wrap(QueueStateChanged(queue="research", state="Open"), at=2),
        wrap(node_added(3), at=1_000),
        wrap(pod_bound("train", 0), at=61_234, causation=Causation(2, "scheduler")),
        *mixed_batch("traffic", 30, start=10),
    ]


async def consume_plainly(bootstrap: str, topic: str, count: int) -> list:
    """Every record of ``topic`` as aiokafka gives it: key, value and headers."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        records: list = []
        for _ in range(200):  # bounded: 200 fetches of at most 100 ms
            fetched = await consumer.getmany(tp, timeout_ms=100)
            records += fetched.get(tp, [])
            if len(records) >= count:
                break
        assert len(records) == count
        return records
    finally:
        await consumer.stop()


async def test_a_plain_kafka_consumer_finds_the_key_and_the_cloudevents_headers_on_every_record(
    kafka_bootstrap: str,
) -> None:
    topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"
    events = known_events()
    async with open_log(f"kafka://{kafka_bootstrap}/{topic}") as log:
        await log.append(events[:4])  # a batch
        for envelope in events[4:]:
            await log.append([envelope])  # and singles

    records = await consume_plainly(kafka_bootstrap, topic, len(events))
    ids = set()
    for record, envelope in zip(records, events, strict=True):
        headers = dict(record.headers)
        assert len(headers) == len(record.headers), "a header given twice"
        missing = [name for name in REQUIRED if name not in headers]
        assert not missing, (record.offset, missing)
        assert record.key == headers["ce_subject"]
        assert record.value == encode(envelope), "the payload bytes changed"
        assert headers["ce_specversion"] == b"1.0"
        assert headers["content-type"] == b"application/json"
        assert headers["ce_type"] == f"io.eventbatch.{envelope.type}.v1".encode()
        if envelope.causation is None:  # known by its bytes
            assert headers["ce_id"] == hashlib.sha256(record.value).hexdigest()[:32].encode()
        else:  # known by what it answers
            assert headers["ce_id"] == f"{envelope.causation.position}-{envelope.causation.index}".encode()
        ids.add(headers["ce_id"])
        assert ("ce_causation" in headers) == (envelope.causation is not None)
        assert headers.get("ce_correlation", b"").decode() == envelope.correlation
    assert len(ids) == len(events), "two records share an id"

    job, queue, node, pod = (dict(r.headers) | {"key": r.key} for r in records[:4])
    assert job == {
        "key": b"job/ml-training/train",
        "ce_specversion": b"1.0",
        "ce_id": b"7-1",
        "ce_source": f"eventbatch://{topic}/job-controller".encode(),
        "ce_type": b"io.eventbatch.JobPhaseChanged.v1",
        "ce_time": b"2026-01-01T00:00:00.001Z",
        "ce_subject": b"job/ml-training/train",
        "content-type": b"application/json",
        "ce_causation": b'{"position":7,"handler":"job-controller","index":1}',
        "ce_correlation": b"ml-training/train",
    }
    assert (queue["key"], queue["ce_source"], queue["ce_time"]) == (
        b"queue/research", f"eventbatch://{topic}/client".encode(), b"2026-01-01T00:00:00.002Z"
    )
    assert "ce_causation" not in queue
    assert (node["key"], node["ce_type"], node["ce_time"]) == (
        b"node/gpu-node-003", b"io.eventbatch.NodeAdded.v1", b"2026-01-01T00:00:01.000Z"
    )
    assert (pod["key"], pod["ce_source"], pod["ce_time"], pod["ce_correlation"]) == (
        b"pod/ml-training/train-worker-0", f"eventbatch://{topic}/scheduler".encode(),
        b"2026-01-01T00:01:01.234Z", b"ml-training/train",
    )
    assert json.loads(pod["ce_causation"]) == {"position": 2, "handler": "scheduler"}


async def framed(log: EventLog, start: int = 0) -> list[Framed]:
    async with aclosing(read_framed(log, start)) as reading:
        return [item async for item in reading]


async def test_the_sqlite_log_gives_the_same_key_and_attributes_as_the_kafka_headers(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Read through the log: Kafka's from the headers, SQLite's computed, the same values
    (a topic and a file of one name are one source)."""
    name = f"events-{uuid.uuid4().hex[:12]}"
    events = known_events()
    async with open_log(f"kafka://{kafka_bootstrap}/{name}") as kafka, open_log(f"sqlite://{tmp_path}/{name}.db") as sqlite:
        for log in (kafka, sqlite):
            await log.append(events[:4])
            await log.append(events[4:])
        from_kafka, from_sqlite = await framed(kafka), await framed(sqlite)
        again = await framed(sqlite, 2)

    assert [f.carried for f in from_kafka] == [True] * len(events)
    assert [f.carried for f in from_sqlite] == [False] * len(events)
    assert [(f.envelope, f.key, f.attributes) for f in from_sqlite] == [
        (f.envelope, f.key, f.attributes) for f in from_kafka
    ]
    assert [f.envelope.position for f in from_kafka] == list(range(len(events)))
    assert from_sqlite[0].key == "job/ml-training/train"
    assert from_sqlite[0].attributes.source == f"eventbatch://{name}/job-controller"
    assert [f.attributes for f in again] == [f.attributes for f in from_sqlite[2:]], "a record re-read changed id"


async def test_records_written_before_the_framing_still_read(kafka_bootstrap: str) -> None:
    """Today's topics hold records with no key and no headers: the log reads them, and gives
    them the attributes it would have written."""
    topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"
    old, new = known_events()[:4], known_events()[4:8]
    async with open_log(f"kafka://{kafka_bootstrap}/{topic}") as log:  # makes the topic
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=False)
        await producer.start()
        try:
            for envelope in old:
                await producer.send_and_wait(topic, value=encode(envelope), partition=0)  # no key, no headers
        finally:
            await producer.stop()
        await log.append(new)

        read = [e async for e in log.read(0)]
        assert [(e.position, e.type, e.key) for e in read] == [
            (i, e.type, e.key) for i, e in enumerate(old + new)
        ]
        items = await framed(log)
        assert log.stats.quarantined == 0 and log.stats.unknown == 0

    assert [f.carried for f in items] == [False] * 4 + [True] * 4
    assert [f.key for f in items[:4]] == [
        "job/ml-training/train", "queue/research", "node/gpu-node-003", "pod/ml-training/train-worker-0"
    ]
    assert items[0].attributes.source == f"eventbatch://{topic}/job-controller"
    assert items[0].attributes.id == "7-1"
    assert items[1].attributes.id == hashlib.sha256(encode(old[1])).hexdigest()[:32]
    assert items[1].attributes.causation == "" and items[1].attributes.correlation == "research"


async def test_records_appended_as_they_are_get_the_framing_when_they_can_be_read(kafka_bootstrap: str) -> None:
    """``append_raw`` (importing records written elsewhere) frames a record it can read, and
    leaves a broken one without key or headers (it is quarantined on reading, as before)."""
    topic = f"eventbatch-test-{uuid.uuid4().hex[:12]}"
    events = known_events()[:2]
    async with open_log(f"kafka://{kafka_bootstrap}/{topic}") as log:
        await log.append_raw([encode(e) for e in events] + [b"{not json"])
    records = await consume_plainly(kafka_bootstrap, topic, 3)
    assert [r.key for r in records] == [b"job/ml-training/train", b"queue/research", None]
    assert [len(r.headers) for r in records] == [9, 8, 0]
