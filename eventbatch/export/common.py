"""What both export formats share: a record's fields (``Parts``), the records of a range, an import's checks.

Where it sits: under ``eventbatch.export`` (whose names these are:
``from eventbatch.export import Parts``), loaded on first use, so that an
export worker process (``eventbatch.export.worker``), which needs none of it,
does not load the envelope's schemas (about a third of its start):

- ``records``: the records of a range as stored, fenced ones included (a
  replaced writer's records are part of the log; a reader of the imported
  log skips them as it skipped them before, the positions being the same);
- ``Parts``: a record split into the envelope's fields, the payload kept as
  its JSON text, and ``rebuild``, which gives the record's bytes back. A
  record the fields cannot give back byte for byte (not a well-formed
  envelope, or not in the encoder's form) travels as its bytes (``raw``);
- ``Checker``: what an import checks before it appends anything (positions
  consecutive from 0, each record a well-formed envelope of at most
  ``MAX_RECORD_BYTES``, a causation pointing to an earlier position).
"""


from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import msgspec

from eventbatch.export import ExportError
from eventbatch.log.codec import MAX_RECORD_BYTES
from eventbatch.log.fence import is_claim
from eventbatch.log.port import EventLog
from schemas.envelope import Envelope


class Parts(Envelope, frozen=True, kw_only=True, omit_defaults=True):
    """A record's fields, its payload kept as JSON text: encodes to the record as the log's encoder writes it."""

    payload: msgspec.Raw  # type: ignore[assignment]  # the payload kept undecoded is this shape's point


_decode_parts = msgspec.json.Decoder(Parts).decode
_encode = msgspec.json.Encoder().encode


def split(data: bytes) -> Parts | None:
    """The fields of a record, or None if they would not give ``data`` back byte for byte."""
    try:
        parts = _decode_parts(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if parts.position != -1 or _encode(parts) != data:
        return None
    return parts


def well_formed(data: bytes) -> bool:
    """Whether ``data`` is an envelope with no position of its own (in any JSON form)."""
    try:
        return _decode_parts(data).position == -1
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


def rebuild(parts: Parts) -> bytes:
    return _encode(parts)


async def records(log: EventLog, start: int, stop: int | None) -> AsyncIterator[list[tuple[int, bytes]]]:
    """Chunks of ``(position, record)`` from ``start`` up to ``stop`` (excluded; None: the end now),
    as stored: the one-writer fence is not applied (an export holds the whole log)."""
    end = await log.end_position()
    stop = end if stop is None else min(stop, end)
    if start >= stop:
        return
    async with aclosing(_unfenced(log, start)) as chunks:
        async for chunk in chunks:
            if chunk[-1][0] >= stop:
                chunk = [item for item in chunk if item[0] < stop]
                if chunk:
                    yield chunk
                return
            yield chunk


def backend(log: EventLog) -> EventLog:
    """The backend under ``log``'s wrappers (the one-writer fence)."""
    while (inner := getattr(log, "inner", None)) is not None:
        log = inner
    return log


def _unfenced(log: EventLog, start: int):
    log = backend(log)
    method = type(log).read_records
    method = getattr(method, "__wrapped__", method)  # the backend's own read, under the fence
    return method(log, start, follow=False)


class Checker:
    """Checks an import record by record, in order; ``ExportError`` names the first thing wrong."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.next = 0
        self.claims: list[int] = []  # positions of WriterClaimed records, for the fence's consumer positions

    def check(self, position: int, data: bytes, where: str, *, raw: bool = False) -> None:
        """``raw``: a record exported as its bytes (one the log could not decode either): only its
        position and size are checked."""
        if position != self.next:
            if self.next == 0:
                raise ExportError(
                    f"{self.source}: {where}: the export starts at position {position}; an import into an empty "
                    f"log needs the log from position 0 (positions are kept)"
                )
            raise ExportError(f"{self.source}: {where}: position {position} after {self.next - 1} (a gap or a "
                              f"record out of order)")
        if len(data) > MAX_RECORD_BYTES:
            raise ExportError(f"{self.source}: {where}: the record is {len(data):,} bytes; a log record holds at "
                              f"most {MAX_RECORD_BYTES:,}")
        if raw:
            self.next += 1
            return
        try:
            parts = _decode_parts(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ExportError(f"{self.source}: {where}: not an event record: {exc}") from None
        if parts.position != -1:
            raise ExportError(f"{self.source}: {where}: the record holds a position of its own")
        try:
            msgspec.json.decode(parts.payload)
        except msgspec.DecodeError as exc:
            raise ExportError(f"{self.source}: {where}: the payload is not JSON: {exc}") from None
        cause = parts.causation
        if cause is not None and not 0 <= cause.position < position:
            raise ExportError(f"{self.source}: {where}: its causation names position {cause.position}, not an "
                              f"earlier record")
        if is_claim(data):
            self.claims.append(position)
        self.next += 1
