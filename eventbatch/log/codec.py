"""Wire format of a log record, shared by every backend.

Where it sits: between the ``EventLog`` backends and everything that reads
the log. A record is the JSON of the envelope without its position (the log
assigns that). Decoding is in two steps so that a bad payload never hides
the rest: the header first (payload kept raw), then the payload by its tag.

- a tag this build does not know (written by a newer version) -> ``Unknown``:
  skipped and counted by the reader;
- anything that cannot be decoded -> ``Undecodable``: quarantined with its
  position by the reader, which then goes on;
- a record of log format 1 (``schemas.events.FORMAT_1``: a request under its
  old name) -> ``FormatError``: the log predates the split of requests and
  facts and cannot be read with today's meaning.

``header`` reads a record's envelope with the payload left raw, for a tool
that frames records it appends as they are (``eventbatch.log.cloudevents``).

Encoding refuses a record larger than ``MAX_RECORD_BYTES`` (2 MiB, the same
on every backend) with ``RecordTooLarge``; every backend encodes a whole
batch before it writes any of it, so nothing of such a batch is appended.
``encode_batch`` encodes a batch into one buffer, each record byte for byte
what ``encode`` gives, as ``bytearray`` (which sqlite3 binds without looking
it up in its adapters: the SQLite backend appends these).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from schemas.envelope import Envelope, encode_record, encode_records_into
from schemas.events import FORMAT_1, REGISTRY


class _Header(Envelope, frozen=True, kw_only=True):
    """The record with its payload kept raw, for the two-step path: says what is wrong with one."""

    payload: msgspec.Raw  # type: ignore[assignment]  # the envelope's field kept undecoded: a narrowed type is this header's point


class Unknown(msgspec.Struct, frozen=True):
    """A well-formed record whose event type this build does not know."""

    position: int
    type: str


class Undecodable(msgspec.Struct, frozen=True):
    """A record that cannot be decoded; it goes to quarantine."""

    position: int
    error: str
    data: bytes


class FormatError(ValueError):
    """The log was written in a format this build does not read (log format 1)."""

    def __init__(self, position: int, tag: str) -> None:
        super().__init__(
            f"the record at position {position} ({tag}) is of log format 1 (eventbatch 0.1), where "
            f"requests were folded as facts; this log cannot be read with today's meaning. Keep it "
            f"for the record and start a new log"
        )
        self.position = position
        self.tag = tag


Decoded = Envelope | Unknown | Undecodable

_header_decoder = msgspec.json.Decoder(_Header)
_payload_decoders = {tag: msgspec.json.Decoder(cls) for tag, cls in REGISTRY.items()}
_whole_decoder = msgspec.json.Decoder(Envelope)
_set = msgspec.structs.force_setattr
_asdict = msgspec.structs.asdict


MAX_RECORD_BYTES = 2 * 2**20
"""The largest record any backend takes: room for the largest object a manifest may hold (1 MiB
as JSON) and its envelope; far above what any event needs (a pod request with a full GPU pod
manifest is about 2 KB). A Kafka topic must allow messages of this size (``max.message.bytes``;
the log's own topics are made with ``max_batch_bytes``, 8 MiB by default)."""


class RecordTooLarge(ValueError):
    """An event whose record exceeds ``MAX_RECORD_BYTES``; nothing of its batch was appended."""

    def __init__(self, envelope: Envelope, size: int) -> None:
        super().__init__(
            f"the {envelope.type} record of {envelope.key!r} is {size:,} bytes; a log record holds at most "
            f"{MAX_RECORD_BYTES:,} bytes (MAX_RECORD_BYTES); nothing of its batch was appended"
        )
        self.size = size


def encode(envelope: Envelope) -> bytes:
    data = encode_record(envelope)
    if len(data) > MAX_RECORD_BYTES:
        raise RecordTooLarge(envelope, len(data))
    return data


def encode_batch(batch: Sequence[Envelope]) -> list[bytearray]:
    """The records of ``batch``, each byte for byte what ``encode`` gives, encoded into one buffer
    and cut from it: about a tenth less than encoding each on its own. A ``bytearray`` because
    sqlite3 binds one as it is, where it looks each ``bytes`` or view up in its adapters first
    (about a fifth of inserting a record); any other consumer reads the same bytes."""
    buffer = bytearray()
    ends = encode_records_into(batch, buffer)
    start, records = 0, []
    for envelope, end in zip(batch, ends, strict=True):
        if end - start > MAX_RECORD_BYTES:
            raise RecordTooLarge(envelope, end - start)
        records.append(buffer[start:end])
        start = end
    return records


def decode(position: int, data: bytes) -> Decoded:
    # Fast path: one pass for a well-formed record of a known type. Anything
    # else (unknown tag, bad payload, header and payload tags that differ)
    # takes the two-step path, which says exactly what is wrong.
    try:
        envelope = _whole_decoder.decode(data)  # ``schemas.envelope.decode_record`` written out
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    else:
        if type(envelope.payload).__name__ == envelope.type and envelope.version == envelope.payload.VERSION:
            _set(envelope, "position", position)  # made here, not seen by anyone yet
            return envelope
    return _decode_in_two_steps(position, data)


def header(data: bytes) -> Envelope | None:
    """The envelope of a record with its payload left undecoded (``msgspec.Raw``), or None if
    not even that can be read: what a tool needs to frame a record it appends as it is
    (``append_raw``), whatever its event type."""
    try:
        return _header_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _decode_in_two_steps(position: int, data: bytes) -> Decoded:
    try:
        header = _header_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Undecodable(position, f"envelope: {exc}", bytes(data))
    if (header.type, header.version) in FORMAT_1:
        raise FormatError(position, header.type)
    decoder = _payload_decoders.get(header.type)
    if decoder is None:
        return Unknown(position, header.type)
    try:
        payload = decoder.decode(header.payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Undecodable(position, f"payload {header.type}: {exc}", bytes(data))
    return Envelope(**{**_asdict(header), "payload": payload, "position": position})
