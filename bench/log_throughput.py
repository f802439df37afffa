"""Event log throughput, each figure next to the limit it is bounded by.

Where it sits: a benchmark of the ``EventLog`` backends (memory, sqlite,
kafka). It appends realistic events (``PodRequested`` with a full pod
manifest, ``PodBound``, ``PodStarted``) in batches of 100 and of 1, reads the
whole log back, and prints events per second as a ratio of what the layer
underneath does alone on the same events in the same run: msgspec encoding
and decoding, sqlite3 inserting the same encoded records (``executemany``,
one transaction per batch of 100, on a file with the log's settings), and
aiokafka producing and consuming the same encoded bytes on the same broker.

Kafka's framing (each record's key and CloudEvents headers,
``eventbatch.log.cloudevents``) is measured on its own: the Kafka append, the
same append with no key and no headers, the raw produce of the same records
without key and headers (the limit: aiokafka's producer with the log's
settings, compression included) and with the log's keys and headers computed
beforehand, interleaved 1,000 events at a time on five topics, the order
rotating, ``--rounds`` times; the median of each ratio is printed with each
round's beside it, and the CPU per event of this process and of the broker
(read from ``/proc``, when the benchmark started it). Two mixes of half the
events each: as clients append them (no causation: ``ce_id`` is a digest of
the record) and as ``serve``'s handlers do (decisions: ``ce_id`` from the
causation). ``append / raw produce`` is the goal (at least 0.9); ``append /
append without framing`` is what keys and headers cost an append; ``raw
produce with framing / raw produce`` is the part of it that aiokafka and the
broker spend on the headers whatever computes them (it bounds the goal: an
append carries the same bytes); ``append / raw produce with framing`` is the
append against a floor that sends the same records with the same keys and
headers, computed and encoded beforehand: what the log itself spends (encoding,
framing, building the record batch, its send path); ``append padded`` is the
append without framing with each record padded with spaces (JSON whitespace)
to the size its key and headers give it: the framed append's bytes with none
of the framing's work, so ``append padded / append without framing`` is what
carrying those bytes alone costs an append, in the kernel and the broker,
whatever builds them. The client's own CPU per
event is measured apart too, exactly: the same kinds on aiokafka's batch
builder with a send that builds the batch and answers at once (no broker, no
network). ``--compression`` measures the framing with that codec on every
producer.

SQLite is measured through the handles a user gets: ``open_log`` alone (what
``eventbatch apply`` and the other commands append through), and the handles
``serve`` appends through (the one-writer ``FencedLog``, its records stamped
with the writer's epoch, under the components' ``SharedReads``). An append
encodes its events and then inserts them: its limit is the raw insert of
records already encoded (``executemany`` in one transaction per batch, with
the PRAGMAs the log's write connection has, checked in the run), so encoding
is part of what the ratio counts. The raw insert and the two SQLite handles
are measured the same way, on fresh files and interleaved: 1,000 events (ten
batches) of each in turn, the order rotating from slice to slice, so that a
busy moment on the shared machine falls on each alike; ``--rounds`` repeats
that on fresh files, and the median of the rounds is printed with the ratio
of each round beside it. The raw run of the records inserted as the log
inserts them (its multi-row statements, binding ``bytearray``) is printed
beside the limit: the append's distance to it is what encoding costs. The
costs grow with the batch, not with the log: one append is one transaction
(at once on the caller's thread when the write lock is free, else one hop to
the write connection's thread), whatever the log holds.

    python bench/log_throughput.py [--events N] [--rounds N] [--kafka HOST:PORT] [--compression CODEC] [--framing-only]

Without ``--kafka`` a local tansu broker is started for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from eventbatch.follow import SharedReads
from eventbatch.log import kafka_batch
from eventbatch.log.cloudevents import KafkaFraming
from eventbatch.log.codec import encode
from eventbatch.log.factory import open_log
from eventbatch.log.fenced import FencedLog
from eventbatch.log.kafka import KafkaLog
from eventbatch.log.kafka_batch import record_tail
from eventbatch.log.port import EventLog
from eventbatch.log.sqlite import SqliteLog, _insert_rows
from schemas.envelope import Causation, Envelope
from schemas.events import AnyEvent
from tests.support.broker import TansuBroker
from tests.support.events import mixed_batch


class RawEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """The record decoded in one pass, with no per-tag dispatch: the decode limit."""

    type: str
    key: str
    recorded_at: int
    payload: AnyEvent  # type: ignore[valid-type]
    causation: Causation | None = None
    correlation: str = ""
    version: int = 1


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def line(label: str, value: float, limit_label: str, limit: float) -> str:
    return f"{label:<42} {value:>11,.0f} ev/s  = {value / limit:5.2f} x {limit_label} ({limit:,.0f} ev/s)"


def measure_codec(events: list[Envelope]) -> tuple[float, float, list[bytes]]:
    encoder = msgspec.json.Encoder()
    decoder = msgspec.json.Decoder(RawEnvelope)
    for envelope in events[:300]:  # warm msgspec's per-type caches for both sides
        decoder.decode(encode(envelope))
        encoder.encode(envelope)
    records = [encode(e) for e in events]  # the bytes the log stores
    encode_rate = decode_rate = 0.0
    for _ in range(3):  # best of three: the limit, not a noisy draw
        start = time.perf_counter()
        for envelope in events:
            encoder.encode(envelope)
        encode_rate = max(encode_rate, rate(len(events), time.perf_counter() - start))
        start = time.perf_counter()
        for record in records:
            decoder.decode(record)
        decode_rate = max(decode_rate, rate(len(records), time.perf_counter() - start))
    return encode_rate, decode_rate, records


async def timed(work: Callable[[], Awaitable[int]]) -> float:
    start = time.perf_counter()
    count = await work()
    return rate(count, time.perf_counter() - start)


async def measure_log(log: EventLog, events: list[Envelope], singles: int) -> dict[str, float]:
    async def append_batches() -> int:
        for i in range(0, len(events), 100):
            await log.append(events[i : i + 100])
        return len(events)

    async def append_singles() -> int:
        for envelope in events[:singles]:
            await log.append([envelope])
        return singles

    return {
        "append (batch 100)": await timed(append_batches),
        "append (batch 1)": await timed(append_singles),
        "read": max([await timed(lambda: read_all(log, len(events) + singles)) for _ in range(2)]),
    }


async def read_all(log: EventLog, appended: int) -> int:
    count, held = 0, await log.end_position()  # serve's log also holds its claim
    async for _ in log.read(0):
        count += 1
    assert count == held >= appended, (count, held)
    return count


RAW, RAW_MULTI = "raw sqlite3", "raw sqlite3 as the log inserts"
SLICE = 1_000  # events per slice of the SQLite measurement, in batches of 100 (singles: SLICE // 100)
PRAGMAS = ("journal_mode", "synchronous", "page_size", "cache_size", "busy_timeout")
# Not ``wal_autocheckpoint``: the raw file checkpoints at a commit every 1,000 pages (SQLite's
# default, 4 MiB), the log every ``CHECKPOINT_BYTES`` (4 MiB) on its write thread, the next append
# waiting behind it. Both checkpoint as often.


def pragmas(conn: sqlite3.Connection) -> dict[str, object]:
    return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS}


def raw_sqlite_connection(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A fresh file with the log's ``events`` table and the settings of the log's write connection."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    conn.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    return conn


def remove_files(path: str) -> None:
    """A round's file and its WAL, gone once measured (a round writes about 70 MB)."""
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


