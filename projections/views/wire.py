"""Decoding log records for the read models: only the fields the views show.

Where it sits: between the log's raw records and ``projections.views.ViewSet``
(``fold_records``). The log codec (``eventbatch.log.codec``) decodes every
field of every event, as the handlers need; the views need less. Here each
event type gets a twin with the same tag and field names but without the
parts no view reads (a pod's full manifest, a command's body, a Service's
manifest), so decoding a record skips them instead of building them. The
twins are generated from ``schemas.events.REGISTRY``: a new event type gets
one without anything written here. The record around them (``Record``) is
generated the same way from ``schemas.envelope.Envelope``, without the
envelope's fields no view reads.

A record this decoder refuses (unknown tag, bad JSON, tags that disagree) is
left to the log codec, which says what it is: the caller counts it or
quarantines it exactly as a reader of the log does.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Any

import msgspec

from schemas.envelope import Envelope, decode_record
from schemas.events import REGISTRY
from schemas.events.base import Event

# Fields no view reads, by event type. Everything else is kept.
SKIPPED: dict[str, frozenset[str]] = {
    "PodRequested": frozenset({"manifest", "priority"}),
    "JobCommandRequested": frozenset({"command"}),
    "ServiceRequested": frozenset({"manifest"}),
    "ConfigMapRequested": frozenset({"data", "labels"}),
    "SecretRequested": frozenset({"config", "labels"}),
    # requests join a timeline and change no row: their manifests are never read
    "JobSubmitRequested": frozenset({"manifest"}),
    "JobUpdateRequested": frozenset({"manifest"}),
    "QueueCreateRequested": frozenset({"manifest"}),
    "QueueUpdateRequested": frozenset({"manifest"}),
}


def _twin(tag: str, cls: type[Event]) -> type:
    skipped = SKIPPED.get(tag, frozenset())
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
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
# The tagged union of the twins (as ``schemas.events.AnyEvent`` is of the events), built at run time.
_Slim: Any = reduce(or_, TWINS.values())


# Fields of the envelope no view reads: the record's ``Record`` has the others.
UNREAD_ENVELOPE_FIELDS = frozenset({"position", "key", "correlation", "epoch"})


def _lean_record() -> type:
    """``Envelope``'s fields but ``UNREAD_ENVELOPE_FIELDS``, the payload by its lean twin.

    Generated from ``Envelope``, so a field added there is read here as well; a subclass of
    ``Envelope`` would also decode the fields no view reads, a tenth of the cost of a record."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for info in msgspec.structs.fields(Envelope):
        if info.name in UNREAD_ENVELOPE_FIELDS:
            continue
        kind = _Slim if info.name == "payload" else info.type
        fields.append((info.name, kind) if info.required else (info.name, kind, info.default))
    return msgspec.defstruct("Record", fields, frozen=True, kw_only=True, gc=False, module=__name__)


if TYPE_CHECKING:
    Record = Envelope  # what a checker sees: the fields it has are Envelope's
else:
    Record = _lean_record()


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


def envelope(position: int, data: bytes) -> Envelope | None:
    """Every field of a record (to render it in a timeline), or None if it cannot be read."""
    try:
        return decode_record(position, data)
    except _ERRORS:
        return None
