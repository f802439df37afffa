"""Replay benchmark: N recorded events into every read model, against raw decode; time travel.

Where it sits: ``bench/``, next to the log throughput benchmark. It records a
realistic log (a generated workload run through the real pipeline on the
simulated cluster, then repeated with fresh job names and later times until it
holds ``--events`` records) into an SQLite log, then measures in fresh
processes (the recording too, so that no measured process inherits its
peak RSS):

- raw decode: ``msgspec`` decoding every record of the same file into typed
  envelopes (records read from the table first, untimed);
- read + decode: the same, reading the records from SQLite as it goes: what
  any replay of this log has to do before it folds anything (the floor);
- the thinnest rebuild loop: the shipped bulk read (fenced), the views'
  decoder and each record's timeline position, nothing folded: the least a
  rebuild keeping timelines does per record, in the same process as the
  floor. What it leaves of twice the floor (the goal) is what the folds,
  rendering and writes may take, printed per event beside what they take;
- rebuild: every read model projected from position 0 into a fresh store
  with the shipped defaults (``eventbatch.replay.rebuild``, what
  ``eventbatch replay`` runs: reading the log, in bulk for an SQLite file
  (``eventbatch.log.bulk_read``), folding, chunked SQLite writes with
  tracking, the fold states kept for time travel); and the same rebuild
  reading through the log's own (fenced) read, as any other backend is read,
  for comparison;
- time travel: ``replay --to P`` (``eventbatch.replay.state_at`` with that
  store) at 10%, 50% and 100% of the log: the records read from the log,
  seconds and peak RSS of each. Each starts from the nearest fold state kept
  at or below P (one every 50,000 events, or one event per 256 bytes of the
  last state kept when that is more: a state is kept less often the larger
  it is), so it reads at most that many records whatever P is, and its memory
  holds the live objects only.

With ``--split`` it also measures what a second core could give a rebuild
that folds in two processes, at best: the fold in memory (no store) in one
process, then in two at once, each reading the whole file and folding the
records of half the jobs (routed by the job their envelope's correlation
names) and every record that names no job, with nothing merged; and the
rebuild's ratio had it saved as much wall time.

It prints events/s of each, by wall time and by CPU time (the CPU figures
hold when other work shares the machine), the rebuild as a ratio to read +
decode (goal: >= 0.5), and the peak RSS of rebuilding a quarter of the log
and all of it. How the costs grow: a rebuild with the history (every record
is folded once), its memory and a time travel's cost with the live objects
and the distance to the nearest kept state, not with the position.

    python bench/replay.py --events 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eventbatch.log.codec import decode, encode  # noqa: E402
from schemas.envelope import Causation  # noqa: E402
from schemas.events import AnyEvent  # noqa: E402

SETUP_TYPES = frozenset({"NodeAdded", "QueueCreated", "QueueStateChanged", "PriorityClassAdded"})
PREFIX = "wl-"


def scenario(jobs: int) -> dict:
    """Two queues on 16 nodes; gang jobs of 1-4 pods, one in ten failing with exit 3 and retried."""
    workload = []
    for i in range(jobs):
        replicas = 1 + i % 4
        failing = i % 10 == 7
        annotations = {"eventbatch.io/sim-duration": f"{1 + i % 5}m"}
        if failing:
            annotations["eventbatch.io/sim-exit-code"] = "3"
        workload.append({
            "at": f"{(i // 8) * 20}s",
            "apply": {
                "apiVersion": "batch.volcano.sh/v1alpha1",
                "kind": "Job",
                "metadata": {"name": f"{PREFIX}{i:05d}", "namespace": "default"},
                "spec": {
                    "queue": "batch" if i % 3 else "research",
                    "minAvailable": replicas,
                    "maxRetry": 2,
                    "ttlSecondsAfterFinished": 0,
                    "policies": [{"event": "PodFailed", "action": "RestartJob"}],
                    "tasks": [{
                        "name": "main",
                        "replicas": replicas,
                        "template": {
                            "metadata": {"annotations": annotations},
                            "spec": {"containers": [{"name": "main", "image": "busybox",
                                                     "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
                        },
                    }],
                },
            },
        })
    return {
        "nodes": [{"prefix": "node-", "count": 16, "allocatable": {"cpu": 8, "memory": "32Gi"}}],
        "queues": [
            {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": name},
             "spec": {"weight": weight}}
            for name, weight in (("default", 1), ("batch", 1), ("research", 3))
        ],
        "workload": workload,
        "until": "all-finished",
    }


async def record_base(jobs: int) -> list[bytes]:
    from eventbatch.log.memory import MemoryLog
    from eventbatch.settings import Settings
    from eventbatch.sim.driver import run_scenario
    from schemas.scenario import load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "workload.json"
        path.write_text(json.dumps(scenario(jobs)))
        loaded = load_scenario(str(path))
    log = MemoryLog()
    async with log:
        await run_scenario(loaded, log=log, settings=Settings())
        return [encode(env) async for env in log.read(0)]


def tile(base: list[bytes], total: int):
    """Yield ``total`` records: the base run, then copies with new job names and later times."""
    envelopes = [decode(i, b) for i, b in enumerate(base)]
    span = max(e.recorded_at for e in envelopes) + 60_000
    produced, copy = 0, 0
    while produced < total:
        moved: dict[int, int] = {}
        for old, env in enumerate(envelopes):
            if copy and env.type in SETUP_TYPES:
                continue
            if produced >= total:
                return
            data = encode(env)
            if copy:
                data = data.replace(PREFIX.encode(), f"c{copy}-".encode())
                cause = env.causation
                renamed = decode(0, data)
                data = encode(msgspec.structs.replace(
                    renamed,
                    recorded_at=env.recorded_at + copy * span,
                    causation=None if cause is None else Causation(moved.get(cause.position, cause.position),
                                                                   cause.handler, cause.index),
                ))
            moved[old] = produced
            produced += 1
            yield data
        copy += 1


async def write_log(path: Path, records) -> int:
    from eventbatch.log.sqlite import SqliteLog

    log = SqliteLog(str(path))
    async with log:
        batch: list[bytes] = []
        for data in records:
            batch.append(data)
            if len(batch) >= 20_000:
                await log.append_raw(batch)
                batch = []
        if batch:
            await log.append_raw(batch)
        return await log.end_position()


# --- measured phases, each in its own process --------------------------------


def phase_decode(log_path: str) -> dict:
    import sqlite3

    with sqlite3.connect(log_path) as db:
        records = [row[0] for row in db.execute("SELECT data FROM events ORDER BY position")]

    class Wire(msgspec.Struct, frozen=True, kw_only=True):
        type: str
        key: str
        recorded_at: int
        payload: AnyEvent
        causation: Causation | None = None
        correlation: str = ""
        version: int = 1

    raw = msgspec.json.Decoder(Wire)
    started, cpu = time.perf_counter(), time.process_time()
    for data in records:
        raw.decode(data)
    raw_s, raw_cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    for position, data in enumerate(records):
        decode(position, data)
    codec_s = time.perf_counter() - started
    # The floor of any replay of this log: every record read from SQLite and decoded.
    del records
    started, cpu = time.perf_counter(), time.process_time()
    with sqlite3.connect(log_path) as db:
        low = 0
        while rows := db.execute(
            "SELECT position, data FROM events WHERE position >= ? ORDER BY position LIMIT 10000", (low,)
        ).fetchall():
            for _, data in rows:
                raw.decode(data)
            low = rows[-1][0] + 1
    floor_s, floor_cpu = time.perf_counter() - started, time.process_time() - cpu
    thin_s, thin_cpu = thinnest(log_path)
    return {"events": len(range(low)), "raw_s": raw_s, "raw_cpu": raw_cpu, "codec_s": codec_s, "floor_s": floor_s,
            "floor_cpu": floor_cpu, "thin_s": thin_s, "thin_cpu": thin_cpu}


def thinnest(log_path: str) -> tuple[float, float]:
    """Seconds and CPU-s of the least a rebuild keeping timelines does per record: the shipped
    bulk read (fenced, paired with positions), the views' decoder, the latest time and each
    record's position under its job. No fold, no row, no write: what is left of twice the
    floor after this is all the folds, rendering and writes may take for the goal."""
    from eventbatch.log import bulk_read
    from eventbatch.log.sqlite import SqliteLog
    from projections.views import wire

    async def run() -> tuple[float, float]:
        async with SqliteLog(log_path) as log:
            end = await log.end_position()
            started, cpu = time.perf_counter(), time.process_time()
            decoder, timeline, latest = wire.DECODER.decode, {}, -1
            async for chunk in bulk_read.read_records(log, 0, end):
                for position, data in chunk:
                    record = decoder(data)
                    if record.recorded_at > latest:
                        latest = record.recorded_at
                    job = getattr(record.payload, "job", "")
                    if job:
                        entries = timeline.get(job)
                        if entries is None:
                            timeline[job] = [position]
                        else:
                            entries.append(position)
            return time.perf_counter() - started, time.process_time() - cpu

    return asyncio.run(run())


def phase_replay(log_path: str, views_path: str, limit: int | None, bulk: bool = True) -> dict:
    """The shipped rebuild (all of the log; ``bulk=False``: through the log's own read), or a
    projector with its defaults up to ``limit``."""
    from eventbatch.log.sqlite import SqliteLog
    from eventbatch.readmodels import Projector, ReadModelStore
    from eventbatch.replay import rebuild

    async def run() -> dict:
        async with SqliteLog(log_path) as log:
            started, cpu = time.perf_counter(), time.process_time()
            if limit is None:
                end = await log.end_position()
                projector = await rebuild(log, views_path, bulk=bulk)
            else:
                end = limit
                async with ReadModelStore(views_path, durable=False) as store:
                    projector = Projector(log=log, store=store)
                    await projector.catch_up(to=end)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            return {"events": end, "seconds": seconds, "cpu": cpu, "live_pods": len(projector.views.pods),
                    "live_jobs": len(projector.views.jobs), "past": len(projector._past or ())}

    out = asyncio.run(run())
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def phase_travel(log_path: str, views_path: str, to: int) -> dict:
    """``replay --to`` as the CLI runs it: from the nearest kept fold state, the tail after it."""
    from eventbatch.log.sqlite import SqliteLog
    from eventbatch.readmodels import ReadModelStore
    from eventbatch.replay import Travel, state_at

    async def run() -> dict:
        async with SqliteLog(log_path) as log, ReadModelStore(views_path) as store:
            travel = Travel()
            started, cpu = time.perf_counter(), time.process_time()
            views = await state_at(log, to=to, store=store, travel=travel)
            rows = views.snapshot_rows()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            return {"to": to, "seconds": seconds, "cpu": cpu, "snapshot": travel.snapshot, "read": travel.read,
                    "jobs": len(rows.jobs)}

    out = asyncio.run(run())
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


_CORRELATION = b'"correlation":"'


def half_of(data: bytes) -> int:
    """Which of two processes folds a record in ``phase_split``: by its job (the envelope's
    correlation, which names the job of a job's and its pods' records), -1 (both) for a
    record that names none (nodes, queues, scheduling requests)."""
    at = data.rfind(_CORRELATION)
    if at < 0:
        return -1
    name = data[at + len(_CORRELATION):data.find(b'"', at + len(_CORRELATION))]
    return zlib.crc32(name) & 1 if b"/" in name else -1


def phase_split(log_path: str) -> dict:
    """What a second core could give a rebuild that folds in two processes, at best: the fold in
    memory (read in bulk, decoded, folded, rendered every 20,000 records; no store) in one process,
    then in two at once, each reading the whole file and folding the records of half the jobs
    and every record that names no job. Nothing is merged (the rows and fold states would not
    be the rebuild's): the figure bounds such a split from above."""
    import os
    from contextlib import aclosing

    from eventbatch.log import bulk_read
    from eventbatch.log.sqlite import SqliteLog
    from eventbatch.replay import fewer_collections
    from projections.views import ViewSet

    def fold(half: int | None) -> tuple[float, float, int]:
        async def run() -> int:
            folded = 0
            async with SqliteLog(log_path) as log:
                end = await log.end_position()
                views, pending = ViewSet(), 0
                async with aclosing(bulk_read.read_records(log, 0, end)) as chunks:
                    async for chunk in chunks:
                        pending += len(chunk)
                        if half is not None:
                            chunk = [item for item in chunk if half_of(item[1]) in (-1, half)]
                        folded += len(chunk)
                        views.fold_records(chunk)
                        if pending >= 20_000:
                            views.flush()
                            pending = 0
                views.flush()
            return folded

        started, cpu = time.perf_counter(), time.process_time()
        with fewer_collections():
            folded = asyncio.run(run())
        return time.perf_counter() - started, time.process_time() - cpu, folded

    one_s, one_cpu, _ = fold(None)
    started = time.perf_counter()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the second process: its figures down the pipe, and nothing else of this one run
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(fold(1)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    mine = fold(0)
    with os.fdopen(read_end, "rb") as pipe:
        theirs = json.loads(pipe.read())
    os.waitpid(pid, 0)
    return {"one_s": one_s, "one_cpu": one_cpu, "two_s": time.perf_counter() - started,
            "two_cpu": [mine[1], theirs[1]], "folded": [mine[2], theirs[2]]}


def child(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=400, help="jobs in the simulated base run")
    parser.add_argument("--keep", help="keep the recorded log at this path (reused if it exists)")
    parser.add_argument("--split", action="store_true",
                        help="also fold the log in memory in one process and in two at once, each reading all of it "
                             "and folding half the jobs (no merge: what a second core could give a rebuild, at best)")
    parser.add_argument("--phase", choices=["record", "decode", "replay", "travel", "split"], help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    parser.add_argument("--views", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--to", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--through-log", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "record":
        started = time.perf_counter()
        base = asyncio.run(record_base(args.jobs))
        count = asyncio.run(write_log(Path(args.log), tile(base, args.events)))
        print(json.dumps({"events": count, "base": len(base), "seconds": time.perf_counter() - started}))
        return
    if args.phase == "decode":
        print(json.dumps(phase_decode(args.log)))
        return
    if args.phase == "replay":
        print(json.dumps(phase_replay(args.log, args.views, args.limit, bulk=not args.through_log)))
        return
    if args.phase == "split":
        print(json.dumps(phase_split(args.log)))
        return
    if args.phase == "travel":
        print(json.dumps(phase_travel(args.log, args.views, args.to)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(args.keep) if args.keep else Path(tmp) / "events.db"
        if not log_path.exists():
            # in its own process too: a child started after it would inherit its peak RSS
            recorded = child("--phase", "record", "--log", str(log_path), "--events", str(args.events),
                             "--jobs", str(args.jobs))
            print(f"recorded {recorded['events']:,} events (base run {recorded['base']:,} events, {args.jobs} jobs) "
                  f"in {recorded['seconds']:.1f}s")
        decoded = child("--phase", "decode", "--log", str(log_path))
        quarter = child("--phase", "replay", "--log", str(log_path), "--views", str(Path(tmp) / "q.db"),
                        "--limit", str(decoded["events"] // 4))
        views = str(Path(tmp) / "views.db")
        through = child("--phase", "replay", "--log", str(log_path), "--views", str(Path(tmp) / "t.db"),
                        "--through-log")
        full = child("--phase", "replay", "--log", str(log_path), "--views", views)
        # at 10%, 50%, 100% (a kept fold state may be there: one every 50,000 events or more, and at the end),
        # and one below each (the longest tail: from the kept state before)
        split = child("--phase", "split", "--log", str(log_path)) if args.split else None
        travels = [child("--phase", "travel", "--log", str(log_path), "--views", views,
                         "--to", str(decoded["events"] * tenths // 10 - below))
                   for tenths in (1, 5, 10) for below in (1, 2)]
    n = decoded["events"]
    raw_rate = n / decoded["raw_s"]
    codec_rate = n / decoded["codec_s"]
    replay_rate = full["events"] / full["seconds"]
    raw_cpu_rate = n / decoded["raw_cpu"]
    replay_cpu_rate = full["events"] / full["cpu"]
    print(f"events:                 {n:,}")
    print(f"raw msgspec decode:     {raw_rate:>12,.0f} events/s   {raw_cpu_rate:>12,.0f} events/CPU-s")
    print(f"log codec decode:       {codec_rate:>12,.0f} events/s")
    print(f"rebuild, read models:   {replay_rate:>12,.0f} events/s   {replay_cpu_rate:>12,.0f} events/CPU-s"
          f"  ({full['seconds']:.1f}s, {full['cpu']:.1f} CPU-s, {full['past']} fold states kept)")
    print(f"  through the log's read:{through['events'] / through['seconds']:>12,.0f} events/s   "
          f"{through['events'] / through['cpu']:>12,.0f} events/CPU-s  ({through['seconds']:.1f}s, "
          f"{through['cpu']:.1f} CPU-s: the same rebuild, the records read as any backend's are)")
    floor_rate = n / decoded["floor_s"]
    floor_cpu_rate = n / decoded["floor_cpu"]
    print(f"read + raw decode:      {floor_rate:>12,.0f} events/s   {floor_cpu_rate:>12,.0f} events/CPU-s"
          "   (rows read from SQLite and decoded: the floor)")
    print(f"ratio rebuild/(read + decode): {replay_rate / floor_rate:.2f} wall, "
          f"{replay_cpu_rate / floor_cpu_rate:.2f} CPU   (goal >= 0.50); "
          f"rebuild/raw: {replay_rate / raw_rate:.2f} wall, {replay_cpu_rate / raw_cpu_rate:.2f} CPU; "
          f"(read + decode)/raw: {floor_rate / raw_rate:.2f}")
    thin_rate, thin_cpu_rate = n / decoded["thin_s"], n / decoded["thin_cpu"]
    # the goal lets a rebuild take twice the floor: what the thinnest loop leaves of it is the folds' budget
    budget = 2 * decoded["floor_cpu"] - decoded["thin_cpu"]
    spent = full["cpu"] - decoded["thin_cpu"] * full["events"] / n
    print(f"thinnest rebuild loop:  {thin_rate:>12,.0f} events/s   {thin_cpu_rate:>12,.0f} events/CPU-s"
          f"   (bulk read, views' decoder, timeline positions; no fold: {thin_rate / floor_rate:.2f} of the floor by "
          f"wall, {thin_cpu_rate / floor_cpu_rate:.2f} by CPU)")
    print(f"  left for folds, rendering and writes at the goal: {budget / n * 1e6:.2f} us/event; "
          f"the rebuild spends {spent / full['events'] * 1e6:.2f} us/event on them")
    if split is not None:
        saved = split["one_s"] - split["two_s"]
        print(f"fold in memory, one process:   {split['one_s']:.2f}s {split['one_cpu']:.2f} CPU-s; two at once, each "
              f"reading all and folding half the jobs: {split['two_s']:.2f}s wall, "
              f"{split['two_cpu'][0]:.2f} + {split['two_cpu'][1]:.2f} CPU-s, folding "
              f"{split['folded'][0] / n:.0%} and {split['folded'][1] / n:.0%} of the records (no merge)")
        print(f"  a rebuild that saved as much wall time: {full['seconds'] - saved:.2f}s, "
              f"{full['events'] / (full['seconds'] - saved) / floor_rate:.2f} of the floor by wall (at best: "
              "merging the two halves' rows and fold states not counted)")
    print(f"peak RSS, rebuild of {quarter['events']:,}: {quarter['peak_rss_mb']:.0f} MB "
          f"({quarter['live_jobs']} live jobs, {quarter['live_pods']} live pods)")
    print(f"peak RSS, rebuild of {full['events']:,}: {full['peak_rss_mb']:.0f} MB "
          f"({full['live_jobs']} live jobs, {full['live_pods']} live pods)")
    print("replay --to P (from the nearest kept fold state; the tail read at read + decode speed would take):")
    for travel in travels:
        floor = travel["read"] / floor_rate
        print(f"  --to {travel['to']:>9,} ({(travel['to'] + 1) / n:4.0%}): {travel['seconds']:6.3f}s "
              f"{travel['cpu']:6.3f} CPU-s, from #{travel['snapshot']:,}, {travel['read']:>7,} records read "
              f"(tail floor {floor:.3f}s), peak RSS {travel['peak_rss_mb']:.0f} MB, {travel['jobs']} jobs")


if __name__ == "__main__":
    main()
