"""JSON Lines export: one record per line, exactly as stored, its position put first.

Where it sits: one of the two formats of ``eventbatch events export`` /
``import`` (``eventbatch.export``). A record is a JSON object; its line is
that object with ``"position":N`` inserted first:

    {"position":0,"type":"NodeAdded","key":"node-1","recorded_at":0,"payload":{...}}

so that removing the position gives the record's bytes back. A record that
is not a well-formed envelope (one the log quarantines on reading) is
written as ``{"position":N,"raw":"<base64 of its bytes>"}``.

Reading (``read``) takes such lines back; a line another tool wrote, with
the position elsewhere or other spacing, is taken as the envelope it holds
and encoded as the log's encoder writes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import msgspec

from eventbatch.export import ExportError, Parts, rebuild, well_formed


class _Line(Parts, frozen=True, kw_only=True):
    position: int  # required on a line


class _RawLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    position: int
    raw: bytes


_decode_line = msgspec.json.Decoder(_Line).decode
_decode_raw = msgspec.json.Decoder(_RawLine).decode
_encode = msgspec.json.Encoder().encode
_PREFIX = b'{"position":'
_RAW = b'"raw":"'


def line(position: int, data: bytes) -> bytes:
    """The line of the record ``data`` at ``position`` (with its newline)."""
    if not well_formed(data):
        return _encode(_RawLine(position, data)) + b"\n"
    return b'{"position":%d,%s\n' % (position, data[1:])


def write(out: BinaryIO, chunk: list[tuple[int, bytes]]) -> None:
    out.write(b"".join([line(position, data) for position, data in chunk]))


def read(path: str, source: str) -> Iterator[tuple[int, bytes, str, bool]]:
    """``(position, record, where, raw)`` for each line of the file at ``path``."""
    with open(path, "rb") as lines:
        for number, text in enumerate(lines, 1):
            where = f"line {number}"
            body = text.rstrip(b"\r\n")
            if not body.strip():
                raise ExportError(f"{source}: {where} is empty")
            position, record, raw = _parse(body, source, where)
            yield position, record, where, raw


def _parse(body: bytes, source: str, where: str) -> tuple[int, bytes, bool]:
    if body.startswith(_PREFIX):
        comma = body.find(b",", len(_PREFIX))
        digits = body[len(_PREFIX):comma] if comma > 0 else b""
        if digits.isdigit():
            rest = body[comma + 1:]
            if rest.startswith(_RAW):
                try:
                    held = _decode_raw(body)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise ExportError(f"{source}: {where}: not a record line: {exc}") from None
                return held.position, held.raw, True
            return int(digits), b"{" + rest, False
    try:
        parsed = _decode_line(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ExportError(f"{source}: {where}: not a record line: {exc}") from None
    fields = {name: getattr(parsed, name) for name in Parts.__struct_fields__ if name != "position"}
    return parsed.position, rebuild(Parts(**fields)), False
