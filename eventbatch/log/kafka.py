"""The Kafka ``EventLog`` backend (``kafka://host:port/topic``), for production.

Where it sits: the log of a multi-process installation, under every handler,
projection and adapter. The log is one topic with one partition, so Kafka's
offsets are the log's positions and the order is total.

- An append is one producer record batch in one produce request: the broker
  stores and serves a record batch whole, so a reader sees all of a batch or
  none of it and another writer's batch never lands inside it. A batch that
  cannot fit ``max_batch_bytes`` is refused before anything is sent.
  Correctness does not need idempotent or transactional producers; a
  duplicate from a producer retry is recognised upstream by its causation.
- Readers assign the partition and seek (no group join), fetch in large
  batches and, with ``follow=True``, poll every ``poll_ms`` until the log stops.
- ``end_position`` asks for the end offset and confirms it with the high
  watermark of a fetch at the last record: some Kafka-protocol brokers answer
  ListOffsets with the base offset of the last record batch plus one.
- Consumer positions are Kafka committed offsets of the group
  ``eventbatch.<name>`` (OffsetCommit / OffsetFetch, no group membership).
- Quarantined records go to the compacted topic ``<topic>.quarantine``,
  keyed by position; listing deduplicates by position.
- ``start()`` waits for a broker that is not up yet: it retries the first
  connection with a growing pause for ``connect_timeout`` seconds (default
  10; ``?connect_timeout=`` in the URL), keeping aiokafka's per-attempt error
  lines quiet, then raises ``BrokerUnreachable`` naming the broker and the
  last reason in one line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import KafkaConnectionError, KafkaError, OffsetOutOfRangeError, for_code
from aiokafka.protocol.commit import OffsetCommitRequest, OffsetFetchRequest

from eventbatch.log.codec import encode
from eventbatch.log.errors import BrokerUnreachable
from eventbatch.log.port import Chunk, EventLog, LogTruncated, Quarantined
from schemas.envelope import Envelope

_TOPIC_EXISTS = 36
_COORDINATOR_MOVED = {14, 15, 16}  # loading, not available, not the coordinator
_BATCH_OVERHEAD = 61  # record batch header
_RECORD_OVERHEAD = 21  # worst-case varint framing of one record without headers
CONNECT_TIMEOUT_S = 10.0  # a broker starting beside us may take some seconds to listen
_RETRY_FIRST_S, _RETRY_MAX_S = 0.2, 2.0  # pause between connection attempts, doubling
_ATTEMPT_MIN_S = 1.0  # even the last attempt may take this long (a slow network, connect_timeout=0)

log = logging.getLogger(__name__)
_connecting: ContextVar[list[str] | None] = ContextVar("eventbatch_kafka_connecting", default=None)


class _QuietWhileConnecting(logging.Filter):
    """aiokafka's warning or error line per failed attempt, kept for the one ``BrokerUnreachable`` says."""

    def filter(self, record: logging.LogRecord) -> bool:
        reasons = _connecting.get()
        if reasons is None or record.levelno < logging.WARNING:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        reasons.append(str(args[-1]) if args else record.getMessage())
        return False


logging.getLogger("aiokafka").addFilter(_QuietWhileConnecting())


class BatchTooLarge(ValueError):
    """A batch that does not fit one record batch of ``max_batch_bytes``."""


class TruncateRefused(RuntimeError):
    """The broker does not delete records on request (``DeleteRecords``)."""


