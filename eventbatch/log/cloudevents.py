"""The standard framing of a log record: its key and its CloudEvents attributes.

Where it sits: between the log codec (``eventbatch.log.codec``, the record's
bytes) and whoever reads the log without eventbatch. The Kafka backend
writes the key and the attributes on every record it appends (the Kafka
record key, and CloudEvents Kafka binary-mode headers: ``ce_specversion``,
``ce_id``, ``ce_source``, ``ce_type``, ``ce_time``, ``ce_subject``,
``content-type``, and the extension attributes ``ce_causation`` and
``ce_correlation``); the record's value, the payload bytes, is the same JSON
every backend stores. ``read_framed`` gives every record's key and
attributes on every backend: read from the headers on Kafka, computed here
from the envelope and the record on SQLite and memory (and for a Kafka record
appended before the framing existed, which has none); both are the same
values, because the Kafka backend writes what this module computes.

Everything is derived from the record itself, never from a clock, a random
number or the position (unknown before the append):

- key and ``subject``: ``<family>/<envelope key>``, the object the event is
  about (``job/ns/name``, ``pod/ns/name``, ``queue/name``, ``node/name``...).
  ``subject_of`` is the one rule, one family per event family: the family is
  named after the event's key field (``Event.KEY``), except where the field
  name does not say what the object is (``FAMILIES_BY_TYPE``,
  ``FAMILIES_BY_FIELD``). An event type this build does not know (a newer
  writer, appended with ``append_raw``) keeps its envelope key as it is.
- ``id``: unique within its source, the same whenever the record is read
  again, from any backend. A decision (a record with causation) is known by
  what it answers: ``<trigger position>-<index>`` (``12-0``, the first event
  the source's handler decided for the trigger at position 12), with
  ``-<epoch>`` added when a pipeline writer stamped one (``12-0-5``), so that
  two writers' answers to one trigger are two events. A record without
  causation (a request, an observation) is known by its bytes: the first 128
  bits of their SHA-256, in hex (32 digits). Either way, a batch stored twice
  by a producer retry has the same ids twice: the duplicate a CloudEvents
  consumer may drop.
- ``source``: ``eventbatch://<log>/<handler>``: the log's name (the Kafka
  topic; an SQLite file's name without its extension, so ``events.db`` and
  the topic ``events`` are one source; ``memory``) and the handler whose
  decision the record is (its causation), or ``client`` for a record without
  causation (requests from the command line, the kube watch's observations).
- ``type``: ``io.eventbatch.<EventType>.v<version>``.
- ``time``: ``recorded_at`` as RFC 3339 UTC with milliseconds
  (``2026-01-01T00:00:00.000Z``; a simulation's virtual clock starts in 1970).
- ``causation``: the envelope's causation as compact JSON (``{"position":12,
  "handler":"job-controller","index":1}``: the trigger's position is its
  Kafka offset); left out for a record without causation.
- ``correlation``: the envelope's correlation (the job or queue the event
  belongs to, ``ns/name``); left out when empty. Extension attribute names
  are lower-case letters and digits, as the CloudEvents specification
  requires.
"""

from __future__ import annotations

import binascii
import hashlib
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote

import msgspec

from eventbatch.log import kafka_batch
from eventbatch.log.codec import decode
from schemas.envelope import Causation, Envelope
from schemas.events import REGISTRY

if TYPE_CHECKING:  # pragma: no cover
    from eventbatch.log.port import EventLog

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
TYPE_PREFIX = "io.eventbatch."
CLIENT = "client"  # the source's component for a record that answers no trigger

FAMILIES_BY_FIELD: dict[str, str] = {
    "job": "job",
    "queue": "queue",
    "node": "node",
    "pod": "pod",
    "podgroup": "podgroup",
    "cronjob": "cronjob",
    "hypernode": "hypernode",
    "jobflow": "jobflow",
    "template": "jobtemplate",
    "timer": "timer",
    "scheduler": "scheduler",
    "handler": "handler",
    "identity": "writer",
}
"""The family of an event keyed by this field (``Event.KEY``)."""

