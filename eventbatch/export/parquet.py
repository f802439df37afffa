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
  form) or cannot hold (a payload that is not UTF-8, a number beyond
  int64): then the record as stored, and every other column but
  ``position`` null.

The schema's metadata ``eventbatch.export`` holds the format version. An
import reads the columns back into the records' bytes (``Parts``); a file
with other columns or types is refused before anything is appended.

Writing (``export``, ``Writer``, ``Builder``): records come in chunks (an
SQLite log's file read in bulk, ``eventbatch.export.bulk``; any other log
through its port); ``split_all`` decodes each into its fields and checks,
``CHECKED`` records at a time, that they encode back to it; the columns of
``BUILT`` rows are built in bulk (the fields of all of them transposed at
once into a tuple per column, the integers and the payloads' offsets packed
with ``struct``, no numpy, which a worker process does not load, ``Builder``), and the ``Writer`` cuts the rows into row groups of
exactly ``ROW_GROUP`` rows (the last one fewer), encoded, compressed
(``COMPRESSION``) and written on its own thread while the next rows are read
and built. A range of an SQLite log of at least ``worker.LEAST`` chunks is
read and built by worker processes, one per core but this process's
(``eventbatch.export.worker``), and by this process, which takes the next
piece itself whenever the rows it must write next are not back yet and
writes every piece in order (``_share``): the file depends only on the rows
and their order, so it is byte for byte the one a single process writes.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gc
import itertools
import queue
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from eventbatch.export import FORMAT_VERSION, ExportError, bulk, worker

if TYPE_CHECKING:
    from eventbatch.log.port import EventLog

ROW_GROUP = 65_536
BUILT = 16_384  # rows whose columns are built at once (a row group is a few of them): fewer objects alive at once
GROUP_BYTES = 2**31 - 1  # at most this many bytes of payload in a row group: the payload column's offsets are int32
HELD = 4  # pieces an export with workers builds ahead of the rows it writes next (about 10 MB each)
CHECKED = 256  # records whose re-encoding is compared with theirs in one piece (about 100 KB: larger pieces
# come from fresh pages of memory each time, and cost more than they save)
COMPRESSIONS = ("snappy", "zstd", "lz4", "gzip", "none")
COMPRESSION = "zstd"
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


class _Cause(msgspec.Struct, frozen=True, omit_defaults=True, gc=False):
    """``schemas.envelope.Causation``: the same fields, defaults and encoding, without loading the
    envelope's schemas, which an export worker does not need (a third of its start)."""

    position: int
    handler: str
    index: int = 0
    seen: int = -1


