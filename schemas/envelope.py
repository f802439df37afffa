"""The envelope every event travels in on the log.

Where it sits: kept apart from the domain event (``schemas.events``). The log
assigns ``position``; the appender stamps ``recorded_at`` (milliseconds, on the
runtime's clock), ``causation`` (which trigger, answered by which handler) and
``correlation`` (the job or queue the event belongs to). The pipeline's log
stamps ``epoch`` on what it appends: the position just after its
``WriterClaimed`` record, so that readers can ignore a writer another one
has replaced (``eventbatch.log.fence``). Every other appender leaves it 0,
and a record with epoch 0 carries no ``epoch`` field at all.

``Envelope`` is the one declaration of a record's fields. A record is the
envelope without its position (``encode_record``), and every reader of
records decodes ``Envelope`` itself (``decode_record``) or a shape derived
from it: a subclass that differs only in the payload's type (the log codec's
header, payload kept raw) or the views' lean record, generated from its fields
(``projections.views.wire``). A field added to ``Envelope`` is written, read
and shown everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from schemas.events import AnyEvent
from schemas.events.base import Event

if TYPE_CHECKING:
    _Payload = Event
else:
    # At run time the payload is read by its tag, so that a record decodes into an Envelope in one pass.
    _Payload = AnyEvent


class Causation(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """The trigger a decision answers: its log position and the handler.

    ``index`` is the decision's place within the batch answering the trigger,
    so that a batch appended twice is recognised as a duplicate (0 is not
    written). ``seen`` is set by runtime components that act on the clock
    (timers, the simulated kubelet): the log position their state had folded
    up to when they decided, so ``replay --verify`` can reproduce the answer
    from exactly that state (-1, not written, for handlers: a handler's state
    at its trigger is the trigger's position).
    """

    position: int
    handler: str
    index: int = 0
    seen: int = -1


class Envelope(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An event as the log holds it: the record's fields (all but ``position``) and its position."""

    type: str
    key: str
    recorded_at: int
    payload: _Payload
    position: int = -1  # assigned by the log; never part of the record
    causation: Causation | None = None
    correlation: str = ""
    version: int = 1
    # the pipeline writer's claim position + 1 (0: not appended by a pipeline); last, so that a
    # reader finds it at the end of the record (eventbatch.log.fence)
    epoch: int = 0

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        recorded_at: int,
        causation: Causation | None = None,
    ) -> Envelope:
        return cls(
            type=type(event).__name__,
            key=event.key(),
            recorded_at=recorded_at,
            payload=event,
            causation=causation,
            correlation=event.correlation(),
            version=event.VERSION,
        )

    def at(self, position: int) -> Envelope:
        """The same envelope with the position the log assigned."""
        return msgspec.structs.replace(self, position=position)


class _Record(Envelope, frozen=True, kw_only=True, omit_defaults=True):
    """An envelope as written: its position left at -1, so that it is not written, nor is any default."""


def _copy_into(target: type[Envelope]) -> Callable[[Envelope, int], Any]:
    """``copy(envelope, position)``: a ``target`` with every field of ``envelope`` but its position.

    Written out field by field from ``Envelope``'s fields, as a hand-written copy would be: a
    generic copy (``structs.asdict`` or ``astuple``) adds about 40% to encoding a record."""
    names = [name for name in Envelope.__struct_fields__ if name != "position"]
    fields = ", ".join(f"{name}=envelope.{name}" for name in names)
    namespace: dict[str, Any] = {"target": target}
    exec(f"def copy(envelope, position):\n    return target({fields}, position=position)\n", namespace)
    copy: Callable[[Envelope, int], Any] = namespace["copy"]
    return copy


_as_record = _copy_into(_Record)
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)
_set = msgspec.structs.force_setattr


def encode_record(envelope: Envelope) -> bytes:
    """The bytes of ``envelope`` as every log backend stores them (JSON)."""
    return _encoder.encode(_as_record(envelope, -1))


def encode_records_into(envelopes: Iterable[Envelope], buffer: bytearray) -> list[int]:
    """The records of ``envelopes`` (each the bytes ``encode_record`` gives) one after another at
    the end of ``buffer``; the offset where each ends. One buffer for a whole batch instead of one
    growing ``bytes`` per record: about a tenth less to encode a batch."""
    ends = []
    for envelope in envelopes:
        _encoder.encode_into(_as_record(envelope, -1), buffer, -1)
        ends.append(len(buffer))
    return ends


def decode_record(position: int, data: bytes) -> Envelope:
    """The envelope of a record at ``position``, decoded in one pass, the payload by its tag.

    ``msgspec.DecodeError`` or ``ValidationError`` if it cannot be read so (an unknown tag, bad
    JSON). It does not check that the payload's tag and version are the record's: the log codec
    (``eventbatch.log.codec``) does, and says what a record it cannot read is."""
    envelope = _decoder.decode(data)
    _set(envelope, "position", position)  # made here, not seen by anyone yet
    return envelope