FAMILIES_BY_TYPE: dict[str, str] = {
    "ServiceRequested": "service",
    "ServiceDeletionRequested": "service",
    "ConfigMapRequested": "configmap",
    "ConfigMapDeletionRequested": "configmap",
    "SecretRequested": "secret",
    "SecretDeletionRequested": "secret",
    "PriorityClassAdded": "priorityclass",
    "PriorityClassRemoved": "priorityclass",
    "RuntimeClassAdded": "runtimeclass",
    "RuntimeClassRemoved": "runtimeclass",
}
"""Event types keyed by a field named ``name``: the family says which object it names."""


def family_of(tag: str) -> str | None:
    """The family of the event type ``tag`` (None for a type this build does not know)."""
    cls = REGISTRY.get(tag)
    if cls is None:
        return None
    return FAMILIES_BY_TYPE.get(tag) or FAMILIES_BY_FIELD.get(cls.KEY) or cls.KEY


_PREFIX: dict[str, str] = {tag: f"{family_of(tag)}/" for tag in REGISTRY}


def subject_of(tag: str, key: str) -> str:
    """The key of a record of type ``tag`` whose envelope key is ``key``: ``<family>/<key>``."""
    prefix = _PREFIX.get(tag)
    return key if prefix is None else prefix + key


class Attributes(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A record's CloudEvents context attributes (the data is the record itself)."""

    specversion: str
    id: str
    source: str
    type: str
    time: str
    subject: str
    datacontenttype: str
    causation: str = ""  # extension attribute; absent for a record without causation
    correlation: str = ""  # extension attribute; absent when the envelope has none


class Framed(NamedTuple):
    """An event as ``read_framed`` gives it: the envelope, its key and its attributes.

    ``carried`` is True when the attributes are the record's own (Kafka headers), False when
    they were computed from the envelope (SQLite, memory, a Kafka record without headers)."""

    envelope: Envelope
    key: str
    attributes: Attributes
    carried: bool


class StoredRecord(bytes):
    """A record's bytes as a backend stored them, with the Kafka key and headers it carries."""

    key: bytes | None
    headers: Sequence[tuple[str, bytes]]


def record_id(envelope: Envelope, record: bytes) -> str:
    """The ``id`` of ``record``, whose envelope is ``envelope`` (see the module's docstring)."""
    cause = envelope.causation
    if cause is None:
        return hashlib.sha256(record).hexdigest()[:32]
    if envelope.epoch:
        return f"{cause.position}-{cause.index}-{envelope.epoch}"
    return f"{cause.position}-{cause.index}"


_last_second: list[tuple[int, str]] = [(-1 << 62, "")]  # one tuple, replaced whole: safe across threads


def rfc3339(ms: int) -> str:
    """``ms`` (milliseconds since the epoch) as RFC 3339 UTC with milliseconds."""
    seconds, millis = divmod(ms, 1000)
    last = _last_second[0]
    if last[0] != seconds:  # records of one second share the formatting
        last = _last_second[0] = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{last[1]}.{millis:03d}Z"


def log_name(log: object) -> str:
    """The name of a log in a source: its Kafka topic, its SQLite file's name without the
    extension, or ``memory``, of the backend under any wrapper."""
    while (inner := getattr(log, "inner", None)) is not None:
        log = inner
    topic = getattr(log, "topic", None)
    if isinstance(topic, str):
        return topic
    path = getattr(log, "path", None)
    if isinstance(path, Path):
        return path.stem
    return "memory"


class Sources:
    """``eventbatch://<log>/<handler>`` for one log, each made once."""

    def __init__(self, log: str) -> None:
        self.base = f"eventbatch://{quote(log, safe='')}/"
        self._made: dict[str, str] = {}

    def __call__(self, handler: str) -> str:
        source = self._made.get(handler)
        if source is None:
            source = self._made[handler] = self.base + quote(handler, safe="")
        return source


_types: dict[tuple[str, int], str] = {}
_causation_encoder = msgspec.json.Encoder()


def _type(tag: str, version: int) -> str:
    made = _types.get((tag, version))
    if made is None:
        made = _types[tag, version] = f"{TYPE_PREFIX}{tag}.v{version}"
    return made


def attributes(envelope: Envelope, record: bytes, sources: Sources) -> Attributes:
    """The attributes of ``record``, whose envelope is ``envelope``."""
    cause = envelope.causation
    return Attributes(
        specversion=SPECVERSION,
        id=record_id(envelope, record),
        source=sources(cause.handler if cause is not None else CLIENT),
        type=_type(envelope.type, envelope.version),
        time=rfc3339(envelope.recorded_at),
        subject=subject_of(envelope.type, envelope.key),
        datacontenttype=CONTENT_TYPE,
        causation=_causation(cause),
        correlation=envelope.correlation,
    )


def _causation(cause: Causation | None) -> str:
    return "" if cause is None else _causation_encoder.encode(cause).decode()


_SPECVERSION_HEADER = ("ce_specversion", SPECVERSION.encode())
_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
_MILLIS = [f".{millis:03d}Z".encode() for millis in range(1000)]  # the end of a ce_time, by millisecond
_CORRELATIONS_KEPT = 4096  # correlation headers kept made (the live jobs and queues); past that, made afresh
_sha256 = hashlib.sha256
_hexlify = binascii.hexlify
# The headers in their Kafka wire form (kafka_batch.header): what never changes, made once; each
# name with its length before the value's length, for the values made per record.
_WIRE_SPECVERSION = kafka_batch.header(*_SPECVERSION_HEADER)
_WIRE_CONTENT_TYPE = kafka_batch.header(*_CONTENT_TYPE_HEADER)
_WIRE_ID = kafka_batch.length(len(b"ce_id")) + b"ce_id"
_WIRE_SUBJECT = kafka_batch.length(len(b"ce_subject")) + b"ce_subject"
_WIRE_CAUSATION = kafka_batch.length(len(b"ce_causation")) + b"ce_causation"
_WIRE_TIME = kafka_batch.length(len(b"ce_time")) + b"ce_time"
_WIRE_COUNTS = [kafka_batch.VARINTS[n] for n in range(10)]  # 7 headers, with causation 8, with correlation 9
_VARINTS = kafka_batch.VARINTS
_TABLE = kafka_batch.TABLE
_varint = kafka_batch.varint


def _id_bytes(envelope: Envelope, record: bytes | bytearray | memoryview) -> bytes:
    """The record's ``id`` as bytes (``record_id``'s): what a decision answers, or a digest of
    the record's bytes for a record without causation."""
    cause = envelope.causation
    if cause is None:
        return _hexlify(_sha256(record).digest()[:16])
    if envelope.epoch:
        return f"{cause.position}-{cause.index}-{envelope.epoch}".encode()
    return f"{cause.position}-{cause.index}".encode()


class KafkaFraming:
    """``kafka_framing`` for one log: what repeats from record to record (the source, type,
    time-of-second and correlation headers, each type's key prefix) is made once and reused,
    so that a record costs its id, its subject and the list of its headers.

    The values are ``attributes``' (a test holds the two equal on every event type)."""

    def __init__(self, log: str | Sources) -> None:
        self.sources = Sources(log) if isinstance(log, str) else log
        self._source_headers: dict[str, tuple[str, bytes]] = {}
        self._kinds: dict[str, tuple[int, str, tuple[str, bytes]]] = {}  # tag: (version, key prefix, ce_type)
        self._second: tuple[int, bytes] = (-1 << 62, b"")
        self._time: tuple[int, tuple[str, bytes]] = (-1 << 62, ("ce_time", b""))
        self._correlations: dict[str, tuple[str, bytes]] = {}
        # the same, in the Kafka wire form (``wire``)
        self._wire_sources: dict[str, bytes] = {}
        self._wire_kinds: dict[str, tuple[int, str, bytes]] = {}  # tag: (version, key prefix, ce_type)
        self._wire_time: tuple[int, bytes] = (-1 << 62, b"")
        self._wire_correlations: dict[str, bytes] = {}

    def wire(self, envelope: Envelope, record: bytes | bytearray | memoryview) -> bytes:
        """``record`` with its Kafka key and binary-mode headers (``__call__``'s), in the wire form
        of a record after its offset delta (``kafka_batch.record_tail``'s): what
        ``kafka_batch.build`` puts in a record batch. One join of pieces kept from record to
        record; what is made per record is its id, subject and causation."""
        tag = envelope.type
        kind = self._wire_kinds.get(tag)
        if kind is None or kind[0] != envelope.version:
            kind = self._wire_kind(tag, envelope.version)
        subject = (kind[1] + envelope.key).encode()
        cause = envelope.causation
        handler = CLIENT if cause is None else cause.handler
        source = self._wire_sources.get(handler) or self._wire_source(handler)
        event_id = _id_bytes(envelope, record)
        seconds, millis = divmod(envelope.recorded_at, 1000)
        when = self._wire_time
        if when[0] != seconds:  # records of one second share all of their ce_time but its milliseconds
            second = rfc3339(seconds * 1000)[:-5].encode()  # the milliseconds' part is 5 bytes: .mmmZ
            when = self._wire_time = (seconds, _WIRE_TIME + kafka_batch.length(len(second) + 5) + second)
        size = len(subject)
        subject_length = _VARINTS[size] if size < _TABLE else _varint(size)
        size = len(record)
        pieces = [
            subject_length, subject, _VARINTS[size] if size < _TABLE else _varint(size), record, b"",
            _WIRE_SPECVERSION, _WIRE_ID, _VARINTS[len(event_id)], event_id, source, kind[2], when[1],
            _MILLIS[millis], _WIRE_SUBJECT, subject_length, subject, _WIRE_CONTENT_TYPE,
        ]
        count = 7
        if cause is not None:
            causation = _causation_encoder.encode(cause)
            size = len(causation)
            pieces += (_WIRE_CAUSATION, _VARINTS[size] if size < _TABLE else _varint(size), causation)
            count = 8
        correlation = envelope.correlation
        if correlation:
            header = self._wire_correlations.get(correlation)
            if header is None:
                if len(self._wire_correlations) >= _CORRELATIONS_KEPT:
                    self._wire_correlations.clear()
                header = self._wire_correlations[correlation] = kafka_batch.header(
                    "ce_correlation", correlation.encode()
                )
            pieces.append(header)
            count += 1
        pieces[4] = _WIRE_COUNTS[count]
        return b"".join(pieces)

    def _wire_kind(self, tag: str, version: int) -> tuple[int, str, bytes]:
        prefix = _PREFIX.get(tag, "")  # a type this build does not know keeps its envelope key
        kind = self._wire_kinds[tag] = (version, prefix, kafka_batch.header("ce_type", _type(tag, version).encode()))
        return kind

    def _wire_source(self, handler: str) -> bytes:
        header = self._wire_sources[handler] = kafka_batch.header("ce_source", self.sources(handler).encode())
        return header

    def __call__(self, envelope: Envelope, record: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
        """The Kafka key and binary-mode headers of ``record`` (``attributes`` as Kafka carries them)."""
        tag = envelope.type
        kind = self._kinds.get(tag)
        if kind is None or kind[0] != envelope.version:
            kind = self._kind(tag, envelope.version)
        subject = (kind[1] + envelope.key).encode()
        cause = envelope.causation
        handler = CLIENT if cause is None else cause.handler
        source = self._source_headers.get(handler) or self._source(handler)
        event_id = _id_bytes(envelope, record)
        at = envelope.recorded_at
        when = self._time
        if when[0] != at:  # a decision batch shares one time
            when = self._time = (at, ("ce_time", self._rfc3339(at)))
        headers = [
            _SPECVERSION_HEADER,
            ("ce_id", event_id),
            source,
            kind[2],
            when[1],
            ("ce_subject", subject),
            _CONTENT_TYPE_HEADER,
        ]
        if cause is not None:
            headers.append(("ce_causation", _causation_encoder.encode(cause)))
        correlation = envelope.correlation
        if correlation:
            header = self._correlations.get(correlation)
            if header is None:
                if len(self._correlations) >= _CORRELATIONS_KEPT:
                    self._correlations.clear()
                header = self._correlations[correlation] = ("ce_correlation", correlation.encode())
            headers.append(header)
        return subject, headers

    def _kind(self, tag: str, version: int) -> tuple[int, str, tuple[str, bytes]]:
        prefix = _PREFIX.get(tag, "")  # a type this build does not know keeps its envelope key
        kind = self._kinds[tag] = (version, prefix, ("ce_type", _type(tag, version).encode()))
        return kind

    def _source(self, handler: str) -> tuple[str, bytes]:
        header = self._source_headers[handler] = ("ce_source", self.sources(handler).encode())
        return header

    def _rfc3339(self, ms: int) -> bytes:
        """``rfc3339(ms)`` as bytes: the second's part made once per second."""
        seconds, millis = divmod(ms, 1000)
        second = self._second
        if second[0] != seconds:
            second = self._second = (seconds, rfc3339(seconds * 1000)[:-5].encode())
        return second[1] + _MILLIS[millis]


_HEADER_FIELDS = {
    "ce_specversion": "specversion",
    "ce_id": "id",
    "ce_source": "source",
    "ce_type": "type",
    "ce_time": "time",
    "ce_subject": "subject",
    "content-type": "datacontenttype",
    "ce_causation": "causation",
    "ce_correlation": "correlation",
}


def from_headers(headers: Sequence[tuple[str, bytes]]) -> Attributes | None:
    """The attributes Kafka headers carry, or None for a record without them (written before the
    framing, or by a tool) or with some required one missing."""
    found = {_HEADER_FIELDS[name]: value.decode() for name, value in headers if name in _HEADER_FIELDS}
    try:
        return msgspec.convert(found, Attributes)
    except msgspec.ValidationError:
        return None


async def read_framed(log: EventLog, from_position: int = 0, *, follow: bool = False) -> AsyncGenerator[Framed, None]:
    """``log.read`` with each event's key and CloudEvents attributes, on every backend.

    Records are read, fenced, counted and quarantined as ``read`` does. On Kafka the
    attributes are the record's headers; on the other backends, and for a Kafka record
    that has none, they are computed from the envelope and the record's bytes."""
    backend: object = log
    while (inner := getattr(backend, "inner", None)) is not None:
        backend = inner
    sources = Sources(log_name(backend))
    framed_reader = getattr(backend, "read_framed_records", None)
    chunks = (framed_reader if framed_reader is not None else log.read_records)(from_position, follow=follow)
    async with aclosing(chunks):
        async for chunk in chunks:
            for position, data in chunk:
                item = decode(position, data)
                if not isinstance(item, Envelope):
                    await log.unreadable(position, data)  # counted or quarantined, as read does
                    continue
                log.stats.read += 1
                carried = from_headers(data.headers) if isinstance(data, StoredRecord) and data.headers else None
                if carried is not None:
                    key = data.key.decode() if isinstance(data, StoredRecord) and data.key else carried.subject
                    yield Framed(item, key, carried, True)
                else:
                    computed = attributes(item, data, sources)
                    yield Framed(item, computed.subject, computed, False)


def kafka_framing(envelope: Envelope, record: bytes, sources: Sources) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The Kafka key and binary-mode headers of ``record`` in the log of ``sources`` (for tools and
    tests; the Kafka backend keeps one ``KafkaFraming``)."""
    return KafkaFraming(sources)(envelope, record)