class _Split(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """A record's fields as the columns hold them: ``Parts`` without a position (a record that
    holds one does not encode back to itself, and travels as its bytes)."""

    type: str
    key: str
    recorded_at: int
    payload: msgspec.Raw
    causation: _Cause | None = None
    correlation: str = ""
    version: int = 1
    epoch: int = 0


_decode_split = msgspec.json.Decoder(_Split).decode
_encode = msgspec.json.Encoder().encode
_INT64 = (-(2**63), 2**63 - 1)
_astuple = msgspec.structs.astuple


def _split_one(data: bytes) -> _Split | None:
    try:
        part = _decode_split(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return part if _encode(part) == data else None


def _fits(part: _Split) -> bool:
    """Whether the columns can hold ``part`` (int64 numbers, a UTF-8 payload)."""
    low, high = _INT64
    numbers = [part.recorded_at, part.version, part.epoch]
    if part.causation is not None:
        numbers += [part.causation.position, part.causation.index, part.causation.seen]
    if not all(low <= number <= high for number in numbers):
        return False
    try:
        bytes(part.payload).decode()
    except UnicodeDecodeError:
        return False
    return True


def split_all(datas: list[bytes]) -> list[_Split | None]:
    """Each record's fields, or None for a record they would not give back byte for byte.

    Every record is decoded on its own (so each is one JSON value), then the re-encoding of
    ``CHECKED`` of them at once is compared with theirs joined the same way, ``[a,b,...]`` (within
    the brackets, the encoding's sliced rather than the records' joined bytes copied twice more): the
    two are equal exactly when each record is its fields' encoding (both are arrays of the
    same values; the encoder writes no spaces). A piece that differs is compared record by record."""
    try:
        parts: list[_Split | None] = list(map(_decode_split, datas))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return [_split_one(data) for data in datas]
    for low in range(0, len(datas), CHECKED):
        high = low + CHECKED
        if _encode(parts[low:high])[1:-1] != b",".join(datas[low:high]):  # within the brackets: one copy fewer
            for index in range(low, min(high, len(datas))):
                if _encode(parts[index]) != datas[index]:
                    parts[index] = None
    return parts


class Builder:
    """Builds the rows of records in bulk, as tables of ``schema()`` (``tables``): split and
    checked (``split_all``), the columns a tuple each (``struct`` for the integers), a
    record the columns cannot give back byte for byte in ``raw``. ``since`` / ``until`` keep
    only the records whose ``recorded_at`` is in that inclusive range (a record kept as its
    bytes has none). The rows of a record depend on that record only, so that records built in
    any pieces, in this process or another (``eventbatch.export.worker``), give the same rows."""

    def __init__(self, *, since: int | None = None, until: int | None = None) -> None:
        self._pa = _pa()
        self.schema = schema()
        self._cause = self.schema.field("causation").type
        self._range = None if since is None and until is None else (
            _INT64[0] if since is None else since, _INT64[1] if until is None else until)

    def run_positions(self, positions: int | list[int], count: int) -> Any:
        """A run's positions as an Arrow int64 array: ``positions`` is the first of ``count`` records'
        (the others follow without a gap) or every record's."""
        return self._int64(range(positions, positions + count) if isinstance(positions, int) else positions)

    def tables(self, positions: Any, datas: list[bytes]) -> list[Any]:
        """The rows of records ``datas`` at ``positions`` (an Arrow int64 array), in order."""
        collecting = gc.isenabled()
        gc.disable()  # a row group's objects are many and short-lived: no collection while they are built
        try:
            tables = self._tables_of(positions, datas)
        finally:
            if collecting:
                gc.enable()
        if self._range is not None:
            low, high = self._range
            import pyarrow.compute as pc  # only for a time range: its import costs a worker about 0.07 CPU-s
            tables = [table.filter(pc.and_(pc.greater_equal(times, low), pc.less_equal(times, high)))
                      for table in tables for times in [table.column("recorded_at")]]
        return tables

    def _tables_of(self, positions: Any, datas: list[bytes]) -> list[Any]:
        pa = self._pa
        parts = split_all(datas)
        try:
            return self._group(positions, datas, parts)
        except (pa.ArrowInvalid, OverflowError):  # a number beyond int64 or a payload not UTF-8: as its bytes
            parts = [part if part is not None and _fits(part) else None for part in parts]
            return self._group(positions, datas, parts)

    def _group(self, positions: Any, datas: list[bytes], parts: list[_Split | None]) -> list[Any]:
        pa = self._pa
        n = len(datas)
        kept: list[_Split] = [part for part in parts if part is not None] if None in parts else parts  # type: ignore[assignment]
        spread = None  # for each row, its index among the kept rows (null: kept as its bytes)
        if len(kept) < n:
            index = itertools.count()
            spread = pa.array([None if part is None else next(index) for part in parts], pa.int64())
            raws = pa.array([None if part is not None else data for part, data in zip(parts, datas, strict=True)],
                            pa.binary())
        else:
            raws = pa.nulls(n, pa.binary())
        # every field of every kept record at once: a tuple per field (one pass, in C), in _Split's order
        every = zip(*map(_astuple, kept), strict=True) if kept else ((),) * 8
        kinds, keys, times, payloads, causes, correlations, versions, epochs = every
        offsets = self._offsets(payloads)
        if offsets is None:  # rows of large records: in two row groups
            half = n // 2
            return (self._group(positions[:half], datas[:half], parts[:half])
                    + self._group(positions[half:], datas[half:], parts[half:]))
        payload = pa.StringArray.from_buffers(len(payloads), pa.py_buffer(offsets), pa.py_buffer(b"".join(payloads)))
        payload.validate(full=True)  # UTF-8 (the decoder only skipped over it)

        # the causations as tuples (null: none), converted in one pass by Arrow
        causation = pa.array([None if cause is None else _astuple(cause) for cause in causes], self._cause)

        columns = [pa.array(kinds, pa.string()), pa.array(keys, pa.string()), self._int64(times), causation,
                   pa.array(correlations, pa.string()), self._int64(versions), self._int64(epochs), payload]
        if spread is not None:
            columns = [column.take(spread) for column in columns]
        table = pa.Table.from_arrays([positions, *columns[:-1], columns[-1], raws],
                                     schema=self.schema)
        return [table]

    def _int64(self, values: Any) -> Any:
        """Python ints as an Arrow int64 array (``OverflowError`` for one beyond int64)."""
        pa = self._pa
        try:
            held = struct.pack(f"<{len(values)}q", *values)
        except struct.error as exc:
            raise OverflowError(str(exc)) from None
        return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(held)])

    @staticmethod
    def _offsets(payloads: tuple[msgspec.Raw, ...]) -> bytes | None:
        """The int32 offsets of ``payloads`` in a string column, or None past ``GROUP_BYTES`` in all."""
        try:
            return struct.pack(f"<{len(payloads) + 1}i", *itertools.accumulate(map(len, payloads), initial=0))
        except struct.error:  # beyond int32
            return None


