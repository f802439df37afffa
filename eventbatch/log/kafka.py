"""The Kafka ``EventLog`` backend (``kafka://host:port/topic``), for production.

Where it sits: the log of a multi-process installation, under every handler,
projection and adapter. The log is one topic with one partition, so Kafka's
offsets are the log's positions and the order is total.

- An append is one producer record batch in one produce request: the broker
  stores and serves a record batch whole, so a reader sees all of a batch or
  none of it and another writer's batch never lands inside it. A batch larger
  than ``max_batch_bytes`` (the topic's ``max.message.bytes``, 8 MiB by
  default) is sent as several record batches, one after the other, its
  events in order; each part is whole to a reader. A single record that
  cannot fit one record batch is refused before anything is sent. Within
  ``one_record_batch()`` (serve's grouped appends) an append that would be
  split is refused instead (``WouldSplit``), before anything is sent. The log
  builds its record batches itself (``eventbatch.log.kafka_batch``, the
  bytes aiokafka's builder would write) from each record in its wire form
  (``cloudevents.KafkaFraming.wire``) and sends each as one produce request on
  the producer's connection to the partition's leader (aiokafka's producer
  and its batching queue are not in the way: the batch is already whole).
  Correctness does not need idempotent or transactional producers; a
  duplicate from a producer retry is recognised upstream by its causation.
- Readers assign the partition and seek (no group join), fetch in large
  batches and, with ``follow=True``, poll every ``poll_ms`` until the log stops.
  ``poll_ms`` (20 by default) is the consumer's ``fetch_max_wait_ms``: on a
  broker that answers a waiting fetch when records arrive (Apache Kafka) a
  follower sees an append within a round trip and ``poll_ms`` only sets how
  often an idle follower asks; on one that holds every empty fetch for the
  whole wait (tansu) it bounds each hop from an append to a follower.
  A reader takes only records that follow its position with no hole: a broker
  may serve a later append before an earlier one is visible (tansu does, under
  concurrent appends), so the records after a hole are fetched again until it
  fills (``HOLE_WAIT_S``; past that it is taken as never written, with a
  warning: the topic is not compacted and the log writes no transactions).
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
- A broker that goes away later is waited out: one line when it goes, one
  when it is back, aiokafka's own retry lines kept at DEBUG. A handle that
  follows the log (``serve``, ``events tail --follow``) waits as long as it
  takes; any other gives up after ``connect_timeout`` with
  ``BrokerUnreachable``. No call waits on the broker without a bound.
- The log never goes back: a handle remembers the end it has seen (read,
  appended, asked for), and a broker that answers with a lower end (it
  restarted without its data, or the topic was deleted and made again) gets
  ``LogLost`` from every call, before anything more is written. No client
  asks the broker to create a topic by naming it, so a lost topic stays
  missing instead of coming back empty under the writes.
- TLS and SASL (``security_protocol``, ``sasl_mechanism``, credentials,
  ``ssl_context``) reach every client; the password is never part of
  ``url``, the broker list or any message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import aiokafka.client
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    LeaderNotAvailableError,
    NoError,
    OffsetOutOfRangeError,
    UnknownError,
    for_code,
)
from aiokafka.protocol.commit import OffsetCommitRequest, OffsetFetchRequest
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.produce import ProduceRequest

from eventbatch.log import cloudevents, fence, kafka_batch
from eventbatch.log.codec import encode_batch, header
from eventbatch.log.errors import BrokerUnreachable, LogOpenError
from eventbatch.log.port import Chunk, EventLog, LogTruncated, Quarantined
from schemas.envelope import Envelope

_TOPIC_EXISTS = 36
_COORDINATOR_MOVED = {14, 15, 16}  # loading, not available, not the coordinator
MAX_BATCH_BYTES = 8 * 2**20
"""The default ``max_batch_bytes``: the largest record batch one produce request carries, and the
``max.message.bytes`` the log's topics are made with (deploy/kafka/kafkatopic.yaml says the same)."""
CONNECT_TIMEOUT_S = 10.0  # a broker starting beside us may take some seconds to listen
_RETRY_FIRST_S, _RETRY_MAX_S = 0.2, 2.0  # pause between connection attempts, doubling
_ATTEMPT_MIN_S = 1.0  # even the last attempt may take this long (a slow network, connect_timeout=0)
ANSWER_S = 3.0  # a broker that does not answer a small request in this long is taken as gone
CHECK_EVERY_S = 1.0  # a reader that got nothing for this long asks whether the broker and the log are still there
HOLE_WAIT_S = 10.0  # a position a fetch served past is fetched again this long before it is taken as never written
_PRODUCE_TIMEOUT_MS = 30_000  # how long the broker may wait for its replicas before it answers a produce request
_STOP_S = 5.0  # closing a client never waits longer (a batch the broker will never take)

