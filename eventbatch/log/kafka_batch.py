"""Kafka record batches (v2, magic 2) built whole, for the Kafka log's appends.

Where it sits: under ``eventbatch.log.kafka``'s ``append``. The log frames
each record (``eventbatch.log.cloudevents.KafkaFraming.wire``: key, value and
CloudEvents headers already in their wire form, made of pieces kept from
record to record); this module puts the records of one append into record
batches as finished buffers (``Prebuilt``: the log sends its ``data`` as one
produce request; aiokafka's ``send_batch`` also takes it as it takes its own
batch builder), instead of aiokafka's builder encoding every record and
header field by field.

The bytes are what aiokafka's own builder writes for the same records
(``tests/unit/test_kafka_batch.py`` holds them equal byte for byte): base
offset 0, partition leader epoch -1, no producer id (-1, epoch -1, base
sequence 0), every record with the batch's one timestamp (the wall clock when
the batch is made, as the producer stamps a record it is given without one)
and offset delta = its index, CRC-32C over the batch from its attributes on.
A compressed log (``?compression=``) compresses the records with aiokafka's
own codec functions, and sends them uncompressed when that is no smaller, as
aiokafka does. A batch is cut where aiokafka's builder would cut it: a
record goes into a batch if the batch's uncompressed size stays within
``max_batch_bytes``, or if it is the batch's first.

CRC-32C comes from the ``crc32c`` package (hardware instructions where the
CPU has them), else from aiokafka's own C implementation.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Sequence

from aiokafka import codec as _codec

try:
    from crc32c import crc32c as _crc32c_from

    def _crc(data: memoryview) -> int:
        return int(_crc32c_from(data))
except ImportError:  # pragma: no cover - the dependency is declared; aiokafka's own is the fallback
    from aiokafka.record.util import calc_crc32c as _calc_crc32c

    def _crc(data: memoryview) -> int:
        return int(_calc_crc32c(data))

HEADER = struct.Struct(">qiibIhiqqqhii")
"""base offset, length, partition leader epoch, magic, CRC, attributes, last offset delta,
first timestamp, max timestamp, producer id, producer epoch, base sequence, record count."""
OVERHEAD = HEADER.size  # 61 bytes before the first record
_CRC_FROM = struct.calcsize(">qiibI")  # the CRC covers the batch from the attributes on
_CRC_AT = struct.calcsize(">qiib")
_LENGTH_FROM = struct.calcsize(">qi")  # the batch length counts from the leader epoch on

CODECS: dict[str | None, tuple[int, Callable[[bytes], bytes] | None]] = {
    None: (0, None),
    "gzip": (1, _codec.gzip_encode),
    "snappy": (2, _codec.snappy_encode),
    "lz4": (3, _codec.lz4_encode),
    "zstd": (4, _codec.zstd_encode),
}
"""Each producer compression: the batch's codec attribute and aiokafka's function for it."""


def _unsigned_varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint(n: int) -> bytes:
    """``n`` as a Kafka (zig-zag) varint."""
    return _unsigned_varint((n << 1) ^ (n >> 63))


TABLE = 1 << 14
VARINTS: list[bytes] = [varint(n) for n in range(TABLE)]
"""``varint(n)`` for ``0 <= n < TABLE``: lengths and offset deltas looked up, not computed."""
NULL = varint(-1)  # the length of a null key or value


def length(n: int) -> bytes:
    """The varint of a length (a table lookup for one below ``TABLE``)."""
    return VARINTS[n] if n < TABLE else varint(n)


def header(name: str, value: bytes) -> bytes:
    """One record header in its wire form: name length, name, value length, value."""
    raw = name.encode()
    return length(len(raw)) + raw + length(len(value)) + value


def record_tail(key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> bytes:
    """A record after its offset delta (key, value, headers), from plain parts: for a record the
    log does not frame (``KafkaFraming.wire`` makes the framed ones)."""
    size = len(value)
    parts = [NULL if key is None else length(len(key)) + key, VARINTS[size] if size < TABLE else varint(size), value,
             length(len(headers))]
    for name, data in headers:
        parts.append(header(name, data))
    return b"".join(parts)


_MOST_ADDED = 2 + 5 + 5  # a record's bytes besides its tail: attributes, timestamp delta, offset delta, length


def record_size(tail: bytes, index: int) -> int:
    """The bytes the record with ``tail`` takes as the ``index``-th of a batch."""
    body = 2 + len(VARINTS[index] if index < TABLE else varint(index)) + len(tail)
    return body + len(length(body))


def cut(tails: Sequence[bytes], max_batch_bytes: int) -> list[tuple[int, int]]:
    """Where the records go: ``(start, stop)`` of each batch, in order. A record goes into the
    current batch if the batch stays within ``max_batch_bytes``, or if it would be its first
    (which the caller refuses when ``batch_size`` says it is too large)."""
    if OVERHEAD + sum(map(len, tails)) + _MOST_ADDED * len(tails) <= max_batch_bytes:
        return [(0, len(tails))]  # the usual case: it fits, whatever each record's varints take
    parts: list[tuple[int, int]] = []
    start, size = 0, OVERHEAD
    lookup = VARINTS
    for i, tail in enumerate(tails):
        index = i - start
        body = 2 + len(lookup[index] if index < TABLE else varint(index)) + len(tail)
        grown = size + body + len(lookup[body] if body < TABLE else varint(body))
        if grown > max_batch_bytes and index > 0:
            parts.append((start, i))
            start = i
            body = 3 + len(tail)
            grown = OVERHEAD + body + len(lookup[body] if body < TABLE else varint(body))
        size = grown
    parts.append((start, len(tails)))
    return parts


def build(tails: Sequence[bytes], compression: str | None = None, timestamp_ms: int | None = None) -> bytearray:
    """One record batch holding the records of ``tails`` (each ``record_tail``'s or ``wire``'s), their
    offset deltas their indexes, stamped with ``timestamp_ms`` (now when None)."""
    if timestamp_ms is None:
        timestamp_ms = int(time.time() * 1000)
    lookup, starts = VARINTS, _STARTS
    parts: list[bytes] = [_ROOM]  # the header's room: the batch is joined once, its header written into it
    add = parts.extend
    for index, tail in enumerate(tails):
        start = starts[index] if index < _STARTS_MADE else b"\x00\x00" + varint(index)
        body = len(start) + len(tail)
        add((lookup[body] if body < TABLE else varint(body), start, tail))
    batch = bytearray().join(parts)
    attributes, compress = CODECS[compression]
    if compress is not None:
        records = bytes(memoryview(batch)[OVERHEAD:])
        compressed = compress(records)
        if len(compressed) < len(records):
            del batch[OVERHEAD:]
            batch += compressed
        else:
            attributes = 0  # no smaller: sent as it is, as aiokafka's builder does
    count = len(tails)
    HEADER.pack_into(batch, 0, 0, len(batch) - _LENGTH_FROM, -1, 2, 0, attributes, count - 1,
                     timestamp_ms, timestamp_ms, -1, -1, 0, count)
    _CRC.pack_into(batch, _CRC_AT, _crc(memoryview(batch)[_CRC_FROM:]))
    return batch


_ROOM = bytes(OVERHEAD)
_CRC = struct.Struct(">I")
_STARTS_MADE = 1024
_STARTS = [b"\x00\x00" + varint(index) for index in range(_STARTS_MADE)]  # a record's attributes, timestamp
# delta (0: one timestamp per batch) and offset delta, by its index in the batch


class Prebuilt:
    """A finished record batch in the shape of aiokafka's ``BatchBuilder``, for
    ``AIOKafkaProducer.send_batch``: closed, holding ``count`` records, its buffer ``data``.
    It cannot carry an idempotent or transactional producer's state (the log uses neither)."""

    __slots__ = ("data", "count")

    def __init__(self, data: bytes | bytearray, count: int) -> None:
        self.data = data
        self.count = count

    def append(self, **_: object) -> None:
        return None  # closed: takes no more records

    def close(self) -> None:
        pass

    def closed(self) -> bool:
        return True

    def record_count(self) -> int:
        return self.count

    def size(self) -> int:
        return len(self.data)

    def _build(self) -> bytes | bytearray:
        return self.data

    def _set_producer_state(self, producer_id: int, producer_epoch: int, base_sequence: int) -> None:
        raise TypeError("a prebuilt record batch has no producer state (idempotence and transactions are off)")