def write_connection(log: EventLog) -> SqliteLog:
    """The ``SqliteLog`` under ``serve``'s handles (or the log itself)."""
    while not isinstance(log, SqliteLog):
        log = log.inner  # type: ignore[attr-defined]
    return log


async def measure_sqlite(
    directory: str, events: list[Envelope], records: list[bytes], singles: int, turn: int
) -> dict[str, dict[str, float]]:
    """The raw inserts, ``open_log`` and ``serve``'s handles on fresh files, interleaved: slices of
    ``SLICE`` events (of ``SLICE // 100`` singles), each kind in turn, the order rotating from slice
    to slice, so that a busy moment on the shared machine falls on each alike.

    Two raw inserts: the limit, ``executemany`` of the records as ``encode`` gives them (``bytes``;
    batches and singles), and, for batches only, the records inserted as the log itself inserts
    them: the multi-row statements (``_insert_rows``) binding ``bytearray``, which sqlite3 binds
    without its adapter lookup (``codec.encode_batch``). The append's distance to the latter is
    what encoding costs, and a hop to the write thread where the append makes one."""
    kinds = [RAW, RAW_MULTI, "sqlite", "sqlite as serve"]
    paths = {kind: f"{directory}/{kind.replace(' ', '-')}-{turn}.db" for kind in kinds}
    conns: dict[str, sqlite3.Connection] = {}
    logs: dict[str, EventLog] = {}
    try:
        for kind in (RAW, RAW_MULTI):
            conns[kind] = raw_sqlite_connection(paths[kind], 30_000)
        logs["sqlite"] = open_log(f"sqlite://{paths['sqlite']}")
        await logs["sqlite"].start()
        logs["sqlite as serve"] = await serve_handles(f"sqlite://{paths['sqlite as serve']}")
        for log in logs.values():
            writer = write_connection(log)._writer
            assert writer is not None
            # The floor has the log's settings: a difference would make the ratio say nothing.
            settings = await writer.call(pragmas)
            assert settings == pragmas(conns[RAW]), (settings, pragmas(conns[RAW]))
        offset = {kind: 0 for kind in kinds}  # a raw file's next position; a log assigns its own
        arrays = [bytearray(record) for record in records]  # the log binds its records as bytearray

        async def insert(kind: str, start: int, stop: int, size: int) -> None:
            if kind in logs:
                log = logs[kind]
                for i in range(start, stop, size):
                    await log.append(events[i : i + size])
                return
            conn = conns[kind]
            for i in range(start, stop, size):
                batch = records[i : i + size] if kind == RAW else arrays[i : i + size]
                if size == 1:
                    conn.execute("INSERT INTO events (position, data) VALUES (?, ?)", (offset[kind], batch[0]))
                else:
                    conn.execute("BEGIN IMMEDIATE")
                    if kind == RAW:
                        conn.executemany("INSERT INTO events (position, data) VALUES (?, ?)", enumerate(batch, offset[kind]))
                    else:
                        _insert_rows(conn, offset[kind], batch)
                    conn.execute("COMMIT")
                offset[kind] += len(batch)

        seconds = {(kind, size): 0.0 for kind in kinds for size in (100, 1)}
        for size, total in ((100, len(events)), (1, singles)):
            step = SLICE if size == 100 else SLICE // 100
            taking = kinds if size == 100 else [kind for kind in kinds if kind != RAW_MULTI]
            for n, start in enumerate(range(0, total, step)):
                for kind in taking[n % len(taking) :] + taking[: n % len(taking)]:
                    began = time.perf_counter()
                    await insert(kind, start, min(start + step, total), size)
                    seconds[kind, size] += time.perf_counter() - began
        figures: dict[str, dict[str, float]] = {
            RAW: {
                "insert (batch 100)": rate(len(events), seconds[RAW, 100]),
                "insert (batch 1)": rate(singles, seconds[RAW, 1]),
            },
            RAW_MULTI: {"insert (batch 100)": rate(len(events), seconds[RAW_MULTI, 100])},
        }
        for kind, log in logs.items():
            figures[kind] = {
                "append (batch 100)": rate(len(events), seconds[kind, 100]),
                "append (batch 1)": rate(singles, seconds[kind, 1]),
                "read": max([await timed(lambda log=log: read_all(log, len(events) + singles)) for _ in range(2)]),
            }
        return figures
    finally:
        for conn in conns.values():
            conn.close()
        for log in logs.values():
            await log.stop()
        for path in paths.values():
            remove_files(path)