class Writer:
    """Writes records to a Parquet file in row groups of ``ROW_GROUP`` rows (the last one fewer).

    Records (``write``, ``write_run``) are built here, ``BUILT`` at a time (``Builder``); rows
    built elsewhere come in as tables (``write_table``). The writing and compressing happen on a
    thread of the writer's own while the next rows are read and built (pyarrow does both with
    the GIL released). The file depends only on the rows and their order, not on how they
    were cut into tables. ``written``: the rows written. Use as a context manager, or
    ``close`` it."""

    def __init__(self, path: str, *, compression: str = COMPRESSION, since: int | None = None,
                 until: int | None = None) -> None:
        pa = _pa()
        import pyarrow.parquet as pq

        if compression not in COMPRESSIONS:
            raise ExportError(f"unknown Parquet compression {compression!r}; one of {', '.join(COMPRESSIONS)}")
        self.builder = Builder(since=since, until=until)
        self._pa = pa
        self.schema = self.builder.schema
        # no dictionary or min/max statistics for the payload and raw columns: every value is long and
        # nearly every one different, so both cost time and give nothing
        small = ["position", "type", "key", "recorded_at", "causation.position", "causation.handler",
                 "causation.index", "causation.seen", "correlation", "version", "epoch"]
        self._writer = pq.ParquetWriter(path, self.schema, compression=compression, use_dictionary=small[1:],
                                        write_statistics=small)
        self._positions: list[Any] = []  # Arrow arrays of positions
        self._datas: list[bytes] = []
        self._built: list[Any] = []  # tables of the next row group
        self._rows = 0  # in those tables
        self.written = 0
        self._tables: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._write_tables, name="export-write", daemon=True)
        self._thread.start()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is None:
            self.close()
        else:
            self._abandon()

    def write(self, chunk: list[tuple[int, bytes]]) -> None:
        """Records as ``(position, record)``, in position order."""
        if chunk:
            self.write_run([position for position, _ in chunk], [data for _, data in chunk])

    def write_run(self, positions: int | list[int], datas: list[bytes]) -> None:
        """Records in position order: ``positions`` is the first one's position (the others follow
        without a gap) or every record's."""
        self._positions.append(self.builder.run_positions(positions, len(datas)))
        self._datas.extend(datas)
        while len(self._datas) >= BUILT:
            self._build(BUILT)

    def write_table(self, table: Any) -> None:
        """Rows built elsewhere (``Builder.tables``), after every record written before."""
        self.build_pending()
        self._add(table)

    def build_pending(self) -> None:
        """Build the records written so far that wait for a whole ``BUILT``."""
        if self._datas:
            self._build(len(self._datas))

    def close(self) -> None:
        try:
            self.build_pending()
            self._flush(last=True)
        except BaseException:
            self._abandon()
            raise
        self._stop()
        if self._failed is not None:
            self._abandon()
            raise self._failed
        self._writer.close()

    def _abandon(self) -> None:
        """Stop the writer's thread and let go of the file (which the caller discards)."""
        self._stop()
        with contextlib.suppress(Exception):  # the error that ended the export is the one to report
            self._writer.close()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._tables.put(None)
            self._thread.join()

    def _write_tables(self) -> None:
        while (table := self._tables.get()) is not None:
            if self._failed is None:
                try:
                    self._writer.write_table(table, row_group_size=ROW_GROUP)
                except BaseException as exc:  # raised by the next write or close
                    self._failed = exc

    def _build(self, count: int) -> None:
        positions = self._pa.concat_arrays(self._positions)
        datas = self._datas[:count]
        self._datas = self._datas[count:]
        self._positions = [positions[count:]] if count < len(positions) else []
        for table in self.builder.tables(positions[:count], datas):
            self._add(table)

    def _add(self, table: Any) -> None:
        self.written += table.num_rows
        if table.num_rows:
            self._built.append(table)
            self._rows += table.num_rows
            if self._rows >= ROW_GROUP:
                self._flush(last=False)

    def _flush(self, *, last: bool) -> None:
        """Hand the whole row groups built so far to the writer thread (``last``: the rest too)."""
        if self._failed is not None:
            raise self._failed
        whole = self._rows if last else self._rows - self._rows % ROW_GROUP
        if whole:
            table = self._pa.concat_tables(self._built)
            self._tables.put(table.slice(0, whole))
            rest = table.slice(whole)
            self._built, self._rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)


