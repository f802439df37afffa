"""The log record is the envelope without its position, declared once (``schemas.envelope.Envelope``).

Where it sits: unit tests of ``schemas.envelope`` and of the decoders derived
from it (``eventbatch.log.codec``, ``projections.views.wire``). The records
below are byte for byte what eventbatch wrote before the record's shapes were
derived from ``Envelope``: they must still decode to the same envelope and
encode to the same bytes. Every field of ``Envelope`` but its position must
travel through a record, so a field added to ``Envelope`` that a copy forgets
fails here.
"""

from __future__ import annotations

import msgspec
import pytest

from eventbatch.log.codec import Undecodable, Unknown, decode, encode
from projections.views import wire
from schemas.envelope import Causation, Envelope, decode_record, encode_record
from schemas.events import PodBound, QueueStateChanged, TimerFired

WRITTEN_BEFORE = [
    (
        Envelope.wrap(QueueStateChanged(queue="q1", state="Closed", previous="Open"), recorded_at=5),
        b'{"type":"QueueStateChanged","key":"q1","recorded_at":5,"payload":{"type":"QueueStateChanged",'
        b'"queue":"q1","state":"Closed","previous":"Open"},"correlation":"q1"}',
    ),
    (
        msgspec.structs.replace(
            Envelope.wrap(PodBound(job="default/j", pod="default/j-0", node="n1", rule="allocate"),
                          recorded_at=1200, causation=Causation(41, "scheduler", 2)),
            epoch=7,
        ),
        b'{"type":"PodBound","key":"default/j-0","recorded_at":1200,"payload":{"type":"PodBound",'
        b'"pod":"default/j-0","job":"default/j","rule":"allocate","node":"n1"},"causation":{"position":41,'
        b'"handler":"scheduler","index":2},"correlation":"default/j","epoch":7}',
    ),
    (
        Envelope.wrap(TimerFired(timer="t-1", now=90, owner="default/j", purpose="ttl"), recorded_at=90,
                      causation=Causation(12, "timers", seen=11)),
        b'{"type":"TimerFired","key":"t-1","recorded_at":90,"payload":{"type":"TimerFired","timer":"t-1",'
        b'"now":90,"owner":"default/j","purpose":"ttl"},"causation":{"position":12,"handler":"timers",'
        b'"seen":11},"correlation":"default/j"}',
    ),
]


@pytest.mark.parametrize(("envelope", "record"), WRITTEN_BEFORE, ids=lambda x: getattr(x, "type", ""))
def test_records_written_before_encode_and_decode_as_they_did(envelope: Envelope, record: bytes) -> None:
    assert encode(envelope) == record
    assert encode(envelope.at(33)) == record  # the position is the log's, never in the record
    assert decode(33, record) == envelope.at(33)
    assert type(decode(33, record)) is Envelope
    assert decode_record(33, record) == envelope.at(33)
    assert wire.envelope(33, record) == envelope.at(33)
    lean = wire.decode(record)
    assert lean is not None
    assert (lean.type, lean.recorded_at, lean.causation, lean.version) == (
        envelope.type, envelope.recorded_at, envelope.causation, envelope.version)


def test_every_envelope_field_but_the_position_travels_in_the_record() -> None:
    event = PodBound(job="default/j", pod="default/j-0", node="n1")
    # a value unlike its default in every field, whatever fields Envelope has
    values = {
        "type": "PodBound", "key": "default/j-0", "recorded_at": 77, "payload": event, "position": 5,
        "causation": Causation(3, "scheduler", 1, 2), "correlation": "default/j", "version": 2, "epoch": 9,
    }
    fields = msgspec.structs.fields(Envelope)
    for info in fields:
        if info.name not in values:  # a field added since: give it a value unlike its default
            values[info.name] = (info.default or 0) + 1 if info.type is int else f"{info.name}-set"
    envelope = Envelope(**values)
    record = encode_record(envelope)
    written = msgspec.json.decode(record)
    assert set(written) == {info.name for info in fields} - {"position"}
    assert decode(12, record) == msgspec.structs.replace(envelope, position=12)
    # the views' record has every field but those it names as unread
    assert set(wire.Record.__struct_fields__) == set(Envelope.__struct_fields__) - wire.UNREAD_ENVELOPE_FIELDS


def test_a_record_that_is_not_an_envelope_is_still_told_apart() -> None:
    good = WRITTEN_BEFORE[1][1]
    unknown = good.replace(b'"PodBound"', b'"PodTeleported"')
    assert decode(4, unknown) == Unknown(4, "PodTeleported")
    mixed = good.replace(b'"type":"PodBound","key"', b'"type":"PodPipelined","key"')
    found = decode(4, mixed)  # the record's tag and its payload's disagree
    assert isinstance(found, Undecodable) and found.error == "payload PodPipelined: Invalid value 'PodBound' - at `$.type`"
    assert wire.decode(mixed) is None
    broken = good.replace(b'"recorded_at":1200', b'"recorded_at":"soon"')
    found = decode(4, broken)
    assert isinstance(found, Undecodable) and found.error.startswith("envelope: ")
    assert wire.decode(broken) is None and wire.envelope(4, broken) is None