async def serve_handles(url: str) -> EventLog:
    """The log as ``serve`` appends to it: claimed and fenced, under the shared reader."""
    fenced = FencedLog(open_log(url), identity="bench")
    await fenced.start()
    await fenced.claim(0)
    return SharedReads(fenced)


async def measure_raw_kafka(bootstrap: str, records: list[bytes], singles: int) -> dict[str, float]:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)  # made, not left to auto-creation
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=False,
        max_batch_size=64 * 2**20, max_request_size=65 * 2**20,
    )
    await producer.start()
    try:
        async def produce_batches() -> int:
            for i in range(0, len(records), 100):
                builder = producer.create_batch()
                for record in records[i : i + 100]:
                    builder.append(key=None, value=record, timestamp=None)
                builder.close()
                await (await producer.send_batch(builder, topic, partition=0))
            return len(records)

        async def produce_singles() -> int:
            for record in records[:singles]:
                builder = producer.create_batch()
                builder.append(key=None, value=record, timestamp=None)
                builder.close()
                await (await producer.send_batch(builder, topic, partition=0))
            return singles

        produced = await timed(produce_batches)
        produced_one = await timed(produce_singles)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        fetch_max_bytes=64 * 2**20, max_partition_fetch_bytes=16 * 2**20, fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        async def consume() -> int:
            consumer.assign([tp])
            consumer.seek(tp, 0)
            count, total = 0, len(records) + singles
            while count < total:
                fetched = await consumer.getmany(tp, timeout_ms=100, max_records=10_000)
                count += len(fetched.get(tp, ()))
            return count

        consumed = max([await timed(consume), await timed(consume)])
    finally:
        await consumer.stop()
    return {"produce (batch 100)": produced, "produce (batch 1)": produced_one, "consume": consumed}


