"""``open_log`` picks the backend and its options from the log URL, and refuses what it cannot use."""

from __future__ import annotations

import pytest

from eventbatch.log.factory import open_log
from eventbatch.log.kafka import KafkaLog
from eventbatch.log.memory import MemoryLog
from eventbatch.log.sqlite import SqliteLog


@pytest.mark.parametrize(
    "url, kind, attributes",
    [
        ("memory://", MemoryLog, {}),
        ("sqlite:///var/eventbatch/events.db", SqliteLog, {"url": "sqlite:///var/eventbatch/events.db"}),
        ("sqlite:////tmp/x/events.db", SqliteLog, {"url": "sqlite:///tmp/x/events.db"}),
        ("sqlite://data/events.db", SqliteLog, {"url": "sqlite://data/events.db"}),
        ("sqlite:///e.db?synchronous=full&poll_interval=0.2", SqliteLog, {"synchronous": "FULL", "poll_interval": 0.2}),
        ("kafka://k1:9092/events", KafkaLog, {"bootstrap": "k1:9092", "topic": "events"}),
        ("kafka://k1:9092,k2:9092/events?partitions=1&replication=3", KafkaLog,
         {"bootstrap": "k1:9092,k2:9092", "replication": 3, "url": "kafka://k1:9092,k2:9092/events"}),
        ("kafka://k1:9092/events?max_batch_bytes=1048576", KafkaLog, {"max_batch_bytes": 2**20}),
    ],
    ids=["memory", "sqlite-absolute", "sqlite-four-slashes", "sqlite-relative", "sqlite-options",
         "kafka", "kafka-brokers", "kafka-batch-limit"],
)
def test_a_url_names_a_backend_and_its_options(url: str, kind: type, attributes: dict) -> None:
    log = open_log(url)

    assert isinstance(log, kind)
    assert {name: getattr(log, name) for name in attributes} == attributes


@pytest.mark.parametrize(
    "url, message",
    [
        ("events.db", "not a log URL"),
        ("postgres://db/events", "unknown log scheme"),
        ("sqlite://", "names no database file"),
        ("sqlite:///e.db?fsync=always", "unknown option 'fsync'"),
        ("sqlite:///e.db?poll_interval=soon", "bad value for 'poll_interval'"),
        ("kafka://k1:9092", "must name brokers and one topic"),
        ("kafka://k1:9092/a/b", "must name brokers and one topic"),
        ("kafka://k1:9092/events?partitions=3", "needs one partition"),
    ],
    ids=["no-scheme", "unknown-scheme", "sqlite-no-path", "unknown-option", "bad-value",
         "kafka-no-topic", "kafka-two-topics", "kafka-partitions"],
)
def test_a_url_it_cannot_use_is_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_log(url)