async def export(log: EventLog, path: str, start: int, stop: int | None, *, compression: str = COMPRESSION,
                 since: int | None = None, until: int | None = None, workers: int | None = None,
                 piece: int = bulk.CHUNK, meanwhile: bool = True) -> int:
    """Write the records of positions ``start`` up to ``stop`` (excluded; None: the end now) of
    ``log`` to a Parquet file at ``path``; returns the rows written. An SQLite log is read in
    bulk from its file (``eventbatch.export.bulk``), a range of at least ``worker.LEAST`` pieces
    of ``piece`` positions by ``workers`` processes (None: ``worker.workers()``; 0: none)
    besides this one (``eventbatch.export.worker``), this one reading and building the first
    pieces while they start and then the next piece whenever the rows to write next are not back
    yet (``meanwhile``; False: none, the workers build every piece); any other log through its
    port. The file is the same whatever the workers."""
    from eventbatch.export import backend, records
    from eventbatch.log.sqlite import SqliteLog

    with Writer(path, compression=compression, since=since, until=until) as writer:
        base = backend(log)
        if isinstance(base, SqliteLog):
            stop = await log.end_position() if stop is None else stop
            count = worker.workers() if workers is None else workers
            _from_file(writer, Path(base.path), log.url, start, stop, count, piece, since, until, meanwhile)
        else:
            async for chunk in records(log, start, stop):
                writer.write(chunk)
    return writer.written