class UnframedKafkaLog(KafkaLog):
    """The Kafka log appending its records with no key and no headers, as it did before the
    framing: what an append costs without it."""

    async def append(self, batch: list[Envelope]) -> list[int]:  # type: ignore[override]
        return await self._send([record_tail(None, encode(e), []) for e in batch])


FRAMING_KINDS = ("raw produce", "raw produce with framing", "append without framing", "append", PADDED := "append padded")
SERVE_HANDLERS = {"PodRequested": "job-controller", "PodBound": "scheduler", "PodStarted": "sim"}


def as_decisions(events: list[Envelope]) -> list[Envelope]:
    """The events as ``serve`` appends them: each a decision answering a trigger (the job
    controller's pod requests, the scheduler's binds, the kubelet's starts), so ``ce_id`` is
    made from the causation instead of a digest of the record."""
    return [
        msgspec.structs.replace(e, causation=Causation(i - i % 3, SERVE_HANDLERS.get(e.type, "job-controller"), i % 3))
        for i, e in enumerate(events)
    ]


class Measured(NamedTuple):
    rate: float  # events per second (wall)
    client_us: float  # this process's CPU per event
    broker_us: float  # the broker's CPU per event (nan when the broker is not ours)


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (nan for None)."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure_kafka_framing(
    bootstrap: str, events: list[Envelope], broker_pid: int | None, compression: str | None = None
) -> dict[str, Measured]:
    """One round of the four kinds on fresh topics, interleaved ``SLICE`` events (batches of 100)
    at a time, the order rotating from slice to slice, every producer with the log's settings
    (``compression``: the log's default when None). Returns each kind's events per second and
    CPU per event of this process and of the broker."""
    name = uuid.uuid4().hex[:8]
    query = "" if compression is None else f"?compression={compression}"
    raw_topic, framed_raw_topic = f"bench-raw-{name}", f"bench-rawf-{name}"
    raw_log = open_log(f"kafka://{bootstrap}/{raw_topic}")  # makes the raw topics with the log's settings
    framed_raw_log = open_log(f"kafka://{bootstrap}/{framed_raw_topic}")
    framed = open_log(f"kafka://{bootstrap}/bench-framed-{name}{query}")
    assert isinstance(framed, KafkaLog)
    unframed = UnframedKafkaLog(bootstrap, f"bench-unframed-{name}", compression=framed.compression)
    padded = UnframedKafkaLog(bootstrap, f"bench-padded-{name}", compression=framed.compression)
    logs = [raw_log, framed_raw_log, unframed, framed, padded]
    for log in logs:
        await log.start()
    records = [encode(e) for e in events]
    framer = KafkaFraming(framed_raw_topic)
    framing = [framer(e, r) for e, r in zip(events, records, strict=True)]
    # each record padded with spaces (JSON whitespace) by what its key and headers add to it
    pads = [b" " * (len(framer.wire(e, r)) - len(record_tail(None, r, []))) for e, r in zip(events, records, strict=True)]
    producer = AIOKafkaProducer(  # the log's own producer settings (compression included)
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=False,
        compression_type=framed.compression, max_batch_size=framed.max_batch_bytes,
        max_request_size=framed.max_batch_bytes + 2**20,
    )
    await producer.start()
    try:
        async def produce(topic: str, start: int, stop: int, with_framing: bool) -> None:
            for i in range(start, stop, 100):
                builder = producer.create_batch()
                for j in range(i, min(i + 100, stop)):
                    if with_framing:
                        key, headers = framing[j]
                        builder.append(key=key, value=records[j], timestamp=None, headers=headers)
                    else:
                        builder.append(key=None, value=records[j], timestamp=None)
                builder.close()
                await (await producer.send_batch(builder, topic, partition=0))

        async def append(log: EventLog, start: int, stop: int) -> None:
            for i in range(start, stop, 100):
                await log.append(events[i : min(i + 100, stop)])

        async def append_padded(start: int, stop: int) -> None:
            for i in range(start, stop, 100):
                await padded._send([record_tail(None, encode(events[j]) + pads[j], []) for j in range(i, min(i + 100, stop))])

        work: dict[str, Callable[[int, int], Awaitable[None]]] = {
            "raw produce": lambda a, b: produce(raw_topic, a, b, False),
            "raw produce with framing": lambda a, b: produce(framed_raw_topic, a, b, True),
            "append without framing": lambda a, b: append(unframed, a, b),
            "append": lambda a, b: append(framed, a, b),
            PADDED: append_padded,
        }
        seconds, client, broker = (dict.fromkeys(FRAMING_KINDS, 0.0) for _ in range(3))
        for n, start in enumerate(range(0, len(events), SLICE)):
            turn = n % len(FRAMING_KINDS)
            order = FRAMING_KINDS[turn:] + FRAMING_KINDS[:turn]
            for kind in order:
                began, cpu, broker_cpu = time.perf_counter(), time.process_time(), process_cpu(broker_pid)
                await work[kind](start, min(start + SLICE, len(events)))
                seconds[kind] += time.perf_counter() - began
                client[kind] += time.process_time() - cpu
                broker[kind] += process_cpu(broker_pid) - broker_cpu
    finally:
        await producer.stop()
        for log in logs:
            await log.stop()
    per_event = 1e6 / len(events)
    return {
        kind: Measured(rate(len(events), seconds[kind]), client[kind] * per_event, broker[kind] * per_event)
        for kind in FRAMING_KINDS
    }


