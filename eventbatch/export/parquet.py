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

from collections.abc import Iterator
from typing import Any

import msgspec

from eventbatch.export import FORMAT_VERSION, ExportError, Parts, rebuild, split
from schemas.envelope import Causation

ROW_GROUP = 100_000
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
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
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
        pa = self._pa
        rows, self._rows = self._rows, []
        positions: list[int] = []
        types: list[Any] = []  # each column: its values, None for a raw record
        keys: list[Any] = []
        times: list[Any] = []
        correlations: list[Any] = []
        versions: list[Any] = []
        epochs: list[Any] = []
        payloads: list[Any] = []
        c_pos: list[Any] = []
        c_handler: list[Any] = []
        c_index: list[Any] = []
        c_seen: list[Any] = []
        no_cause: list[bool] = []
        raws: list[bytes | None] = []
        for position, data in rows:
            positions.append(position)
            parts = split(data)
            if parts is None:
                raws.append(data)
                for column in (types, keys, times, correlations, versions, epochs, payloads, c_pos, c_handler,
                               c_index, c_seen):
                    column.append(None)
                no_cause.append(True)
                continue
            raws.append(None)
            types.append(parts.type)
            keys.append(parts.key)
            times.append(parts.recorded_at)
            correlations.append(parts.correlation)
            versions.append(parts.version)
            epochs.append(parts.epoch)
            payloads.append(bytes(parts.payload))
            cause = parts.causation
            if cause is None:
                no_cause.append(True)
                c_pos.append(None)
                c_handler.append(None)
                c_index.append(None)
                c_seen.append(None)
            else:
                no_cause.append(False)
                c_pos.append(cause.position)
                c_handler.append(cause.handler)
                c_index.append(cause.index)
                c_seen.append(cause.seen)
        causation = pa.StructArray.from_arrays(
            [pa.array(c_pos, pa.int64()), pa.array(c_handler, pa.string()), pa.array(c_index, pa.int64()),
             pa.array(c_seen, pa.int64())],
            fields=list(self.schema.field("causation").type),
            mask=pa.array(no_cause, pa.bool_()),
        )
        table = pa.Table.from_arrays(
            [pa.array(positions, pa.int64()), pa.array(types, pa.string()), pa.array(keys, pa.string()),
             pa.array(times, pa.int64()), causation, pa.array(correlations, pa.string()),
             pa.array(versions, pa.int64()), pa.array(epochs, pa.int64()),
             pa.array(payloads, pa.binary()).cast(pa.string()), pa.array(raws, pa.binary())],
            schema=self.schema,
        )
        self._writer.write_table(table, row_group_size=ROW_GROUP)


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
