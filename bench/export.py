"""Export benchmark: N recorded events exported to Parquet (and JSON Lines), against raw msgspec decode.

Where it sits: ``bench/``, next to the replay benchmark, whose recorded log it
reuses (``bench/replay.py``'s ``record_base`` and ``tile``: a generated
workload run through the real pipeline on the simulated cluster, repeated
with fresh job names and later times up to ``--events`` records, written to
an SQLite log). Then, in turns, ``--rounds`` times, in this process (and the
export's workers):

- raw decode: ``msgspec`` decoding every record of the log, already in
  memory, into typed envelopes (``schemas.envelope.Envelope``), just before
  and just after the export with its defaults; the faster of the two is the
  round's floor;
- Parquet export: what ``eventbatch events export -o F.parquet`` runs with
  its defaults (``eventbatch.export.parquet.export``: the SQLite file read in
  bulk, each record split into its columns and checked to re-encode to
  itself, when a core is spare by worker processes, one per core but this
  process's, and by this process, which writes every piece's rows in order
  (else all in this process), zstd, row groups of 65,536 rows written on a
  thread),
  of the whole log and of its first 10% (below the size for which workers
  are started: in this process) and 50%; the whole log again in one process
  (``workers=0``), with the workers a spare core would give (one per core
  but this process's, at least one, whatever the load), and with snappy,
  pyarrow's default codec, for its speed and size;
- JSON Lines export of the whole log, for comparison;
- the parts, by CPU time: the bulk read alone, the split alone (records in
  memory), and the Parquet writer from records in memory.

It prints events/s by wall time and by CPU time, the CPU time of this
process and of the workers (apart for the export with the workers a spare
core gives: how the work was shared; CPU figures hold when other work shares
the machine; the load average is printed with each round), CPU-us per
event, each round's ratio Parquet export / raw decode (goal: >= 0.5 by wall
time) and the median. How the cost grows: linearly with the records
exported (10%, 50% and all cost about the same per event, plus opening the
log and the file, and about 0.1 CPU-s to start each worker), not with the
log's length or where the range starts (a position range is an indexed
read); memory holds a row group and a few pieces per worker being read and
sent, whatever the range. ``--short``: raw decode and the whole log's
export only: with the defaults, in one process and with workers.

    python bench/export.py --events 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import pyarrow.parquet  # noqa: F401  # imported before anything is measured

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.replay import record_base, tile, write_log  # noqa: E402
from eventbatch.export import bulk, jsonl, parquet, records  # noqa: E402
from eventbatch.log.factory import open_log  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402


def cpu_time() -> float:
    """CPU seconds of this process and of its children that have ended (the export's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def workers_time() -> float:
    """CPU seconds of this process's children that have ended (the export's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def timed(run) -> tuple[float, float]:
    started, cpu = time.perf_counter(), cpu_time()
    run()
    return time.perf_counter() - started, cpu_time() - cpu


def raw_decode(data: list[bytes]) -> None:
    decode = msgspec.json.Decoder(Envelope).decode
    for record in data:
        decode(record)


def read_only(log_path: Path) -> int:
    count = 0
    for _, datas in bulk.runs(log_path, "bench", 0, None):
        count += len(datas)
    return count


def write_from_memory(data: list[bytes], out: Path) -> None:
    with parquet.Writer(str(out)) as writer:
        for start in range(0, len(data), bulk.CHUNK):
            writer.write_run(start, data[start:start + bulk.CHUNK])


def split_only(data: list[bytes]) -> None:
    for start in range(0, len(data), parquet.BUILT):
        parquet.split_all(data[start:start + parquet.BUILT])


async def export(log_path: Path, out: Path, kind: str, stop: int | None, compression: str = parquet.COMPRESSION,
                 workers: int | None = None) -> int:
    count = 0
    async with open_log(f"sqlite:///{log_path}") as log:
        if kind == "parquet":  # what `eventbatch events export -o F.parquet` runs, with its defaults
            count = await parquet.export(log, str(out), 0, stop, compression=compression, workers=workers)
        else:
            with out.open("wb") as file:
                async for chunk in records(log, 0, stop):
                    jsonl.write(file, chunk)
                    count += len(chunk)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=400, help="jobs in the simulated base run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short", action="store_true",
                        help="only raw decode and the whole log's export, with workers and in one process")
    parser.add_argument("--keep", help="keep the recorded log at this path (reused if it exists)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(args.keep) if args.keep else Path(tmp) / "events.db"
        if not log_path.exists():
            started = time.perf_counter()
            base = asyncio.run(record_base(args.jobs))
            asyncio.run(write_log(log_path, tile(base, args.events)))
            print(f"recorded {args.events:,} events (base run {len(base):,}) in {time.perf_counter() - started:.1f}s")
        with sqlite3.connect(log_path) as db:
            data = [row[0] for row in db.execute("SELECT data FROM events ORDER BY position")]
        n = len(data)
        out = Path(tmp) / "out"
        ratios, ratios_cpu = [], []
        forced = max(1, min(len(os.sched_getaffinity(0)) - 1, parquet.worker.MOST))  # what a spare core gives
        for round_ in range(1, args.rounds + 1):
            load = os.getloadavg()[0]
            first_s, first_cpu = timed(lambda: raw_decode(data))
            chosen = parquet.worker.workers()  # what the default picks now (cores, load)
            full_s, full_cpu = timed(lambda: asyncio.run(export(log_path, out.with_suffix(".parquet"), "parquet", None)))
            # the floor just before and just after the export: the faster of the two (the machine's
            # speed moves from minute to minute; the faster floor is the one the export must beat)
            second_s, second_cpu = timed(lambda: raw_decode(data))
            raw_s, raw_cpu = min(first_s, second_s), min(first_cpu, second_cpu)
            size = out.with_suffix(".parquet").stat().st_size
            alone_s, alone_cpu = timed(lambda: asyncio.run(
                export(log_path, out.with_suffix(".alone.parquet"), "parquet", None, workers=0)))
            before = workers_time()
            two_s, two_cpu = timed(lambda: asyncio.run(
                export(log_path, out.with_suffix(".two.parquet"), "parquet", None, workers=forced)))
            two_workers = workers_time() - before
            ratio, ratio_cpu = raw_s / full_s, raw_cpu / full_cpu
            ratios.append(ratio)
            ratios_cpu.append(ratio_cpu)
            print(f"round {round_}: {n:,} events, load average {load:.1f} on {os.cpu_count()} cores")
            print(f"  raw msgspec decode:    {n / raw_s:>11,.0f} events/s  {n / raw_cpu:>11,.0f} events/CPU-s"
                  f"  ({raw_cpu / n * 1e6:.2f} CPU-us/event; the faster of {first_s:.2f}s before the export "
                  f"and {second_s:.2f}s after it)")
            print(f"  Parquet export, all:   {n / full_s:>11,.0f} events/s  {n / full_cpu:>11,.0f} events/CPU-s"
                  f"  ({full_s:.1f}s, {full_cpu / n * 1e6:.2f} CPU-us/event with {chosen} workers, "
                  f"{parquet.COMPRESSION}: {size / 2**20:,.0f} MiB, {size / n:.0f} B/event)")
            print(f"  ... in one process:    {n / alone_s:>11,.0f} events/s  {n / alone_cpu:>11,.0f} events/CPU-s"
                  f"  ({alone_s:.1f}s, {alone_cpu / n * 1e6:.2f} CPU-us/event; ratio {raw_s / alone_s:.2f} wall, "
                  f"{raw_cpu / alone_cpu:.2f} CPU)")
            print(f"  ... with {forced} worker{'s' if forced > 1 else ' '}:    {n / two_s:>11,.0f} events/s  {n / two_cpu:>11,.0f} events/CPU-s"
                  f"  ({two_s:.1f}s, {two_cpu / n * 1e6:.2f} CPU-us/event: exporter {two_cpu - two_workers:.2f} CPU-s, "
                  f"worker{'s' if forced > 1 else ''} {two_workers:.2f}; ratio {raw_s / two_s:.2f} wall, "
                  f"{raw_cpu / two_cpu:.2f} CPU)")
            if not args.short:
                parts = {}
                for tenths in (1, 5):
                    stop = n * tenths // 10
                    parts[tenths] = (stop, *timed(lambda stop=stop: asyncio.run(
                        export(log_path, out.with_suffix(".parquet"), "parquet", stop))))
                jsonl_s, jsonl_cpu = timed(lambda: asyncio.run(
                    export(log_path, out.with_suffix(".jsonl"), "jsonl", None)))
                jsonl_size = out.with_suffix(".jsonl").stat().st_size
                other_s, other_cpu = timed(lambda: asyncio.run(
                    export(log_path, out.with_suffix(".other.parquet"), "parquet", None, "snappy")))
                other_size = out.with_suffix(".other.parquet").stat().st_size
                _, read_cpu = timed(lambda: read_only(log_path))
                _, split_cpu = timed(lambda: split_only(data))
                memory_s, memory_cpu = timed(lambda: write_from_memory(data, out.with_suffix(".parquet")))
                for tenths, (stop, s, cpu) in parts.items():
                    print(f"  Parquet export, {tenths * 10:>3}%:  {stop / s:>11,.0f} events/s  {stop / cpu:>11,.0f} "
                          f"events/CPU-s  ({s:.1f}s; {cpu / stop * 1e6:.2f} CPU-us/event, all: "
                          f"{full_cpu / n * 1e6:.2f})")
                print(f"  ... with snappy:       {n / other_s:>11,.0f} events/s  {n / other_cpu:>11,.0f} events/CPU-s"
                      f"  ({other_s:.1f}s, {other_size / 2**20:,.0f} MiB, {other_size / n:.0f} B/event)")
                print(f"  JSON Lines export:     {n / jsonl_s:>11,.0f} events/s  {n / jsonl_cpu:>11,.0f} events/CPU-s"
                      f"  ({jsonl_s:.1f}s, {jsonl_size / 2**20:,.0f} MiB)")
                print("  where the time goes (CPU us/event): "
                      f"reading the log {read_cpu / n * 1e6:.2f}, "
                      f"splitting a record into its fields and checking it re-encodes to itself "
                      f"{split_cpu / n * 1e6:.2f} (of the Parquet writer's {memory_cpu / n * 1e6:.2f} from records "
                      f"in memory, in one process), the export {full_cpu / n * 1e6:.2f}; raw decode "
                      f"{raw_cpu / n * 1e6:.2f}")
                print(f"  Parquet writer alone (records in memory) / raw decode: {raw_s / memory_s:.2f} wall, "
                      f"{raw_cpu / memory_cpu:.2f} CPU")
            print(f"  ratio Parquet export / raw decode: {ratio:.2f} wall, {ratio_cpu:.2f} CPU   (goal >= 0.50 wall; "
                  f"load average now {os.getloadavg()[0]:.1f})")
    print(f"median ratio over {args.rounds} rounds: {statistics.median(ratios):.2f} wall, "
          f"{statistics.median(ratios_cpu):.2f} CPU   (each: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
