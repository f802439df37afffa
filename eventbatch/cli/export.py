"""``eventbatch events export`` and ``events import``: a range of the log to a file, a file into an empty log.

Where it sits: subcommands of ``eventbatch events`` (registered by
``eventbatch.cli.events``), over ``eventbatch.export`` and its two formats.

- ``export`` reads the log (it must exist) and writes the records of a
  position range (``--from``/``--to``) and time range (``--since``/``--until``
  on ``recorded_at``, times as ``replay --at`` takes them) to ``-o FILE`` as
  JSON Lines or Parquet (``--format``, else from the suffix), through a
  temporary file beside it renamed at the end: a failed export leaves no file.
  Parquet goes through ``eventbatch.export.parquet.export`` (an SQLite log's
  file read in bulk, ``--compression`` zstd unless told otherwise).
- ``import`` reads the whole file and checks every record first (positions
  consecutive from 0, each a well-formed envelope, causations pointing back),
  then appends it, the records' bytes unchanged, to an empty log (created if
  missing, as ``serve`` would). Anything wrong is one line, exit 2, and
  nothing appended or created.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from eventbatch.cli.logcheck import CREATE, EXISTING
from eventbatch.export import Checker, ExportError, jsonl, parquet, records, split
from eventbatch.log.factory import open_log
from eventbatch.log.fence import PREVIOUS, WRITER
from eventbatch.replay import parse_time
from schemas.limits import INT64, IntArg

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
BATCH_RECORDS = 1000  # records per append of an import
BATCH_BYTES = 8 * 2**20


def register(sub) -> None:
    export = sub.add_parser(
        "export", help="write a range of the log to a JSON Lines or Parquet file",
        description="Write the records of a range of the log, exactly as stored with their positions, to FILE "
        "as JSON Lines (.jsonl, .ndjson) or Parquet (.parquet, .pq; needs eventbatch[parquet]). Every record "
        "of the range is written, a replaced writer's too. Positions and times are inclusive.",
    )
    export.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="the file to write (replaced if it exists); - for JSON Lines on stdout")
    export.add_argument("--format", choices=["jsonl", "parquet"], help="default: from FILE's suffix")
    export.add_argument("--compression", choices=parquet.COMPRESSIONS,
                        help=f"the Parquet file's codec (default: {parquet.COMPRESSION})")
    export.add_argument("--from", dest="from_position", type=IntArg(0, INT64[1]), metavar="POSITION",
                        help="first position (default: the first the log holds, 0 unless it was compacted)")
    export.add_argument("--to", dest="to_position", type=IntArg(0, INT64[1]), metavar="POSITION",
                        help="last position (default: the end of the log)")
    export.add_argument("--since", metavar="TIME", help="only records recorded at or after TIME (RFC 3339, ms, "
                        "or a duration like 10m, as replay --at)")
    export.add_argument("--until", metavar="TIME", help="only records recorded at or before TIME")
    export.set_defaults(run=_export, log_access=EXISTING)

    imp = sub.add_parser(
        "import", help="append an export to an empty log",
        description="Append the records of an export (JSON Lines or Parquet, from position 0) to an empty log, "
        "each at the position it had, its bytes unchanged: a log moved between backends. The whole file is "
        "checked before anything is appended.",
    )
    imp.add_argument("file", metavar="FILE", help="an export written by `eventbatch events export`")
    imp.add_argument("--format", choices=["jsonl", "parquet"], help="default: from FILE's suffix")
    imp.set_defaults(run=_import, log_access=CREATE)


def _format(path: str, given: str | None) -> str:
    if given:
        return given
    if path == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"{path}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
                          f"name it .jsonl or .parquet, or pass --format")
    return FORMATS[suffix]


def _time(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ExportError(f"{option}: {exc}") from None


async def _export(args, settings) -> int:
    from eventbatch.cli import CliError

    try:
        return await _export_to(args, settings)
    except ExportError as exc:
        raise CliError(str(exc)) from None


async def _export_to(args, settings) -> int:
    kind = _format(args.output, args.format)
    if args.output == "-" and kind != "jsonl":
        raise ExportError("-o -: only JSON Lines can be written to stdout")
    since, until = _time(args.since, "--since"), _time(args.until, "--until")
    stop = None if args.to_position is None else args.to_position + 1
    if stop is not None and args.from_position is not None and stop <= args.from_position:
        raise ExportError(f"--to {args.to_position} is before --from {args.from_position}")
    if kind == "parquet":
        parquet.schema()  # pyarrow is there, before anything is opened
    elif args.compression is not None:
        raise ExportError("--compression: JSON Lines is written uncompressed; only a Parquet file has a codec")
    target = Path(args.output)
    if args.output != "-" and not target.parent.is_dir():
        raise ExportError(f"{args.output}: no directory {target.parent} (create it first)")
    written = 0
    async with open_log(settings.log_url) as log:
        start = await log.start_position() if args.from_position is None else args.from_position
        if args.output == "-":
            async for chunk in records(log, start, stop):
                chunk = _in_time(chunk, since, until)
                jsonl.write(sys.stdout.buffer, chunk)
                written += len(chunk)
            sys.stdout.buffer.flush()
        else:
            fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
            try:
                if kind == "jsonl":
                    with os.fdopen(fd, "wb") as out:
                        async for chunk in records(log, start, stop):
                            chunk = _in_time(chunk, since, until)
                            jsonl.write(out, chunk)
                            written += len(chunk)
                else:
                    os.close(fd)
                    written = await parquet.export(log, partial, start, stop,
                                                   compression=args.compression or parquet.COMPRESSION,
                                                   since=since, until=until)
                os.replace(partial, target)
            except BaseException:
                _discard(partial)
                raise
    where = "stdout" if args.output == "-" else args.output
    print(f"exported {written:,} record(s) to {where} ({kind})", file=sys.stderr)
    return 0


def _in_time(chunk: list[tuple[int, bytes]], since: int | None, until: int | None) -> list[tuple[int, bytes]]:
    if since is None and until is None:
        return chunk
    low = since if since is not None else -(2**63)
    high = until if until is not None else 2**63
    kept = []
    for position, data in chunk:
        parts = split(data)
        if parts is not None and low <= parts.recorded_at <= high:
            kept.append((position, data))
    return kept


def _discard(partial: str) -> None:
    Path(partial).unlink(missing_ok=True)


def _check(path: str, kind: str) -> Checker:
    if not Path(path).is_file():
        raise ExportError(f"{path}: no such file")
    checker = Checker(path)
    try:
        for position, data, where, raw in _read(path, kind):
            checker.check(position, data, where, raw=raw)
    except OSError as exc:
        raise ExportError(f"{path}: {exc.strerror or exc}") from None
    return checker


def _read(path: str, kind: str) -> Iterator[tuple[int, bytes, str, bool]]:
    if kind == "jsonl":
        return jsonl.read(path, path)
    return parquet.read(path, path)


async def _import(args, settings) -> int:
    from eventbatch.cli import CliError

    try:
        return await _import_from(args, settings)
    except ExportError as exc:
        raise CliError(str(exc)) from None


async def _import_from(args, settings) -> int:
    path = args.file
    kind = _format(path, args.format)
    checker = _check(path, kind)  # everything checked before the log is opened
    total = checker.next
    async with open_log(settings.log_url) as log:
        end, start = await log.end_position(), await log.start_position()
        if end or start:
            raise ExportError(f"{log.url} holds {end - start:,} record(s) (positions {start}..{end - 1}); "
                              f"import appends only to an empty log, nothing was appended")
        batch: list[bytes] = []
        size = 0
        for position, data, _, _ in _read(path, kind):
            batch.append(data)
            size += len(data)
            if len(batch) >= BATCH_RECORDS or size >= BATCH_BYTES:
                await _append(log, batch, position)
                batch, size = [], 0
        if batch:
            await _append(log, batch, total - 1)
        if checker.claims:  # what a claiming pipeline keeps, for readers that start in the middle (the fence)
            await log.set_consumer_position(WRITER, checker.claims[-1])
            if len(checker.claims) > 1:
                await log.set_consumer_position(PREVIOUS, checker.claims[-2])
    print(f"imported {total:,} record(s) into {log.url} (positions 0..{total - 1})", file=sys.stderr)
    return 0


async def _append(log, batch: list[bytes], last: int) -> None:
    positions = await log.append_raw(batch)
    if positions[-1] != last:
        raise ExportError(
            f"{log.url}: the records went to positions {positions[0]}..{positions[-1]}, not "
            f"{last - len(batch) + 1}..{last}: another writer appended to the log during the import"
        )
