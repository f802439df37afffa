"""Decoding log records for the read models: only the fields the views show.

Where it sits: between the log's raw records and ``projections.views.ViewSet``
(``fold_records``). The log codec (``eventbatch.log.codec``) decodes every
field of every event, as the handlers need; the views need less. Here each
event type gets a twin with the same tag and field names but without the
parts no view reads (a pod's full manifest, a command's body, a Service's
manifest), so decoding a record skips them instead of building them. The
twins are generated from ``schemas.events.REGISTRY``: a new event type gets
one without anything written here.

A record this decoder refuses (unknown tag, bad JSON, tags that disagree) is
left to the log codec, which says what it is: the caller counts it or
quarantines it exactly as a reader of the log does.
"""

from __future__ import annotations

from typing import Union

import msgspec

from schemas.envelope import Causation, Envelope
from schemas.events import REGISTRY, AnyEvent

# Fields no view reads, by event type. Everything else is kept.
SKIPPED: dict[str, frozenset[str]] = {
    "PodRequested": frozenset({"manifest", "priority"}),
    "JobCommandRequested": frozenset({"command"}),
    "ServiceRequested": frozenset({"manifest"}),
    "ConfigMapRequested": frozenset({"data", "labels"}),
    "SecretRequested": frozenset({"config", "labels"}),
}


def _twin(tag: str, cls: type) -> type:
    skipped = SKIPPED.get(tag, frozenset())
    fields = []
    for info in msgspec.structs.fields(cls):
        if info.name in skipped:
            continue
        if info.required:
            fields.append((info.name, info.type))
        elif info.default_factory is not msgspec.NODEFAULT:
            fields.append((info.name, info.type, msgspec.field(default_factory=info.default_factory)))
        else:
            fields.append((info.name, info.type, info.default))
    return msgspec.defstruct(
        tag, fields, frozen=True, kw_only=True, tag=tag, tag_field="type", gc=False,
        module=__name__,
    )


TWINS: dict[str, type] = {tag: _twin(tag, cls) for tag, cls in REGISTRY.items()}
_Slim = Union[tuple(TWINS.values())]  # type: ignore[valid-type]  # noqa: UP007


class Record(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A log record as the views read it (the envelope without key and correlation)."""

    type: str
    recorded_at: int
    payload: _Slim  # type: ignore[valid-type]
    causation: Causation | None = None
    version: int = 1


_VERSIONS: dict[str, int] = {tag: cls.VERSION for tag, cls in REGISTRY.items()}
_decoder = msgspec.json.Decoder(Record)
_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
# What ``decode`` is made of, for a caller that writes it out in its own loop (``ViewSet.fold_records``).
DECODER, VERSIONS, ERRORS = _decoder, _VERSIONS, _ERRORS


def decode(data: bytes) -> Record | None:
    """The record, or None if the views' decoder cannot read it (the log codec decides why)."""
    try:
        record = _decoder.decode(data)
    except _ERRORS:
        return None
    if type(record.payload).__name__ != record.type or record.version != _VERSIONS[record.type]:
        return None
    return record


class _Whole(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    type: str
    key: str
    recorded_at: int
    payload: AnyEvent  # type: ignore[valid-type]
    causation: Causation | None = None
    correlation: str = ""


_whole_decoder = msgspec.json.Decoder(_Whole)


def envelope(position: int, data: bytes) -> Envelope | None:
    """Every field of a record (to render it in a timeline), or None if it cannot be read."""
    try:
        whole = _whole_decoder.decode(data)
    except _ERRORS:
        return None
    return Envelope(
        type=whole.type, key=whole.key, recorded_at=whole.recorded_at, payload=whole.payload,
        position=position, causation=whole.causation, correlation=whole.correlation,
    )
