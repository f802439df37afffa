"""The Kafka log's own record batches (``eventbatch.log.kafka_batch``) and its framing's wire
form (``KafkaFraming.wire``): the bytes aiokafka's builder writes for the same records, read
back by aiokafka's reader with keys, values, headers, offsets and checksum, cut where aiokafka
cuts, and the headers of every event type the ones ``KafkaFraming`` (and so ``attributes``)
gives."""

from __future__ import annotations

import hashlib

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch, _DefaultRecordBatchBuilderPy
from aiokafka.record.util import encode_varint

from eventbatch.log import kafka_batch
from eventbatch.log.cloudevents import KafkaFraming
from eventbatch.log.codec import encode
from schemas.envelope import Causation, Envelope
from schemas.events import REGISTRY
from tests.contract.test_cloudevents_rules import _minimal
from tests.support.events import mixed_batch

AT = 1_767_225_600_123
CODES = {None: 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def sample_records(count: int) -> list[Record]:
    """Records of every length class: null and empty keys, values across the one- to three-byte
    varints and past the lookup table, no headers to several."""
    records: list[Record] = []
    for i in range(count):
        key = None if i % 5 == 0 else b"" if i % 7 == 0 else f"job/ns/{i}".encode()
        value = bytes([i % 251]) * ((i * 97) % 300 + (20_000 if i % 33 == 0 else 0))
        headers = [(f"h{j}", b"v" * (i * j % 70)) for j in range(i % 4)]
        records.append((key, value, headers))
    return records


def aiokafka_batch(records: list[Record], compression: str | None, size: int = 2**30) -> bytes:
    builder = BatchBuilder(size, CODES[compression])
    for key, value, headers in records:
        assert builder.append(key=key, value=value, timestamp=AT, headers=headers) is not None
    return bytes(builder._build())


def read_back(data: bytes) -> list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    batch = DefaultRecordBatch(bytearray(data))
    assert batch.validate_crc(), "the checksum does not match"
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]


@pytest.mark.parametrize("compression", [None, "zstd", "lz4", "snappy"])
def test_a_batch_is_the_bytes_aiokafka_writes_for_the_same_records(compression: str | None) -> None:
    records = sample_records(300)
    ours = kafka_batch.build([kafka_batch.record_tail(*r) for r in records], compression, AT)
    assert bytes(ours) == aiokafka_batch(records, compression)


@pytest.mark.parametrize("compression", [None, "gzip", "zstd", "lz4", "snappy"])
def test_aiokafka_reads_every_record_back_with_its_offset_key_value_and_headers(compression: str | None) -> None:
    records = sample_records(1100)  # offset deltas past the table of record starts
    data = bytes(kafka_batch.build([kafka_batch.record_tail(*r) for r in records], compression, AT))
    assert read_back(data) == [(i, AT, *r) for i, r in enumerate(records)]
    expected = CODES[compression] if compression != "snappy" else 2
    assert DefaultRecordBatch(bytearray(data)).compression_type == expected


def test_a_batch_that_compression_does_not_shrink_goes_uncompressed_as_aiokafka_sends_it() -> None:
    noise = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(16))  # gzip makes it larger
    ours = bytes(kafka_batch.build([kafka_batch.record_tail(None, noise, [])], "gzip", AT))
    assert DefaultRecordBatch(bytearray(ours)).compression_type == 0
    assert read_back(ours) == [(0, AT, None, noise, [])]