class _Delivered(NamedTuple):
    offset: int


class AnsweringAtOnce:
    """aiokafka's producer with a send that builds the record batch (compression and checksum
    included) and answers at once: the client's own work per event, without the broker and the
    network, which on a shared machine blur it."""

    client = None  # the log sends on the producer's client: ``produce`` stands in for it

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.offset = 0

    async def produce(self, client: object, data: bytes | bytearray) -> int:
        """The log's one produce request of a finished record batch, answered at once."""
        offset = self.offset
        self.offset += kafka_batch.HEADER.unpack_from(data)[-1]  # the batch's record count
        return offset

    def create_batch(self) -> Any:
        return self.producer.create_batch()

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> asyncio.Future[_Delivered]:
        builder._build()  # what aiokafka's sender does before it sends
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(_Delivered(self.offset))
        self.offset += builder.record_count()
        return delivered


async def measure_client_alone(bootstrap: str, events: list[Envelope], compression: str | None) -> dict[str, float]:
    """CPU per event (us, best of three passes) of each framing kind and of encoding alone, on
    ``AnsweringAtOnce``: the records built and compressed as for the broker, never sent."""
    records = [encode(e) for e in events]
    framer = KafkaFraming("bench")
    framing = [framer(e, r) for e, r in zip(events, records, strict=True)]
    framed, unframed = KafkaLog(bootstrap, "bench", compression=compression), UnframedKafkaLog(bootstrap, "bench", compression=compression)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=compression,
                                max_batch_size=framed.max_batch_bytes)  # never started: its batches only
    instant = AnsweringAtOnce(producer)
    for log in (framed, unframed):
        log._producer, log._stopped = instant, False  # the log's own send path, answered at once
        log._produce = instant.produce  # type: ignore[method-assign]

    async def produce(with_framing: bool) -> None:
        for i in range(0, len(events), 100):
            builder = instant.create_batch()
            for j in range(i, min(i + 100, len(events))):
                key, headers = framing[j] if with_framing else (None, [])
                builder.append(key=key, value=records[j], timestamp=None, headers=headers)
            builder.close()
            await (await instant.send_batch(builder, "bench", partition=0))

    async def append(log: EventLog) -> None:
        for i in range(0, len(events), 100):
            await log.append(events[i : i + 100])

    async def encode_all() -> None:
        for envelope in events:
            encode(envelope)

    work: dict[str, Callable[[], Awaitable[None]]] = {
        "encode": encode_all,
        "raw produce": lambda: produce(False),
        "raw produce with framing": lambda: produce(True),
        "append without framing": lambda: append(unframed),
        "append": lambda: append(framed),
    }
    best = dict.fromkeys(work, float("inf"))
    for _ in range(3):
        for kind, run_kind in work.items():
            began = time.process_time()
            await run_kind()
            best[kind] = min(best[kind], time.process_time() - began)
    await producer.stop()
    return {kind: seconds * 1e6 / len(events) for kind, seconds in best.items()}


