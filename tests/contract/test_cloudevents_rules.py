"""The framing's rules without a broker: every event type's key family is stated, and the
SQLite log gives each record the same attributes on every read."""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path

import msgspec
import pytest

from eventbatch.log.cloudevents import (
    _HEADER_FIELDS,
    FAMILIES_BY_FIELD,
    FAMILIES_BY_TYPE,
    Attributes,
    KafkaFraming,
    Sources,
    attributes,
    read_framed,
    rfc3339,
    subject_of,
)
from eventbatch.log.codec import encode, header
from eventbatch.log.factory import open_log
from schemas.envelope import Causation, Envelope
from schemas.events import REGISTRY, JobPhaseChanged
from schemas.events.base import Event
from tests.support.events import mixed_batch, wrap


def test_every_event_type_has_a_stated_key_family() -> None:
    """A new event type keyed by a field the table does not name is caught here (its key
    would otherwise be named after the field, and the documentation would not say so)."""
    unstated = sorted(tag for tag, cls in REGISTRY.items() if tag not in FAMILIES_BY_TYPE
                      and cls.KEY not in FAMILIES_BY_FIELD)
    assert unstated == []
    assert subject_of("JobPhaseChanged", "ns/train") == "job/ns/train"
    assert subject_of("ServiceRequested", "ns/train") == "service/ns/train"
    assert subject_of("JobTemplateCreated", "ns/t") == "jobtemplate/ns/t"
    assert subject_of("WriterClaimed", "host-1") == "writer/host-1"
    assert subject_of("SomethingNewer", "ns/x") == "ns/x"  # a newer writer's type keeps its key


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_767_225_661_234) == "2026-01-01T00:01:01.234Z"
    assert rfc3339(1_767_225_661_005) == "2026-01-01T00:01:01.005Z"


async def test_the_sqlite_log_gives_each_record_the_same_attributes_on_every_read(tmp_path: Path) -> None:
    decision = wrap(JobPhaseChanged(job="ns/train", phase="Running"), causation=Causation(3, "job-controller"))
    async with open_log(f"sqlite://{tmp_path}/events.db") as log:
        await log.append(mixed_batch("train", 20) + [decision])
        async with aclosing(read_framed(log)) as reading:
            first = [item async for item in reading]
        async with aclosing(read_framed(log, 5)) as reading:
            again = [item async for item in reading]
    assert [f.attributes for f in again] == [f.attributes for f in first[5:]]
    assert len({f.attributes.id for f in first}) == 21, "two records share an id"
    last = first[-1]
    assert (last.key, last.attributes.id, last.attributes.source, last.carried) == (
        "job/ns/train", "3-0", "eventbatch://events/job-controller", False
    )
    assert last.attributes.causation == '{"position":3,"handler":"job-controller"}'


def _as_headers(attributes: Attributes) -> dict[str, bytes]:
    names = {field: name for name, field in _HEADER_FIELDS.items()}
    values = msgspec.to_builtins(attributes)
    return {names[field]: value.encode() for field, value in values.items()}


@pytest.mark.parametrize("tag", sorted(REGISTRY))
def test_the_headers_the_kafka_backend_writes_are_the_computed_attributes_of_every_event_type(tag: str) -> None:
    """The Kafka backend's framing reuses what repeats from record to record; whatever it reuses,
    its key and headers are the attributes a reader computes from the record on SQLite: for each
    type, with and without causation, epoch and correlation, across a second, a new version."""
    cls = REGISTRY[tag]
    payload = _minimal(cls)
    framing = KafkaFraming("events")
    sources = Sources("events")
    variants = [
        Envelope(type=tag, key=payload.key(), recorded_at=1_767_225_600_999, payload=payload, version=cls.VERSION),
        Envelope(type=tag, key=payload.key(), recorded_at=1_767_225_601_000, payload=payload, version=cls.VERSION,
                 causation=Causation(12, "job-controller", 3), correlation="ns/x"),
        Envelope(type=tag, key=payload.key(), recorded_at=1_767_225_601_500, payload=payload, version=cls.VERSION,
                 causation=Causation(12, "scheduler"), epoch=5, correlation="ns/y"),
        Envelope(type=tag, key="other", recorded_at=-1, payload=payload, version=cls.VERSION + 1),
        Envelope(type=tag, key=payload.key(), recorded_at=0, payload=payload, version=cls.VERSION),
    ]
    for envelope in variants + variants[:2]:  # again: made once, reused
        record = encode(envelope)
        key, headers = framing(envelope, record)
        expected = attributes(envelope, record, sources)
        assert key == expected.subject.encode()
        assert len(dict(headers)) == len(headers), "a header given twice"
        assert dict(headers) == _as_headers(expected)


def test_a_type_this_build_does_not_know_keeps_its_envelope_key_on_kafka() -> None:
    record = b'{"type":"SomethingNewer","key":"ns/x","recorded_at":5,"payload":{"type":"SomethingNewer"}}'
    envelope = header(record)
    assert envelope is not None
    key, headers = KafkaFraming("events")(envelope, record)
    assert key == b"ns/x" and dict(headers)["ce_type"] == b"io.eventbatch.SomethingNewer.v1"


def _minimal(cls: type[Event]) -> Event:
    """An instance of the event type with its required fields at the zero of their type."""
    definition = msgspec.json.schema(cls)["$defs"][cls.__name__]
    zero = {"string": "ns/x", "integer": 0, "boolean": False, "array": [], "object": {}, "number": 0}
    data: dict[str, object] = {"type": cls.__name__}
    for name in definition.get("required", []):
        if name != "type":
            data[name] = zero.get(definition["properties"][name].get("type", "object"), {})
    return msgspec.convert(data, cls)
