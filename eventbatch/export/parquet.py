"""Parquet export: the records of a range as a table, one column per envelope field.

Where it sits: one of the two formats of ``eventbatch events export`` /
``import`` (``eventbatch.export``), for audit and analytics tools (DuckDB,
Spark, pandas, Arrow in any language). Needs ``pyarrow``, the optional extra
``eventbatch[parquet]``; JSON Lines needs nothing.

Columns (``SCHEMA``), one row per record, in log order:

- ``position`` (int64): the record's position;
- ``type``, ``key`` (string), ``recorded_at`` (int64, ms), ``correlation``
  (string), ``version``, ``epoch`` (int64): the envelope's fields, with their
  defaults where the record omits them;
- ``causation`` (struct of ``position``, ``handler``, ``index``, ``seen``;
  null when the record has none);
- ``payload`` (string): the payload's JSON text, as in the record;
- ``raw`` (binary): null, except for a record the columns cannot give back
  byte for byte (not a well-formed envelope, or not in the log encoder's
  form): then the record as stored, and every other column but
  ``position`` null.

The schema's metadata ``eventbatch.export`` holds the format version. An
import reads the columns back into the records' bytes (``Parts``); a file
with other columns or types is refused before anything is appended.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import msgspec

from eventbatch.export import FORMAT_VERSION, ExportError, Parts, rebuild, split
from schemas.envelope import Causation

ROW_GROUP = 100_000
GROUP_BYTES = 2**31 - 1  # at most this many bytes of payload in a row group: the payload column's offsets are int32
MISSING = "Parquet export needs pyarrow: pip install 'eventbatch[parquet]'"


def _pa() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise ExportError(MISSING) from None
    return pyarrow


def schema() -> Any:
    pa = _pa()
    cause = pa.struct([("position", pa.int64()), ("handler", pa.string()), ("index", pa.int64()),
                       ("seen", pa.int64())])
    return pa.schema(
        [("position", pa.int64()), ("type", pa.string()), ("key", pa.string()), ("recorded_at", pa.int64()),
         ("causation", cause), ("correlation", pa.string()), ("version", pa.int64()), ("epoch", pa.int64()),
         ("payload", pa.string()), ("raw", pa.binary())],
        metadata={"eventbatch.export": str(FORMAT_VERSION)},
    )


class Writer:
    """Writes chunks of ``(position, record)`` to a Parquet file, a row group every ``ROW_GROUP`` rows."""

    def __init__(self, path: str) -> None:
        pa = _pa()
        import pyarrow.parquet as pq

        self._pa = pa
        self.schema = schema()
        # no dictionary or min/max statistics for the payload and raw columns: every value is long and
        # nearly every one different, so both cost time and give nothing
        small = ["position", "type", "key", "recorded_at", "causation.position", "causation.handler",
                 "causation.index", "causation.seen", "correlation", "version", "epoch"]
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd", use_dictionary=small[1:],
                                        write_statistics=small)
        self._rows: list[tuple[int, bytes]] = []

    def write(self, chunk: list[tuple[int, bytes]]) -> None:
        self._rows.extend(chunk)
        if len(self._rows) >= ROW_GROUP:
            self._flush()

    def close(self) -> None:
        if self._rows:
            self._flush()
        self._writer.close()

    def _flush(self) -> None:
        rows, self._rows = self._rows, []
        collecting = gc.isenabled()
        gc.disable()  # a row group's objects are many and short-lived: no collection while they are built
        try:
            self._group(rows)
        finally:
            if collecting:
                gc.enable()

    def _group(self, rows: list[tuple[int, bytes]]) -> None:
        pa = self._pa
        positions = [position for position, _ in rows]
        parts = [split(data) for _, data in rows]
        raws: list[bytes | None] = [None] * len(rows)
        if None in parts:  # a record the columns cannot give back: its bytes, every other column null
            for index, part in enumerate(parts):
                if part is None:
                    raws[index] = rows[index][1]
        kept = [part for part in parts if part is not None]
        valid = None if len(kept) == len(parts) else pa.array([part is not None for part in parts], pa.bool_())
        causes = [part.causation for part in kept]
        missing = [cause is None for cause in causes]

        def column(values: list[Any], kind: Any, mask: Any = None) -> Any:
            """``values`` of the rows that have them, spread over every row (null where ``mask`` is False)."""
            array = pa.array(values, kind)
            if mask is None:
                return array
            return array.take(pa.array(_spread(mask), pa.int64()))

        if True in missing:
            fields = [[None if c is None else c.position for c in causes],
                      [None if c is None else c.handler for c in causes],
                      [None if c is None else c.index for c in causes],
                      [None if c is None else c.seen for c in causes]]
        else:
            present = [c for c in causes if c is not None]  # all of them
            fields = [[c.position for c in present], [c.handler for c in present], [c.index for c in present],
                      [c.seen for c in present]]
        causation = pa.StructArray.from_arrays(
            [pa.array(values, kind) for values, kind in zip(fields, (pa.int64(), pa.string(), pa.int64(), pa.int64()),
                                                             strict=True)],
            fields=list(self.schema.field("causation").type),
            mask=pa.array(missing, pa.bool_()),
        )
        mask = None if valid is None else [part is not None for part in parts]
        if mask is not None:
            causation = causation.take(pa.array(_spread(mask), pa.int64()))
        payloads = [part.payload for part in kept]  # the JSON text of each, as in the record: one buffer
        ends = list(accumulate([len(payload) for payload in payloads], initial=0))
        if ends[-1] > GROUP_BYTES:  # rows of large records: in two row groups
            half = len(rows) // 2
            self._group(rows[:half])
            self._group(rows[half:])
            return
        offsets = pa.array(ends, pa.int32())
        payload = pa.StringArray.from_buffers(len(payloads), offsets.buffers()[1], pa.py_buffer(b"".join(payloads)))
        payload.validate(full=True)  # UTF-8, as msgspec read it
        if mask is not None:
            payload = payload.take(pa.array(_spread(mask), pa.int64()))
        table = pa.Table.from_arrays(
            [pa.array(positions, pa.int64()),
             column([part.type for part in kept], pa.string(), mask),
             column([part.key for part in kept], pa.string(), mask),
             column([part.recorded_at for part in kept], pa.int64(), mask),
             causation,
             column([part.correlation for part in kept], pa.string(), mask),
             column([part.version for part in kept], pa.int64(), mask),
             column([part.epoch for part in kept], pa.int64(), mask),
             payload,
             pa.array(raws, pa.binary())],
            schema=self.schema,
        )
        self._writer.write_table(table, row_group_size=ROW_GROUP)


def _spread(mask: list[bool]) -> list[int | None]:
    """For each row, the index of its value among the rows that have one (None: no value)."""
    out: list[int | None] = []
    index = 0
    for there in mask:
        if there:
            out.append(index)
            index += 1
        else:
            out.append(None)
    return out


def read(path: str, source: str) -> Iterator[tuple[int, bytes, str, bool]]:
    """``(position, record, where, raw)`` for each row of the Parquet file at ``path``."""
    _pa()
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow's errors for a file that is not Parquet
        raise ExportError(f"{source}: not a Parquet file: {_one_line(exc)}") from None
    wanted = schema()
    found = file.schema_arrow
    if found.names != wanted.names or any(f.type != w.type for f, w in zip(found, wanted, strict=True)):
        raise ExportError(
            f"{source}: not an eventbatch export: columns {_columns(found)}, expected {_columns(wanted)}"
        )
    row = 0
    try:
        batches = file.iter_batches(batch_size=10_000)
        for batch in batches:
            for values in batch.to_pylist():
                row += 1
                yield _record(values, source, f"row {row}")
    except ExportError:
        raise
    except Exception as exc:  # a damaged file: pyarrow's own error
        raise ExportError(f"{source}: cannot read row {row + 1}: {_one_line(exc)}") from None


def _record(values: dict, source: str, where: str) -> tuple[int, bytes, str, bool]:
    position = values["position"]
    if position is None:
        raise ExportError(f"{source}: {where}: no position")
    if values["raw"] is not None:
        return position, values["raw"], where, True
    for name in ("type", "key", "recorded_at", "correlation", "version", "epoch", "payload"):
        if values[name] is None:
            raise ExportError(f"{source}: {where}: no {name}")
    cause = values["causation"]
    causation = None
    if cause is not None:
        if cause["position"] is None or cause["handler"] is None:
            raise ExportError(f"{source}: {where}: a causation without its position or handler")
        causation = Causation(cause["position"], cause["handler"], cause["index"] or 0,
                              -1 if cause["seen"] is None else cause["seen"])
    parts = Parts(type=values["type"], key=values["key"], recorded_at=values["recorded_at"],
                  payload=msgspec.Raw(values["payload"].encode()), causation=causation,
                  correlation=values["correlation"], version=values["version"], epoch=values["epoch"])
    return position, rebuild(parts), where, False


def _columns(schema: Any) -> str:
    return ", ".join(f"{field.name}:{field.type}" for field in schema)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
