"""The envelope every event travels in on the log.

Where it sits: kept apart from the domain event (``schemas.events``). The log
assigns ``position``; the appender stamps ``recorded_at`` (milliseconds, on the
runtime's clock), ``causation`` (which trigger, answered by which handler) and
``correlation`` (the job or queue the event belongs to). The pipeline's log
stamps ``epoch`` on what it appends: the position just after its
``WriterClaimed`` record, so that readers can ignore a writer another one
has replaced (``eventbatch.log.fence``). Every other appender leaves it 0,
and a record with epoch 0 carries no ``epoch`` field at all.
"""

from __future__ import annotations

import msgspec

from schemas.events.base import Event


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
    type: str
    key: str
    recorded_at: int
    payload: Event
    position: int = -1
    causation: Causation | None = None
    correlation: str = ""
    version: int = 1
    epoch: int = 0  # the pipeline writer's claim position + 1; 0: not appended by a pipeline

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        recorded_at: int,
        causation: Causation | None = None,
    ) -> "Envelope":
        return cls(
            type=type(event).__name__,
            key=event.key(),
            recorded_at=recorded_at,
            payload=event,
            causation=causation,
            correlation=event.correlation(),
            version=event.VERSION,
        )

    def at(self, position: int) -> "Envelope":
        """The same envelope with the position the log assigned."""
        return msgspec.structs.replace(self, position=position)


class _Record(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A log record: the envelope without its position (the log assigns that)."""

    type: str
    key: str
    recorded_at: int
    payload: object
    causation: Causation | None = None
    correlation: str = ""
    version: int = 1
    epoch: int = 0  # last, so a reader finds it at the end of the record (eventbatch.log.fence)


_encoder = msgspec.json.Encoder()


def encode_record(envelope: Envelope) -> bytes:
    """The bytes of ``envelope`` as every log backend stores them (JSON)."""
    return _encoder.encode(
        _Record(
            type=envelope.type,
            key=envelope.key,
            recorded_at=envelope.recorded_at,
            payload=envelope.payload,
            causation=envelope.causation,
            correlation=envelope.correlation,
            version=envelope.version,
            epoch=envelope.epoch,
        )
    )
