"""The Alibaba openb GPU trace through the whole pipeline, timed.

Where it sits: a benchmark of ``eventbatch simulate`` on a real production
trace (1,523 nodes, 8,152 pods): trace import, then the real log (SQLite),
handlers, scheduler and simulated kubelet on a virtual clock until every job
has finished. It prints the wall time and events/s, next to the limit
measured in the same run: appending and reading back the very same events
on a fresh SQLite log with no handler at all (what the log alone costs), and
the CPU time of the process and of the thread running the pipeline (what the
wall time comes down to when the machine's other work is taken out).

It also prints how a session's cost grows. Each session's snapshot (the
copy of the cluster state a session opens over, ``snapshot.build``) and the
whole session are timed, in CPU time of the thread running them (what other
processes on this shared machine do is not counted) and in wall time (mean
and median: a mean also takes in the process's rare pauses, such as a
garbage collection of everything it holds). The first and the last tenth of
the sessions, and their ratio, say whether a session costs more as history
piles up (finished jobs held in the state); it is printed next to the ratio
of live podgroups per session (what the cost should follow) and of
podgroups held (what it must not). ``--repeat K`` runs the trace's workload
K times end to end (each repetition starts when the previous one's jobs
would all have finished, job names suffixed ``-rK``), so the last repetition
has K times the history of the first with the same live load, and prints
the per-session CPU time of each repetition.

Memory: the peak RSS of running the pipeline, next to the RSS once the
workload is loaded (all of it is held from the start: K repetitions hold K
times the manifests). The trace's jobs set no ``ttlSecondsAfterFinished``, so
a finished job stays, as a Volcano Job does until it is deleted, and the
memory above the workload grows with the jobs that exist; ``--ttl S`` sets
it on every job, so that finished jobs are removed and what is above the
workload follows the live jobs.

    python bench/trace_replay.py [--limit N] [--repeat K] [--ttl S] [--trace FOLDER]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from eventbatch.clock import VirtualClock  # noqa: E402
from eventbatch.follow import read_to_tail  # noqa: E402
from eventbatch.log.factory import open_log  # noqa: E402
from eventbatch.log.sole_writer import SoleWriterLog  # noqa: E402
from eventbatch.settings import Settings  # noqa: E402
from eventbatch.sim.driver import run_scenario  # noqa: E402
from eventbatch.sim.report import build_report  # noqa: E402
from eventbatch.trace import import_openb  # noqa: E402
from handlers.scheduler import handler as scheduler_handler  # noqa: E402
from handlers.scheduler import session as scheduler_session  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402
from schemas.scenario import load_scenario  # noqa: E402

TRACE = ROOT.parent / "shared" / "traces" / "alibaba-openb-2023"


async def raw_log_limit(events: list[Envelope], folder: Path) -> float:
    """events/s to append the same events in batches of 100 and read them back."""
    copies = [Envelope.wrap(e.payload, recorded_at=e.recorded_at, causation=e.causation) for e in events]
    async with open_log(f"sqlite:///{folder}/raw.db") as log:
        t0 = time.perf_counter()
        for i in range(0, len(copies), 100):
            await log.append(copies[i : i + 100])
        seen: list[Envelope] = []
        await read_to_tail(log, 0, seen.append)
        elapsed = time.perf_counter() - t0
    assert len(seen) == len(copies)
    return len(copies) / elapsed


class SessionTimes:
    """Time of each session and of its snapshot, in order, with the session's ``now``: wall
    clock, and CPU time of the thread running it (the machine's other processes, and the
    log's own threads, do not count in that)."""

    def __init__(self) -> None:
        self.snapshots: list[float] = []  # wall
        self.snapshots_cpu: list[float] = []
        self.sessions: list[tuple[int, float]] = []  # (now, wall)
        self.sessions_cpu: list[float] = []
        self.live: list[int] = []  # podgroups in the session
        self.held: list[int] = []  # podgroups the state holds, finished ones included
        build, run = scheduler_session.build, scheduler_handler.run_session
        wall, cpu = time.perf_counter, time.thread_time

        def timed_build(state):
            t0, c0 = wall(), cpu()
            snap = build(state)
            self.snapshots_cpu.append(cpu() - c0)
            self.snapshots.append(wall() - t0)
            self.live.append(len(snap.jobs))
            self.held.append(len(state.podgroups))
            return snap

        def timed_run(state, conf, now, on_step=None):
            t0, c0 = wall(), cpu()
            decided = run(state, conf, now, on_step)
            self.sessions_cpu.append(cpu() - c0)
            self.sessions.append((now, wall() - t0))
            return decided

        scheduler_session.build = timed_build
        scheduler_handler.run_session = timed_run

    @staticmethod
    def tenths(values: list[float], scale: float = 1000) -> tuple[float, float]:
        """Mean of the first and of the last tenth (seconds as ms by default)."""
        n = max(len(values) // 10, 1)
        return sum(values[:n]) / n * scale, sum(values[-n:]) / n * scale

    @staticmethod
    def median_tenths(values: list[float]) -> tuple[float, float]:
        """Median of the first and of the last tenth, in ms: the session's own cost, without the
        rare pauses of the whole process (a garbage collection of everything it holds) a mean
        takes in."""
        n = max(len(values) // 10, 1)
        return statistics.median(values[:n]) * 1000, statistics.median(values[-n:]) * 1000


def _duration_s(text: str) -> int:
    return int(text[:-1]) if text.endswith("s") else 0


def repeat_workload(scenario: dict, times: int) -> int:
    """Repeat the workload ``times`` times end to end; returns the shift (ms) between repetitions."""
    workload = scenario["workload"]
    ends = []
    for entry in workload:
        pod = entry["apply"]["spec"]["tasks"][0]["template"]
        duration = _duration_s(pod["metadata"]["annotations"].get("eventbatch.io/sim-duration", "0s"))
        ends.append(_duration_s(entry["at"]) + duration)
    first = min(_duration_s(e["at"]) for e in workload)
    shift = max(ends) - first + 3600  # an hour of slack: waiting jobs finish before the next starts
    repeated = []
    for k in range(times):
        for entry in workload:
            job = msgspec.json.decode(msgspec.json.encode(entry["apply"]))
            if k:
                job["metadata"]["name"] = f"{job['metadata']['name']}-r{k}"
            repeated.append({"at": f"{_duration_s(entry['at']) + k * shift}s", "apply": job})
    scenario["workload"] = repeated
    # Past the simulator's one-year horizon: run until the last repetition is over.
    scenario["until"] = f"{first + times * shift}s"
    return shift * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N pods of the trace")
    parser.add_argument("--repeat", type=int, default=1, help="run the workload K times end to end (default 1)")
    parser.add_argument("--ttl", type=int, help="set ttlSecondsAfterFinished to S on every job (default: none, as the trace)")
    parser.add_argument("--trace", default=str(TRACE))
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.ttl is not None and args.ttl < 0:
        parser.error("--ttl must be 0 or more")
    times = SessionTimes()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scenario_dict, recorded = import_openb(Path(args.trace), limit=args.limit)
        shift = repeat_workload(scenario_dict, args.repeat) if args.repeat > 1 else 0
        if args.ttl is not None:
            for entry in scenario_dict["workload"]:
                entry["apply"]["spec"]["ttlSecondsAfterFinished"] = args.ttl
        scenario_path = folder / "openb.json"
        scenario_path.write_bytes(msgspec.json.encode(scenario_dict))
        scenario = load_scenario(scenario_path)
        # the whole workload is held from the start (every repetition's manifests): the run's peak is above it
        loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        async with SoleWriterLog(open_log(f"sqlite:///{folder}/sim.db")) as log:
            t0, p0, c0 = time.perf_counter(), time.process_time(), time.thread_time()
            result = await run_scenario(scenario, log=log, settings=Settings(), clock=VirtualClock())
            wall = time.perf_counter() - t0
            process_cpu, thread_cpu = time.process_time() - p0, time.thread_time() - c0
            # the pipeline's own peak, before the events are read back below for the report
            run_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            events: list[Envelope] = []
            await read_to_tail(log, result.start, events.append)
        limit = await raw_log_limit(events, folder)
    report = build_report(events, end=result.now)
    rate = len(events) / wall
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    jobs = len(scenario.steps)
    snap_first, snap_last = times.tenths(times.snapshots)
    ssn_first, ssn_last = times.tenths([t for _, t in times.sessions])
    print(
        f"trace replay: {jobs:,} jobs on {sum(n.count if n.prefix else 1 for n in scenario.nodes):,} nodes, "
        f"{len(events):,} events, {result.sessions:,} scheduling sessions, {result.now / 3_600_000:,.0f} h of cluster time"
    )
    print(
        f"trace replay: wall {wall:,.1f} s = {rate:,.0f} events/s = {rate / limit:.3f} x the SQLite log alone "
        f"({limit:,.0f} events/s appending and reading the same events); peak RSS {run_peak_mb:,.0f} MiB "
        f"running the pipeline ({loaded_mb:,.0f} MiB with the workload loaded, before it ran), {peak_mb:,.0f} MiB "
        "with every event read back for this report"
    )
    print(
        f"trace replay: CPU {process_cpu:,.1f} s of the process (every thread: the log's writer too), "
        f"{thread_cpu:,.1f} s of the thread running the pipeline, of which sessions {sum(times.sessions_cpu):,.1f} s "
        f"(on two quiet cores the wall time follows the pipeline's thread)"
    )
    print(
        f"outcome: {len(report.never_ran)} job(s) never ran (trace: {recorded['never_ran']}), "
        f"GPU allocation mean {report.utilisation.get('nvidia.com/gpu', 0):.2%} (trace {recorded['gpu_allocation_mean']:.2%}), "
        f"stopped: {result.stopped}"
    )
    cpu_first, cpu_last = times.tenths(times.snapshots_cpu)
    ssn_cpu_first, ssn_cpu_last = times.tenths(times.sessions_cpu)
    print(
        f"per session, CPU: snapshot {cpu_first:.3f} ms in the first tenth of the sessions, {cpu_last:.3f} ms in the last "
        f"= {cpu_last / cpu_first:.2f}x; whole session {ssn_cpu_first:.3f} ms, {ssn_cpu_last:.3f} ms "
        f"= {ssn_cpu_last / ssn_cpu_first:.2f}x (snapshot in all: {sum(times.snapshots_cpu):,.1f} s, "
        f"sessions {sum(times.sessions_cpu):,.1f} s)"
    )
    med_first, med_last = times.median_tenths(times.snapshots)
    ssn_med_first, ssn_med_last = times.median_tenths([t for _, t in times.sessions])
    print(
        f"per session, wall: snapshot {snap_first:.3f} ms, {snap_last:.3f} ms = {snap_last / snap_first:.2f}x "
        f"(medians {med_first:.3f} ms, {med_last:.3f} ms = {med_last / med_first:.2f}x); whole session "
        f"{ssn_first:.3f} ms, {ssn_last:.3f} ms = {ssn_last / ssn_first:.2f}x (medians {ssn_med_first:.3f} ms, "
        f"{ssn_med_last:.3f} ms = {ssn_med_last / ssn_med_first:.2f}x); in all {sum(times.snapshots):,.1f} s "
        f"and {sum(t for _, t in times.sessions):,.1f} s"
    )
    live_first, live_last = times.tenths(times.live, scale=1)
    held_first, held_last = times.tenths(times.held, scale=1)
    print(
        f"per session: live podgroups {live_first:,.1f} in the first tenth, {live_last:,.1f} in the last "
        f"= {live_last / live_first:.2f}x; podgroups held in the state {held_first:,.0f}, {held_last:,.0f} "
        f"= {held_last / held_first:.1f}x (a session's cost follows the first, never the second)"
    )
    if args.repeat > 1:
        reps: list[list[float]] = [[] for _ in range(args.repeat)]
        for (now, _), spent in zip(times.sessions, times.sessions_cpu, strict=True):
            reps[min(now // shift, args.repeat - 1)].append(spent)
        means = [sum(r) / len(r) * 1000 if r else 0.0 for r in reps]
        medians = [statistics.median(r) * 1000 if r else 0.0 for r in reps]
        print(
            f"history growth: {args.repeat} repetitions, sessions {[len(r) for r in reps]}, CPU ms per session: mean "
            f"{[round(m, 3) for m in means]}, median {[round(m, 3) for m in medians]}; last / first = "
            f"{means[-1] / means[0]:.2f}x (mean), {medians[-1] / medians[0]:.2f}x (median) "
            f"(the last holds {args.repeat}x the history of the first, with the same live load)"
        )


if __name__ == "__main__":
    asyncio.run(main())