def framing_lines(mix: str, measured: list[dict[str, Measured]]) -> list[str]:
    """The framing's figures of one mix: medians of the rounds, each round's ratio beside them."""
    median = {kind: statistics.median(r[kind].rate for r in measured) for kind in FRAMING_KINDS}
    out = [f"  {mix}:"]
    for label, over, under in (
        ("kafka append", "append", "raw produce"),
        ("kafka append without framing", "append without framing", "raw produce"),
        ("kafka append", "append", "append without framing"),
        ("raw aiokafka produce with framing", "raw produce with framing", "raw produce"),
        ("kafka append", "append", "raw produce with framing"),
        ("kafka append without framing, padded", PADDED, "append without framing"),
    ):
        per_round = " ".join(f"{r[over].rate / r[under].rate:.2f}" for r in measured)
        out.append(line(label, median[over], f"{under} (batch 100)", median[under]) + f"; rounds: {per_round}")
    cpu = ", ".join(
        f"{kind} {statistics.median(r[kind].client_us for r in measured):.1f}"
        + ("" if math.isnan(measured[0][kind].broker_us) else
           f" + {statistics.median(r[kind].broker_us for r in measured):.1f}")
        for kind in FRAMING_KINDS
    )
    out.append(f"  CPU per event, us (this process + the broker, median of rounds): {cpu}")
    return out


async def run(
    events_count: int, singles: int, rounds: int, bootstrap: str | None, compression: str | None = None,
    framing_only: bool = False,
) -> list[str]:
    events = mixed_batch("bench", events_count)
    size = sum(len(encode(e)) for e in events) / len(events)
    with tempfile.TemporaryDirectory() as directory, contextlib.ExitStack() as stack:
        broker_pid: int | None = None
        if bootstrap is None:
            broker = stack.enter_context(TansuBroker())
            assert broker._process is not None
            bootstrap, broker_pid = broker.bootstrap, broker._process.pid  # its CPU, read from /proc
        urls = {
            "memory": "memory://",
            "kafka": f"kafka://{bootstrap}/bench-{uuid.uuid4().hex[:8]}",
        }
        # Each limit of memory and Kafka is measured before and after the
        # backends and the best is kept, so a busy moment on the machine does
        # not lower a limit. SQLite's raw insert takes turns with its handles.
        if framing_only:
            return await framing_figures(events, rounds, bootstrap, broker_pid, compression)
        encode_rate, decode_rate, records = measure_codec(events)
        raw = await measure_raw_kafka(bootstrap, records, singles)
        measured = [await measure_sqlite(directory, events, records, singles, turn) for turn in range(rounds)]
        figures = {}
        for backend, url in urls.items():
            log = open_log(url)
            await log.start()
            try:
                figures[backend] = await measure_log(log, events, singles)
            finally:
                await log.stop()
        framing = await framing_figures(events, rounds, bootstrap, broker_pid, compression)
        raw_again = await measure_raw_kafka(bootstrap, records, singles)
        encode_again, decode_again, _ = measure_codec(events)
    encode_rate, decode_rate = max(encode_rate, encode_again), max(decode_rate, decode_again)
    raw = {name: max(value, raw_again[name]) for name, value in raw.items()}
    sqlite_rounds = {kind: [m[kind] for m in measured] for kind in measured[0]}
    raw_rounds = sqlite_rounds.pop(RAW)
    raw_sqlite = {name: statistics.median(r[name] for r in raw_rounds) for name in raw_rounds[0]}
    multi_rounds = sqlite_rounds.pop(RAW_MULTI)
    raw_multi = statistics.median(r["insert (batch 100)"] for r in multi_rounds)
    for backend, rounds_of in sqlite_rounds.items():
        figures[backend] = {name: statistics.median(r[name] for r in rounds_of) for name in rounds_of[0]}

    out = [
        f"{events_count:,} events (mean {size:,.0f} bytes encoded), appended in batches of 100, "
        f"then {singles:,} more one by one; read = the whole log (best of 2); "
        f"sqlite: interleaved with the raw insert {SLICE:,} events at a time, median of {rounds} round(s)",
        line("raw msgspec encode", encode_rate, "itself", encode_rate),
        line("raw msgspec decode", decode_rate, "itself", decode_rate),
    ]
    out += [line(f"raw sqlite3 {name}", value, "itself", value) for name, value in raw_sqlite.items()]
    out.append(line("raw sqlite3 multi-row insert (batch 100)", raw_multi, "raw sqlite3 insert (batch 100)",
                    raw_sqlite["insert (batch 100)"]))
    out += [line(f"raw aiokafka {name}", value, "itself", value) for name, value in raw.items()]
    for backend in ["memory", "sqlite", "sqlite as serve", "kafka"]:
        for name, value in figures[backend].items():
            label = f"{backend} {name}"
            if name == "read":
                out.append(line(label, value, "raw msgspec decode", decode_rate))
            else:
                out.append(line(label, value, "raw msgspec encode", encode_rate))
            if backend.startswith("sqlite") and name != "read":
                limit = name.replace("append", "insert")
                each = [r[name] / f[limit] for r, f in zip(sqlite_rounds[backend], raw_rounds, strict=True)]
                out.append(
                    line(label, value, f"raw sqlite3 {limit}", raw_sqlite[limit])
                    + f"; rounds: {' '.join(f'{x:.2f}' for x in each)}"
                )
                if name == "append (batch 100)":
                    out.append(line(label, value, "raw sqlite3 multi-row insert", raw_multi))
            if backend == "kafka":
                limit = {"read": "consume"}.get(name, name.replace("append", "produce"))
                out.append(line(label, value, f"raw aiokafka {limit}", raw[limit]))
    out += framing
    return out