class KafkaLog(EventLog):
    """``kafka://host:port/topic``: the log in one single-partition topic."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        partitions: int = 1,
        replication: int = 1,
        max_batch_bytes: int = 64 * 2**20,
        poll_ms: int = 100,
        fetch_max_bytes: int = 64 * 2**20,
        compression: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__()
        if partitions != 1:
            raise ValueError(f"partitions={partitions}: the log needs one partition so that its order is total")
        self.url = f"kafka://{bootstrap}/{topic}"
        self.bootstrap = bootstrap
        self.topic = topic
        self.quarantine_topic = f"{topic}.quarantine"
        self.replication = replication
        self.max_batch_bytes = max_batch_bytes
        self.poll_ms = poll_ms
        self.fetch_max_bytes = fetch_max_bytes
        self.compression = compression
        self.connect_timeout = connect_timeout
        self._tp = TopicPartition(topic, 0)
        self._quarantine_tp = TopicPartition(self.quarantine_topic, 0)
        self._producer: AIOKafkaProducer | None = None
        self._client: AIOKafkaClient | None = None
        self._probe: AIOKafkaConsumer | None = None
        self._probe_lock = asyncio.Lock()
        self._quarantined_here: set[int] = set()
        self._coordinators: dict[str, int] = {}
        self._stopped = True

    # --- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._open()
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, KafkaConnectionError):  # the broker went away after the first contact
                raise BrokerUnreachable(f"cannot reach Kafka broker {self._brokers()}: {exc}") from exc
            raise
        self._stopped = False

    def _brokers(self) -> str:
        return self.bootstrap.rpartition("@")[2]  # never credentials

    async def _admin(self) -> AIOKafkaAdminClient:
        """A started admin client: the first contact, retried until ``connect_timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        pause, attempts = _RETRY_FIRST_S, 0
        while True:
            attempts += 1
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            reasons: list[str] = []
            token = _connecting.set(reasons)
            try:
                bound = max(deadline - loop.time(), _ATTEMPT_MIN_S)
                async with asyncio.timeout(bound):
                    await admin.start()
                return admin
            except (KafkaConnectionError, TimeoutError) as exc:
                await admin.close()
                timed_out = isinstance(exc, TimeoutError)
                reason = f"no answer in {bound:.1f}s" if timed_out else (reasons[-1] if reasons else str(exc))
            except BaseException:
                await admin.close()
                raise
            finally:
                _connecting.reset(token)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BrokerUnreachable(
                    f"cannot reach Kafka broker {self._brokers()}: {reason} ({attempts} attempt(s) in "
                    f"{self.connect_timeout:g}s; is it running? ?connect_timeout=SECONDS in the URL waits longer)"
                )
            log.debug("Kafka broker not reachable yet", extra={"brokers": self._brokers(), "reason": reason})
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, _RETRY_MAX_S)

    async def _open(self) -> None:
        await self._create_topics()
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=0,
            enable_idempotence=False,
            compression_type=self.compression,
            max_batch_size=self.max_batch_bytes,
            max_request_size=self.max_batch_bytes + 2**20,
        )
        await self._producer.start()
        partitions = await self._producer.partitions_for(self.topic)
        if partitions != {0}:
            raise ValueError(f"topic {self.topic!r} has {len(partitions)} partitions; the log needs exactly one")
        self._client = AIOKafkaClient(bootstrap_servers=self.bootstrap)
        await self._client.bootstrap()
        self._probe = await self._consumer(max_partition_fetch_bytes=2**20)
        self._probe.assign([self._tp, self._quarantine_tp])
        self._probe.pause(self._tp, self._quarantine_tp)

    async def _create_topics(self) -> None:
        infinite = {"retention.ms": "-1", "retention.bytes": "-1"}
        topics = [
            NewTopic(self.topic, 1, self.replication, topic_configs={
                **infinite, "cleanup.policy": "delete", "max.message.bytes": str(self.max_batch_bytes),
            }),
            NewTopic(self.quarantine_topic, 1, self.replication, topic_configs={
                **infinite, "cleanup.policy": "compact", "max.message.bytes": str(self.max_batch_bytes),
            }),
        ]
        admin = await self._admin()
        try:
            response = await admin.create_topics(topics)
        finally:
            await admin.close()
        for topic, code, message in response.topic_errors:
            if code not in (0, _TOPIC_EXISTS):
                raise for_code(code)(f"cannot create topic {topic!r}: {message}")

    async def stop(self) -> None:
        self._stopped = True
        producer, client, probe = self._producer, self._client, self._probe
        self._producer = self._client = self._probe = None
        for closing in (probe and probe.stop(), producer and producer.stop(), client and client.close()):
            if closing is not None:
                await closing

    async def _consumer(self, **config: object) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
            fetch_max_wait_ms=self.poll_ms,
            fetch_max_bytes=self.fetch_max_bytes,
            **{"max_partition_fetch_bytes": 16 * 2**20, **config},
        )
        await consumer.start()
        return consumer

    def _connected(self, part: object) -> None:
        if part is None:
            raise RuntimeError(f"{self.url} is not started (use `async with` or `await log.start()`)")

    # --- writing ---------------------------------------------------------

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        if not batch:
            return []
        positions = await self._send([(e.key.encode(), encode(e)) for e in batch])
        self.stats.appended += len(positions)
        return positions

    async def append_raw(self, records: list[bytes]) -> list[int]:
        """Append already-encoded records as they are (for tools and tests:
        importing a foreign record). Returns their positions."""
        if not records:
            return []
        return await self._send([(None, bytes(record)) for record in records])

    async def _send(self, records: list[tuple[bytes | None, bytes]]) -> list[int]:
        producer = self._producer
        self._connected(producer)
        size = _BATCH_OVERHEAD + sum(len(value) + len(key or b"") + _RECORD_OVERHEAD for key, value in records)
        if size > self.max_batch_bytes:
            raise BatchTooLarge(
                f"a batch of {len(records)} events is {size} bytes; one record batch holds at most "
                f"{self.max_batch_bytes} (raise ?max_batch_bytes= and the topic's max.message.bytes)"
            )
        builder = producer.create_batch()
        for key, value in records:
            if builder.append(key=key, value=value, timestamp=None) is None:
                raise BatchTooLarge(f"a batch of {len(records)} events does not fit {self.max_batch_bytes} bytes")
        builder.close()
        delivered = await producer.send_batch(builder, self.topic, partition=0)
        metadata = await delivered
        return list(range(metadata.offset, metadata.offset + len(records)))

    async def _quarantine(self, record: Quarantined) -> None:
        if record.position in self._quarantined_here:
            return
        self._connected(self._producer)
        await self._producer.send_and_wait(
            self.quarantine_topic,
            key=str(record.position).encode(),
            value=record.data,
            headers=[("error", record.error.encode())],
            partition=0,
        )
        self._quarantined_here.add(record.position)

    # --- reading ---------------------------------------------------------

    async def read_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncIterator[Chunk]:
        end = None if follow else await self.end_position()
        if end is not None and from_position >= end:
            return
        consumer = await self._consumer()
        try:
            consumer.assign([self._tp])
            consumer.seek(self._tp, from_position)
            position = from_position
            while not self._stopped:
                try:
                    fetched = await consumer.getmany(self._tp, timeout_ms=self.poll_ms, max_records=10_000)
                except OffsetOutOfRangeError:
                    await self._wait_for(consumer, position)
                    continue
                chunk = [(record.offset, record.value) for record in fetched.get(self._tp, ())
                         if end is None or record.offset < end]
                if chunk:
                    position = chunk[-1][0] + 1
                    yield chunk
                if end is not None and position >= end:
                    return
        finally:
            await consumer.stop()

    async def _wait_for(self, consumer: AIOKafkaConsumer, position: int) -> None:
        """A follower ahead of the end waits for the log to reach its position."""
        (first,) = (await consumer.beginning_offsets([self._tp])).values()
        if position < first:
            raise LogTruncated(f"{self.url}: position {position} was removed (the log starts at {first})")
        await asyncio.sleep(self.poll_ms / 1000)
        consumer.seek(self._tp, position)

    async def start_position(self) -> int:
        probe = self._probe
        self._connected(probe)
        async with self._probe_lock:
            (first,) = (await probe.beginning_offsets([self._tp])).values()
        return first

    async def truncate(self, before: int) -> int:
        cut = min(before, await self.end_position() - 1)  # the last record stays
        if cut > await self.start_position():
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                await admin.delete_records({self._tp: RecordsToDelete(before_offset=cut)}, timeout_ms=30_000)
            except KafkaError as exc:
                raise TruncateRefused(
                    f"{self.url}: the broker did not delete the records before offset {cut} ({exc}); "
                    f"remove them with the topic's retention.ms or kafka-delete-records.sh"
                ) from exc
            finally:
                await admin.close()
        return await self.start_position()

    async def end_position(self) -> int:
        return await self._end(self._tp)

    async def _end(self, tp: TopicPartition) -> int:
        probe = self._probe
        self._connected(probe)
        async with self._probe_lock:
            (listed,) = (await probe.end_offsets([tp])).values()
            if listed == 0:
                return 0
            probe.resume(tp)
            try:
                probe.seek(tp, listed - 1)
                while not await probe.getmany(tp, timeout_ms=self.poll_ms, max_records=1):
                    if self._stopped:
                        raise RuntimeError(f"{self.url} stopped")
                return probe.highwater(tp)
            finally:
                probe.pause(tp)

    async def quarantined(self) -> list[Quarantined]:
        end = await self._end(self._quarantine_tp)
        found: dict[int, Quarantined] = {}
        if end == 0:
            return []
        consumer = await self._consumer()
        try:
            consumer.assign([self._quarantine_tp])
            consumer.seek(self._quarantine_tp, 0)
            offset = 0
            while offset < end:
                fetched = await consumer.getmany(self._quarantine_tp, timeout_ms=self.poll_ms)
                for record in fetched.get(self._quarantine_tp, ()):
                    offset = record.offset + 1
                    position = int(record.key)
                    error = dict(record.headers).get("error", b"").decode()
                    found.setdefault(position, Quarantined(position, error, record.value))
        finally:
            await consumer.stop()
        return [found[p] for p in sorted(found)]

    # --- consumer positions ----------------------------------------------

    async def get_consumer_position(self, name: str) -> int | None:
        response = await self._to_coordinator(name, OffsetFetchRequest(_group(name), [(self.topic, [0])]))
        for _topic, partitions in response.topics:
            for _partition, offset, _metadata, _code in partitions:
                return None if offset < 0 else offset
        return None

    async def set_consumer_position(self, name: str, position: int) -> None:
        request = OffsetCommitRequest(
            _group(name),
            OffsetCommitRequest.DEFAULT_GENERATION_ID,
            "",
            OffsetCommitRequest.DEFAULT_RETENTION_TIME,
            [(self.topic, [(0, position, "")])],
        )
        await self._to_coordinator(name, request)

    async def _to_coordinator(self, name: str, request: Any) -> Any:
        """Send an offset request to the group's coordinator; raise on an error code.

        The coordinator is looked up once per group and again if it moved.
        """
        client = self._client
        self._connected(client)
        group = _group(name)
        for attempt in (1, 2):
            node = self._coordinators.get(group)
            if node is None:
                node = self._coordinators[group] = await client.coordinator_lookup(CoordinationType.GROUP, group)
            response = await client.send(node, request)
            codes = _error_codes(response)
            if codes & _COORDINATOR_MOVED and attempt == 1:
                del self._coordinators[group]
                continue
            if codes:
                raise for_code(min(codes))(f"{type(request).__name__} for consumer {name!r} on {self.url}")
            return response
        raise AssertionError("unreachable")


def _error_codes(response: Any) -> set[int]:
    codes = {getattr(response, "error_code", 0)}
    for _topic, partitions in response.topics:
        codes.update(partition[-1] for partition in partitions)
    return codes - {0}


def _group(name: str) -> str:
    return f"eventbatch.{name}"