def _from_file(writer: Writer, file: Path, url: str, start: int, stop: int, workers: int, piece: int,
               since: int | None, until: int | None, meanwhile: bool) -> None:
    """The records of an SQLite log's file, read in bulk; by ``workers`` processes for a large range,
    this process reading and building pieces too (``meanwhile``): the range's first pieces while they
    start, then the next piece whenever the rows to write next are not back yet (``_share``)."""
    first, end = bulk.bounds(file)
    stop = min(stop, end)
    if start >= stop:
        return
    if start < first:
        from eventbatch.log.port import LogTruncated

        raise LogTruncated(f"{url}: position {start} was removed (the log starts at {first})")
    if workers < 1 or len(range(start, stop, piece)) < worker.LEAST:
        for positions, datas in bulk.ahead(bulk.runs(file, url, start, stop, piece)):
            writer.write_run(positions, datas)
        return
    pool = worker.Pool(workers)
    try:
        low = start  # the first position this process has not read
        with contextlib.closing(bulk.ahead(bulk.runs(file, url, start, stop, piece))) as runs:
            for positions, datas in runs if meanwhile else ():
                writer.write_run(positions, datas)
                last = positions + len(datas) - 1 if isinstance(positions, int) else positions[-1]
                low = start + ((last - start) // piece + 1) * piece
                if pool.ready():
                    break
        for index in range(workers):
            pool.start(worker.Job(str(file), url, low, [], since, until), index, more=True)
        _share(writer, pool, workers, file, url, low, [(lo, min(lo + piece, stop)) for lo in range(low, stop, piece)],
               meanwhile)
    finally:
        pool.close()


class _Feed:
    """An iterator of the items put in it, one put before each one taken."""

    def __init__(self) -> None:
        self.items: collections.deque[tuple[int, int]] = collections.deque()

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> tuple[int, int]:
        return self.items.popleft()


def _share(writer: Writer, pool: worker.Pool, workers: int, file: Path, url: str, first: int,
           ranges: list[tuple[int, int]], meanwhile: bool) -> None:
    """Write the pieces ``ranges`` in order, built by the workers and (``meanwhile``) here: each
    worker is kept ``worker.AHEAD`` pieces ahead (given as it goes), and this process reads and
    builds the next piece itself whenever the rows to write next are not back yet, holding at
    most ``HELD`` pieces built, so that no core waits while the other works, whatever their
    speeds (the writing and compressing, here, are a share of this process's work)."""
    import pyarrow.ipc

    pieces = collections.deque(ranges)
    given = [0] * workers  # pieces given to each worker whose rows have not come back
    order: collections.deque[int | list[Any]] = collections.deque()  # per piece: its worker, or its tables
    held = 0  # pieces built here, not written yet
    feed = _Feed()

    def finish_when_none_left() -> None:
        if not pieces:
            for each in range(workers):
                pool.finish(each)

    with contextlib.closing(bulk.pieces(file, url, first, feed)) as own:
        while pieces or order:
            while pieces:
                index = min(range(workers), key=given.__getitem__)
                if given[index] > worker.AHEAD or (meanwhile and len(pieces) <= given[index]):
                    break  # the worker has enough; the last few pieces: here, so that both end together
                pool.give(index, pieces.popleft())
                given[index] += 1
                order.append(index)
                finish_when_none_left()
            head = order[0]
            if isinstance(head, list):
                order.popleft()
                held -= 1
                for table in head:
                    writer.write_table(table)
            elif pool.has_rows(head) or not meanwhile or not pieces or held >= HELD:
                order.popleft()
                given[head] -= 1
                writer.write_table(pyarrow.ipc.open_stream(pool.rows(head)).read_all())
            else:
                feed.items.append(pieces.popleft())
                finish_when_none_left()
                run = next(own)
                tables = []
                if run is not None:  # None: a piece with no record
                    positions, datas = run
                    tables = writer.builder.tables(writer.builder.run_positions(positions, len(datas)), datas)
                order.append(tables)
                held += 1


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


@functools.cache
def _rebuilding() -> tuple[Any, Any, Any]:
    """``Parts``, ``Causation`` and ``rebuild``, for an import (loaded here: an export worker needs none)."""
    from eventbatch.export.common import Parts, rebuild
    from schemas.envelope import Causation

    return Parts, Causation, rebuild


def _record(values: dict, source: str, where: str) -> tuple[int, bytes, str, bool]:
    Parts, Causation, rebuild = _rebuilding()
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