async def framing_figures(
    events: list[Envelope], rounds: int, bootstrap: str, broker_pid: int | None, compression: str | None
) -> list[str]:
    """The Kafka framing's figures: the four kinds interleaved, ``rounds`` times, on half the
    events twice, as clients append them (requests and observations, whose ce_id is a digest
    of the record) and as serve's handlers do (decisions, whose ce_id is their causation), the
    two mixes taking turns round by round; then the client's CPU alone."""
    half = events[: max(len(events) // 2, SLICE)]
    mixes = {"client records (ce_id a digest)": half, "decisions (ce_id from the causation)": as_decisions(half)}
    framing_rounds: dict[str, list[dict[str, Measured]]] = {mix: [] for mix in mixes}
    for _ in range(rounds):
        for mix, input_events in mixes.items():
            framing_rounds[mix].append(await measure_kafka_framing(bootstrap, input_events, broker_pid, compression))
    alone = {mix: await measure_client_alone(bootstrap, input_events, compression) for mix, input_events in mixes.items()}
    out: list[str] = []
    out.append(
        f"kafka framing (keys and CloudEvents headers), batches of 100, interleaved {SLICE:,} events at a time, "
        f"{len(half):,} events of each mix, compression {compression or 'none'}, median of {rounds} round(s); "
        f"the goal is kafka append >= 0.90 x raw produce:"
    )
    for mix, mix_rounds in framing_rounds.items():
        out += framing_lines(mix, mix_rounds)
        client = alone[mix]
        out.append(
            "  the client alone (the records built and compressed, a send answering at once), CPU per event, "
            "best of 3: " + ", ".join(f"{kind} {us:.2f} us" for kind, us in client.items())
            + f"; the framing adds {client['append'] - client['append without framing']:.2f} us to an append, "
            f"writing precomputed headers {client['raw produce with framing'] - client['raw produce']:.2f} us to raw produce"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events appended in batches of 100")
    parser.add_argument("--singles", type=int, default=2_000, help="events appended one per batch")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the SQLite raw insert and handles, taken in turn"
    )
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="use this broker instead of starting tansu")
    parser.add_argument(
        "--compression", choices=("gzip", "snappy", "lz4", "zstd"),
        help="measure the Kafka framing with this producer compression (default: the log's, none)",
    )
    parser.add_argument(
        "--framing-only", action="store_true",
        help="measure only the Kafka framing (append against raw produce), not the backends",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    for text in asyncio.run(
        run(args.events, args.singles, args.rounds, args.kafka, args.compression, args.framing_only)
    ):
        print(text, flush=True)
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