@pytest.mark.parametrize("limit", [155, 1_000, 5_000, 64_000, 2**20])
def test_batches_are_cut_where_aiokafkas_builder_says_it_is_full(limit: int) -> None:
    """aiokafka's Python builder: a batch is full when the next record would take it past the
    limit (its C builder stops one byte short of it; a broker takes a batch of the limit)."""
    records = sample_records(400) + [(None, b"x" * 40, [])] * 3  # 47 bytes each: 61 + 2 * 47 = 155
    cuts, start = [], 0
    builder = _DefaultRecordBatchBuilderPy(2, 0, 0, -1, -1, 0, limit)
    for i, (key, value, headers) in enumerate(records):
        if builder.append(i - start, AT, key, value, headers) is None:
            cuts.append((start, i))
            builder, start = _DefaultRecordBatchBuilderPy(2, 0, 0, -1, -1, 0, limit), i
            builder.append(0, AT, key, value, headers)
    cuts.append((start, len(records)))
    tails = [kafka_batch.record_tail(*r) for r in records]
    assert kafka_batch.cut(tails, limit) == cuts
    for first, stop in cuts:  # each part as large as aiokafka's, and within the limit unless alone
        built = kafka_batch.build(tails[first:stop], None, AT)
        assert len(built) == len(aiokafka_batch(records[first:stop], None))
        assert len(built) <= limit or stop == first + 1
        assert kafka_batch.OVERHEAD + sum(kafka_batch.record_size(t, i) for i, t in enumerate(tails[first:stop])) \
            == len(built)
    if limit == 155:
        assert cuts[-1] == (len(records) - 1, len(records)), "a batch of exactly the limit was cut"


def test_varints_are_kafkas_at_every_boundary() -> None:
    for n in [0, 1, 63, 64, 8191, 8192, kafka_batch.TABLE - 1, kafka_batch.TABLE, 2**20, 2**31 - 1, -1, -64, -65]:
        out = bytearray()
        encode_varint(n, out.append)
        assert kafka_batch.varint(n) == bytes(out), n
        if 0 <= n:
            assert kafka_batch.length(n) == bytes(out), n


def variants(tag: str) -> list[Envelope]:
    cls = REGISTRY[tag]
    payload = _minimal(cls)
    return [
        Envelope(type=tag, key=payload.key(), recorded_at=1_767_225_600_999, payload=payload, version=cls.VERSION),
        Envelope(type=tag, key=payload.key(), recorded_at=1_767_225_601_000, payload=payload, version=cls.VERSION,
                 causation=Causation(12, "job-controller", 3), correlation="ns/x"),
        Envelope(type=tag, key=payload.key(), recorded_at=1_767_225_601_500, payload=payload, version=cls.VERSION,
                 causation=Causation(12, "scheduler"), epoch=5, correlation="ns/y"),
        Envelope(type=tag, key="other", recorded_at=-1, payload=payload, version=cls.VERSION + 1),
        Envelope(type=tag, key=payload.key(), recorded_at=0, payload=payload, version=cls.VERSION),
        Envelope(type=tag, key=payload.key(), recorded_at=253_402_300_800_000, payload=payload, version=cls.VERSION),
    ]


@pytest.mark.parametrize("tag", sorted(REGISTRY))
def test_the_wire_form_carries_the_key_and_headers_of_the_framing_for_every_event_type(tag: str) -> None:
    """``wire`` (what the log sends) and ``__call__`` (held to ``attributes`` by the contract
    tests) give one key and one list of headers, whatever each reuses from record to record."""
    wire, framing = KafkaFraming("events"), KafkaFraming("events")
    envelopes = variants(tag)
    for envelope in envelopes + envelopes[:2]:  # again: made once, reused
        record = encode(envelope)
        key, headers = framing(envelope, record)
        assert wire.wire(envelope, record) == kafka_batch.record_tail(key, record, headers)


def test_a_batch_of_framed_traffic_reads_back_as_the_framing_says() -> None:
    events = mixed_batch("traffic", 250, start=3)
    framing = KafkaFraming("events")
    records = [encode(e) for e in events]
    data = bytes(kafka_batch.build([framing.wire(e, r) for e, r in zip(events, records, strict=True)], None, AT))
    expected = [(i, AT, *framing(e, r)[:1], r, framing(e, r)[1]) for i, (e, r) in enumerate(zip(events, records, strict=True))]
    assert read_back(data) == expected


def test_a_prebuilt_batch_takes_no_more_records_and_no_producer_state() -> None:
    data = kafka_batch.build([kafka_batch.record_tail(b"k", b"v", [])], None, AT)
    batch = kafka_batch.Prebuilt(data, 1)
    assert batch.closed() and batch.append(key=b"k", value=b"w", timestamp=None) is None
    assert (batch.record_count(), batch.size(), batch._build()) == (1, len(data), data)
    with pytest.raises(TypeError):
        batch._set_producer_state(1, 0, 0)