log = logging.getLogger(__name__)
_connecting: ContextVar[list[str] | None] = ContextVar("eventbatch_kafka_connecting", default=None)
T = TypeVar("T")


class _AiokafkaLines(logging.Filter):
    """aiokafka logs a warning or an error per failed attempt (hundreds a second while a broker
    is down), and an INFO line per consumer it starts. While ``start()`` connects they are kept
    for the one ``BrokerUnreachable`` says; otherwise they are DEBUG lines: ``KafkaLog`` says once
    that it waits for the broker, and once that it is back. An unexpected error (with a
    traceback) keeps its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or record.levelno >= logging.CRITICAL or record.exc_info:
            return True
        reasons = _connecting.get()
        if reasons is not None and record.levelno >= logging.WARNING:
            args = record.args if isinstance(record.args, tuple) else ()
            reasons.append(str(args[-1]) if args else record.getMessage())
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


logging.getLogger("aiokafka").addFilter(_AiokafkaLines())
for _name in ("aiokafka.client", "aiokafka.cluster", "aiokafka.conn", "aiokafka.consumer.fetcher",
              "aiokafka.consumer.consumer", "aiokafka.consumer.subscription_state", "aiokafka.producer.sender",
              "aiokafka.producer.producer", "aiokafka.admin.client", "aiokafka.consumer.group_coordinator"):
    logging.getLogger(_name).addFilter(_AiokafkaLines())  # a logger's filters do not apply to its children's records


class _NoTopicCreation(MetadataRequest):
    """A metadata request that never creates the topics it names (aiokafka asks for that by
    default). The log's topics are made by ``start()`` with their settings; a topic that is
    gone (a broker restarted without its data) must stay gone, not come back empty under the
    next write."""

    def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False) -> None:
        super().__init__(topics, allow_auto_topic_creation=bool(allow_auto_topic_creation))


aiokafka.client.MetadataRequest = _NoTopicCreation  # every aiokafka client of this process asks this way


class LogLost(LogOpenError):
    """The log went back: its end is below what this handle has read or written."""


def _retriable(exc: BaseException) -> bool:
    """A failure that a broker coming back would cure (no answer, connection lost, leader moving)."""
    return isinstance(exc, TimeoutError) or (isinstance(exc, KafkaError) and bool(exc.retriable))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer in {ANSWER_S:g}s"
    return " ".join(str(exc).split()) or type(exc).__name__


class BatchTooLarge(ValueError):
    """A record that does not fit one record batch of ``max_batch_bytes``; nothing of its batch was sent."""


class WouldSplit(RuntimeError):
    """An append asked to go whole (``one_record_batch``) does not fit one record batch of
    ``max_batch_bytes``; nothing of it was sent."""


_ONE_RECORD_BATCH: ContextVar[bool] = ContextVar("eventbatch_kafka_one_record_batch", default=False)


@contextmanager
def one_record_batch() -> Iterator[None]:
    """Within it, an append that would be sent as more than one record batch is refused
    (``WouldSplit``) before anything is sent, instead of split: what is appended is one
    record batch, all of it or none to every reader (``SharedReads`` groups appends so)."""
    token = _ONE_RECORD_BATCH.set(True)
    try:
        yield
    finally:
        _ONE_RECORD_BATCH.reset(token)


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
        max_batch_bytes: int = MAX_BATCH_BYTES,
        poll_ms: int = 20,
        fetch_max_bytes: int = 64 * 2**20,
        compression: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        security_protocol: str = "PLAINTEXT",
        ssl_context: Any = None,
        sasl_mechanism: str = "PLAIN",
        sasl_username: str | None = None,
        sasl_password: str | None = None,
    ) -> None:
        super().__init__()
        if partitions != 1:
            raise ValueError(f"partitions={partitions}: the log needs one partition so that its order is total")
        if "@" in bootstrap:
            raise ValueError("give the credentials as sasl_username and sasl_password, not in the broker list")
        self.url = f"kafka://{bootstrap}/{topic}"  # never the password
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
        self._framing = cloudevents.KafkaFraming(topic)
        self._quarantine_tp = TopicPartition(self.quarantine_topic, 0)
        self._producer: AIOKafkaProducer | None = None
        self._client: AIOKafkaClient | None = None
        self._probe: AIOKafkaConsumer | None = None
        self._probe_lock = asyncio.Lock()
        self._quarantined_here: set[int] = set()
        self._coordinators: dict[str, int] = {}
        self._stopped = True
        self.security_protocol = security_protocol
        self.sasl_mechanism = sasl_mechanism if security_protocol.startswith("SASL") else None
        self.sasl_username = sasl_username
        self._security: dict[str, Any] = {"security_protocol": security_protocol}
        if ssl_context is not None:
            self._security["ssl_context"] = ssl_context
        if security_protocol.startswith("SASL"):
            self._security.update(
                sasl_mechanism=sasl_mechanism, sasl_plain_username=sasl_username, sasl_plain_password=sasl_password
            )
        self._seen = 0  # the highest end this handle has read, written or been told: the log never goes below it
        # The highest end the broker itself listed. A broker may list an end below a batch it has
        # just acknowledged for a moment (tansu does), so a listed end is held to listed ends only,
        # and an empty log to everything seen; an acknowledged offset below what was seen is
        # proof enough on its own.
        self._listed = 0
        self._lost: str | None = None
        self._outage: str | None = None  # why the broker is taken as gone, while it is
        self._following = 0  # readers with follow=True: while there are any, an outage is waited out
        self._checked_at = -1e9  # when the broker last answered a health check
        self._suspect = False  # a write failed: check the end before the next one

    def client_config(self) -> dict[str, Any]:
        """What every aiokafka client of this log is given: the brokers and the TLS and SASL settings."""
        return {"bootstrap_servers": self.bootstrap, **self._security}

    # --- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._open()
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, KafkaConnectionError):  # the broker went away after the first contact
                raise BrokerUnreachable(f"cannot reach Kafka broker {self._brokers()}: {_reason(exc)}") from None
            if isinstance(exc, KafkaError):  # refused: authentication, authorization, a bad setting
                raise BrokerUnreachable(f"Kafka broker {self._brokers()} refused {self.url}: {_reason(exc)}") from None
            raise
        self._stopped = False

    def _brokers(self) -> str:
        return self.bootstrap  # never credentials: they are not part of it

    async def _admin(self) -> AIOKafkaAdminClient:
        """A started admin client: the first contact, retried until ``connect_timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        pause, attempts = _RETRY_FIRST_S, 0
        while True:
            attempts += 1
            admin = AIOKafkaAdminClient(**self.client_config())
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
            **self.client_config(),
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
        self._client = AIOKafkaClient(**self.client_config())
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
        bound = 0.5 if self._lost or self._outage else _STOP_S  # a batch for a broker that is gone never goes
        for part, closing in ((probe, probe and probe.stop()), (producer, producer and producer.stop()),
                              (client, client and client.close())):
            if closing is None:
                continue
            try:
                async with asyncio.timeout(bound):
                    await closing
            except TimeoutError:  # the producer flushing a batch no broker takes: drop it
                log.debug("a Kafka client did not close in time", extra={"log": self.url})
                if part is producer and producer is not None:
                    await producer.client.close()
            except asyncio.CancelledError:
                # A consumer stopped right after it started awaits a task of its own that it has
                # just cancelled (aiokafka's group coordinator): that cancellation is the
                # consumer's, not this task's, and the other clients still have to close.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def _consumer(self, **config: object) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **self.client_config(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
            fetch_max_wait_ms=self.poll_ms,
            fetch_max_bytes=self.fetch_max_bytes,
            **{"max_partition_fetch_bytes": 16 * 2**20, **config},
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    # --- the broker going away, the log going back ------------------------

    async def _patiently(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, again until the broker answers it.

        An outage is said once when it begins and once when it ends. While
        the handle follows the log it is waited out however long it lasts;
        otherwise ``BrokerUnreachable`` after ``connect_timeout``. A log that
        was lost raises ``LogLost`` at once, a stopped handle ``RuntimeError``.
        """
        loop = asyncio.get_running_loop()
        started, pause = loop.time(), _RETRY_FIRST_S
        while True:
            self._raise_if_lost()
            if self._stopped:
                raise RuntimeError(f"{self.url} stopped")
            try:
                async with asyncio.timeout(ANSWER_S):
                    result = await attempt()
            except Exception as exc:
                if not _retriable(exc):
                    raise
                reason = _reason(exc)
            else:
                self._back()
                return result
            self._down(reason)
            waited = loop.time() - started
            if not self._following and waited >= self.connect_timeout:
                raise BrokerUnreachable(
                    f"lost the Kafka broker {self._brokers()}: {reason} (no answer for {waited:.0f}s; "
                    f"?connect_timeout=SECONDS in the URL waits longer)"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _RETRY_MAX_S)

    def _down(self, reason: str) -> None:
        if self._outage is None:
            self._outage = reason
            level = logging.WARNING if self._following else logging.DEBUG  # a one-shot command says it in its error
            log.log(level, f"waiting for the Kafka broker at {self._brokers()} ({reason})", extra={"log": self.url})

    def _back(self) -> None:
        self._checked_at = asyncio.get_running_loop().time()
        if self._outage is not None:
            self._outage = None
            level = logging.INFO if self._following else logging.DEBUG
            log.log(level, f"the Kafka broker at {self._brokers()} is back", extra={"log": self.url})

    def _raise_if_lost(self) -> None:
        if self._lost is not None:
            raise LogLost(self._lost)

    def _saw(self, end: int) -> None:
        """Positions below ``end`` exist: the log may never end below it from now on."""
        if end > self._seen:
            self._seen = end

    def _went_back(self, end: int, seen: int | None = None) -> None:
        """Raise ``LogLost`` (from now on, on every call) if ``end`` is below ``seen`` (what this handle has seen)."""
        seen = self._seen if seen is None else seen
        if end < seen and self._lost is None:
            self._lost = (
                f"the log at {self.url} went back from {seen} to {end}: it was lost or replaced "
                f"(a broker restarted without its data, or the topic was made again); not writing to it"
            )
            log.debug("log lost", extra={"log": self.url, "seen": self._seen, "end": end})
        self._raise_if_lost()

    async def _health(self, *, now: bool = False) -> None:
        """Whether the broker answers and the log has not gone back (at most every ``CHECK_EVERY_S``)."""
        if now or self._outage is not None or asyncio.get_running_loop().time() - self._checked_at >= CHECK_EVERY_S:
            await self._end(self._tp)

    def _connected(self, part: T | None) -> T:
        """``part`` (a client the log opened on start), or ``RuntimeError`` if the log is not started."""
        if part is None:
            raise RuntimeError(f"{self.url} is not started (use `async with` or `await log.start()`)")
        return part

    # --- writing ---------------------------------------------------------

    async def append(self, batch: Sequence[Envelope]) -> list[int]:
        if not batch:
            return []
        positions = await self._send(self._wire(batch))
        self.stats.appended += len(positions)
        return positions

    def _wire(self, batch: Sequence[Envelope]) -> list[bytes]:
        """Each event of ``batch`` encoded (``codec.encode_batch``) and framed, in its wire form
        (``KafkaFraming.wire``)."""
        wire = self._framing.wire
        return [wire(envelope, record) for envelope, record in zip(batch, encode_batch(batch), strict=True)]

    async def append_raw(self, records: list[bytes]) -> list[int]:
        """Append already-encoded records as they are (for tools and tests:
        importing a foreign record). Returns their positions. A record whose
        envelope can be read gets its key and CloudEvents headers as ``append``
        gives them; one that cannot (a broken record) goes without."""
        if not records:
            return []
        tails: list[bytes] = []
        for record in records:
            data = bytes(record)
            envelope = header(data)
            tails.append(kafka_batch.record_tail(None, data, []) if envelope is None else self._framing.wire(envelope, data))
        return await self._send(tails)

    async def _send(self, tails: list[bytes]) -> list[int]:
        """Send the records (each in its wire form, ``kafka_batch``) in order as record batches of
        at most ``max_batch_bytes`` each (one, unless they do not fit); returns their positions.
        Every record batch is built before the first is sent, so a record that fits none is
        refused before anything of its batch is sent."""
        producer = self._connected(self._producer)
        parts = kafka_batch.cut(tails, self.max_batch_bytes)
        for start, stop in parts:
            if stop == start + 1 and kafka_batch.OVERHEAD + kafka_batch.record_size(tails[start], 0) > self.max_batch_bytes:
                raise BatchTooLarge(
                    f"a record of {kafka_batch.record_size(tails[start], 0)} bytes (event {start} of a batch of "
                    f"{len(tails)}) does not fit one record batch of at most {self.max_batch_bytes} bytes "
                    f"(raise ?max_batch_bytes= and the topic's max.message.bytes); nothing of its batch was sent"
                )
        if len(parts) > 1 and _ONE_RECORD_BATCH.get():
            raise WouldSplit(f"{len(tails)} records do not fit one record batch of {self.max_batch_bytes} bytes")
        built = [kafka_batch.Prebuilt(kafka_batch.build(tails[start:stop], self.compression), stop - start)
                 for start, stop in parts]
        positions: list[int] = []
        for batch in built:
            positions += await self._send_part(producer, batch)
        return positions

    async def _send_part(self, producer: AIOKafkaProducer, batch: kafka_batch.Prebuilt) -> list[int]:
        """Send one record batch, again after a failure."""
        self._raise_if_lost()
        if self._suspect or self._outage is not None:  # after trouble, look before writing
            await self._health(now=True)
            self._suspect = False
        while True:
            seen = self._seen  # everything seen so far lies before this batch
            try:
                offset = await self._deliver(producer, batch)
            except Exception as exc:
                if not _retriable(exc):
                    raise
                # Not delivered (or not acknowledged): wait for the broker, make sure the log
                # is still there, and send the same batch again. A batch stored twice is
                # tolerated upstream.
                self._suspect = True
                self._down(_reason(exc))
                await self._health(now=True)
                continue
            break
        if offset < seen:  # the topic was made again under this write: not one more
            self._went_back(offset)
        count = batch.record_count()
        self._saw(offset + count)
        return list(range(offset, offset + count))

    async def _deliver(self, producer: AIOKafkaProducer, builder: Any) -> int:
        """Send one record batch; while it waits for an answer, look whether the broker is
        there and the log has not gone back (which raises and abandons the batch)."""

        async def send() -> int:
            return await self._produce(producer.client, builder.data)

        task = asyncio.ensure_future(send())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=ANSWER_S)
                if done:
                    return task.result()
                await self._health(now=True)
        finally:
            if not task.done():
                task.cancel()

    async def _produce(self, client: AIOKafkaClient, data: bytes | bytearray) -> int:
        """One produce request of one finished record batch to the partition's leader, on the
        producer's connection; the base offset the broker gave it. A broker's error answer is
        raised as its ``KafkaError`` (a retriable one is sent again by ``_send_part``)."""
        node = client.cluster.leader_for_partition(self._tp)
        if node is None or node < 0:
            await client.force_metadata_update()
            node = client.cluster.leader_for_partition(self._tp)
            if node is None or node < 0:
                raise LeaderNotAvailableError(f"no leader for {self.topic} partition 0")
        request = ProduceRequest(
            required_acks=-1, timeout=_PRODUCE_TIMEOUT_MS, topics=[(self.topic, [(0, data)])], transactional_id=None
        )
        response = await client.send(node, request)
        for _topic, partitions in response.topics:
            for answer in partitions:
                error = for_code(answer[1])
                if error is not NoError:
                    if getattr(error, "invalid_metadata", False):
                        client.force_metadata_update()
                    raise error()
                return int(answer[2])
        raise UnknownError(f"the broker's answer to a produce request names no {self.topic} partition 0")

    async def _quarantine(self, record: Quarantined) -> None:
        if record.position in self._quarantined_here:
            return
        producer = self._connected(self._producer)
        await producer.send_and_wait(
            self.quarantine_topic,
            key=str(record.position).encode(),
            value=record.data,
            headers=[("error", record.error.encode())],
            partition=0,
        )
        self._quarantined_here.add(record.position)

    # --- reading ---------------------------------------------------------

    def read_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Chunk, None]:
        return self._records(from_position, follow, framed=False)

    def _framed_records(self, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Chunk, None]:
        return self._records(from_position, follow, framed=True)

    read_framed_records = fence.wrap(_framed_records)
    """``read_records`` whose records are ``cloudevents.StoredRecord``: the bytes with the Kafka
    key and headers they were stored with (``cloudevents.read_framed``)."""

    async def _records(self, from_position: int, follow: bool, *, framed: bool) -> AsyncGenerator[Chunk, None]:
        end = None if follow else await self.end_position()
        if end is not None and from_position >= end:
            return
        self._following += follow
        try:
            consumer = await self._patiently(self._consumer)
        except BaseException:
            self._following -= follow
            raise
        try:
            consumer.assign([self._tp])
            consumer.seek(self._tp, from_position)
            position = from_position
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            hole: _Hole | None = None  # a position the broker served past, and since when
            while not self._stopped:
                try:
                    fetched = await consumer.getmany(self._tp, timeout_ms=self.poll_ms, max_records=10_000)
                except OffsetOutOfRangeError:
                    await self._wait_for(consumer, position)
                    continue
                except KafkaError as exc:
                    if not _retriable(exc):
                        raise
                    fetched = {}
                records = fetched.get(self._tp, ())
                if records and not (
                    records[0].offset == position and records[-1].offset == position + len(records) - 1
                ):
                    kept = _in_order(records, position)
                    if hole is None or hole.at != position + kept:
                        hole = _Hole(position + kept, loop.time())
                    if loop.time() - hole.since < HOLE_WAIT_S:
                        # Served past records not yet visible (a broker that makes concurrent
                        # appends visible out of order): take what is in order, fetch the rest again.
                        records = records[:kept]
                        consumer.seek(self._tp, hole.at)
                        await asyncio.sleep(hole.pause())
                    else:
                        log.warning(
                            f"positions {hole.at}-{records[kept].offset - 1} never came from the broker "
                            f"(served past them for {HOLE_WAIT_S:.0f}s); reading on from {records[kept].offset}",
                            extra={"log": self.url},
                        )
                        hole = None
                elif hole is not None and records:
                    hole = None
                chunk: Chunk
                if framed:
                    chunk = [(record.offset, _stored(record)) for record in records
                             if end is None or record.offset < end]
                else:
                    chunk = [(record.offset, record.value) for record in records
                             if end is None or record.offset < end]
                if chunk:
                    position = chunk[-1][0] + 1
                    self._saw(position)
                    quiet_since = loop.time()
                    yield chunk
                elif loop.time() - quiet_since >= CHECK_EVERY_S:
                    quiet_since = await self._quiet(consumer, position, end, quiet_since)
                if end is not None and position >= end:
                    return
        finally:
            self._following -= follow
            await consumer.stop()

    async def _quiet(self, consumer: AIOKafkaConsumer, position: int, end: int | None, since: float) -> float:
        """Nothing came for a while: is the broker there, has the log gone back, does the broker
        serve what it lists? Returns the new start of the quiet time."""
        loop = asyncio.get_running_loop()
        had_outage = self._outage is not None
        listed = await self._end(self._tp)  # waits out an outage; LogLost if the log went back
        if had_outage or self._outage is not None:
            consumer.seek(self._tp, position)  # start the fetch afresh on the broker that is back
            return loop.time()
        if listed > position and loop.time() - since >= max(self.connect_timeout, ANSWER_S):
            reason = f"it lists {listed} records but serves none from position {position}"
            if end is not None:  # a one-shot reader: say so rather than wait for ever
                raise BrokerUnreachable(f"Kafka broker {self._brokers()}: {reason} of {self.url}")
            self._down(reason)
            consumer.seek(self._tp, position)
            return loop.time()
        return since if listed > position else loop.time()

    async def _wait_for(self, consumer: AIOKafkaConsumer, position: int) -> None:
        """A follower ahead of the end waits for the log to reach its position."""
        (first,) = (await self._patiently(lambda: consumer.beginning_offsets([self._tp]))).values()
        if position < first:
            raise LogTruncated(f"{self.url}: position {position} was removed (the log starts at {first})")
        await self._health()
        await asyncio.sleep(self.poll_ms / 1000)
        consumer.seek(self._tp, position)

    async def start_position(self) -> int:
        probe = self._connected(self._probe)

        async def first() -> int:
            async with self._probe_lock:
                (offset,) = (await probe.beginning_offsets([self._tp])).values()
            return offset

        return await self._patiently(first)

    async def truncate(self, before: int) -> int:
        cut = min(before, await self.end_position() - 1)  # the last record stays
        if cut > await self.start_position():
            admin = AIOKafkaAdminClient(**self.client_config())
            await self._patiently(admin.start)
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
        """The end of ``tp``: the listed end offset, confirmed by the high watermark of a fetch
        at the last record. Each step is bounded; an outage is waited out (``_patiently``); for
        the log's own partition an end below what was seen raises ``LogLost``."""
        probe = self._connected(self._probe)

        async def listed() -> int:
            async with self._probe_lock:
                (offset,) = (await probe.end_offsets([tp])).values()
            return offset

        async def confirmed(listed_end: int) -> int:
            async with self._probe_lock:
                probe.resume(tp)
                try:
                    probe.seek(tp, listed_end - 1)
                    while not await probe.getmany(tp, timeout_ms=self.poll_ms, max_records=1):
                        pass  # bounded by _patiently's ANSWER_S
                    return probe.highwater(tp)
                finally:
                    probe.pause(tp)

        end = await self._patiently(listed)
        if end > 0:
            end = await self._patiently(lambda: confirmed(end))
        if tp == self._tp:
            self._went_back(end, self._listed if end > 0 else self._seen)  # empty is never a lag
            self._listed = max(self._listed, end)
            self._saw(end)
        return end

    async def quarantined(self) -> list[Quarantined]:
        end = await self._end(self._quarantine_tp)
        found: dict[int, Quarantined] = {}
        if end == 0:
            return []
        consumer = await self._patiently(self._consumer)
        try:
            consumer.assign([self._quarantine_tp])
            consumer.seek(self._quarantine_tp, 0)
            offset = 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + max(self.connect_timeout, ANSWER_S)
            while offset < end:
                fetched = await consumer.getmany(self._quarantine_tp, timeout_ms=self.poll_ms)
                for record in fetched.get(self._quarantine_tp, ()):
                    offset = record.offset + 1
                    deadline = loop.time() + max(self.connect_timeout, ANSWER_S)
                    position = int(record.key)
                    error = dict(record.headers).get("error", b"").decode()
                    found.setdefault(position, Quarantined(position, error, record.value))
                if loop.time() > deadline:
                    raise BrokerUnreachable(
                        f"Kafka broker {self._brokers()} serves no quarantined record from {offset} of {self.url}"
                    )
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
        """Send an offset request to the group's coordinator (waiting out an outage); raise on an error code."""
        return await self._patiently(lambda: self._ask_coordinator(name, request))

    async def _ask_coordinator(self, name: str, request: Any) -> Any:
        """The coordinator is looked up once per group and again if it moved."""
        client = self._connected(self._client)
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


def _in_order(records: Sequence[Any], position: int) -> int:
    """How many of ``records`` (fetched, offsets increasing) follow ``position`` with no hole."""
    count = 0
    for record in records:
        if record.offset != position + count:
            break
        count += 1
    return count


class _Hole:
    """A position a fetch served past: since when, and the pause before the next fetch of it."""

    __slots__ = ("at", "since", "_pause")

    def __init__(self, at: int, since: float) -> None:
        self.at, self.since, self._pause = at, since, 0.001

    def pause(self) -> float:
        pause, self._pause = self._pause, min(self._pause * 2, 0.05)
        return pause


def _error_codes(response: Any) -> set[int]:
    codes = {getattr(response, "error_code", 0)}
    for _topic, partitions in response.topics:
        codes.update(partition[-1] for partition in partitions)
    return codes - {0}


def _stored(record: Any) -> cloudevents.StoredRecord:
    """A fetched record's value with its key and headers."""
    stored = cloudevents.StoredRecord(record.value)
    stored.key = record.key
    stored.headers = record.headers
    return stored


def _group(name: str) -> str:
    return f"eventbatch.{name}"
