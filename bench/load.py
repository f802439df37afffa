"""Throughput under load: open-loop job submissions through ``eventbatch serve``.

Where it sits: outside the pipeline, measuring what a user of ``serve`` gets.
For each backend (SQLite, and Kafka on a tansu broker the bench starts, or
``--kafka HOST:PORT``) it makes a fresh log, appends node and queue requests
(a mixed cluster: 16-, 32- and 64-cpu nodes, the 64-cpu pool labelled and
tainted for GPU work; three queues of different weights), starts
``eventbatch serve --cluster sim`` as a subprocess with the shipped defaults
(debounce, simulated startup latency of 1 s, SQLite poll interval, a snapshot
store at the default interval), waits until the cluster is answered, and then
submits ``JobSubmitRequested`` records on a fixed schedule (open loop: the
n-th job is due at ``n / rate`` whatever happened to the previous ones), one
append per job as ``eventbatch job submit`` does, at each rate for
``--seconds``. Jobs have 2 pods of one of four sizes, one of three queues,
one job in five asks for the tainted pool with a node selector and a
toleration, and every pod runs 1 s in the simulator, so jobs complete and the
live set stays bounded while the history grows from rate to rate.

A reader in the bench follows the log and stamps the wall-clock time at
which it sees each job's ``JobPhaseChanged{phase: Running}``; submit ->
Running is that time minus the request's ``recorded_at``. It includes the
simulated kubelet's startup latency (pods start 1 s after their bind, as on
a cluster pulling a warm image), so the pipeline's own share is printed as
``p99-startup``. Per rate it prints the achieved submission rate, p50 / p99 /
max submit -> Running, how long the last jobs took to reach Running after
the submissions stopped (``drain``), and whether a backlog built: the
median latency of the last quarter of the submissions more than 0.5 s above
the first quarter's, or jobs not Running within the drain deadline. It
also counts the submissions the job controller skipped: never answered
(neither a ``JobCreated`` nor a ``JobSubmitRefused`` by the drain deadline)
while a later one was. A backlog leaves the latest unanswered; one among
answered later ones is a lost trigger, which the pipeline must never have.

``cpu ms/job`` is serve's own CPU time (all its threads, and the children it
forks to encode large snapshots, from /proc) over the
rate and its drain, per job submitted: unlike the latencies it hardly moves
when other processes share the machine, so it is the figure to compare two
versions with (``--serve-root`` runs serve from another checkout;
``--profile FILE`` runs it under cProfile). On Kafka, when the bench started
the broker, the broker's CPU time per job is printed below it: on two cores
serve, the broker and the bench's own client share the machine.

The limits, measured in the same run on the same records: the raw
append + read of the log backend (the records the run wrote per job, each
trigger's and component's batch kept whole and consecutive batches grouped
into appends of up to 1,000 records, the most serve's grouped appends put
into one, then read back once) and raw codec decode of the same records,
each as jobs per second. The sustained rate is printed as a ratio of both.

How costs grow: per job the pipeline appends a fixed number of records
(printed as ``rec/job``) that each component folds; a scheduling session costs
O(pending pods x nodes) and is shared by every job that arrived within one
debounce window, so its cost per job falls as the rate rises; folding
completed jobs costs nothing more, but the folded state (and so each
snapshot's size) grows with history; snapshots are spaced by that size
(every 10,000 events per component up to 512 KiB of state, proportionally more
above), so their cost per event does not.

    python bench/load.py [--rates 50,100,200,400,600] [--seconds 15] [--backend sqlite,kafka]
    python bench/load.py --quick        # ~5 s at a low rate on SQLite: a smoke test
    python bench/load.py --backend sqlite --serve-root ../other-checkout
    python bench/load.py --backend sqlite --rates 400 --stages   # where the slow jobs' time went

``--stages`` also stamps when the reader sees each job's ``JobCreated``,
``PodGroupEnqueued``, first ``PodRequested``, ``PodCreated``, ``PodBound`` and
``PodStarted``, and prints per step the median over all jobs and the mean over
the jobs at or above the p99: a step that is slow only for the p99 jobs points
at one component, every step slower at once at the event loop being held.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eventbatch.clock import SystemClock  # noqa: E402
from eventbatch.log.codec import decode  # noqa: E402
from eventbatch.log.factory import open_log  # noqa: E402
from eventbatch.sim.inputs import nodes_of  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402
from schemas.events import JobSubmitRequested, NodeAddRequested, QueueCreateRequested  # noqa: E402
from schemas.loaders import load_manifests  # noqa: E402
from schemas.resources import Taint  # noqa: E402
from schemas.scenario import NodeEntry  # noqa: E402

SERVE_ROOT = ROOT  # the checkout serve runs from (--serve-root: compare two versions)
STARTUP_MS = 1000  # the shipped EVENTBATCH_SIM_STARTUP_MS: part of every submit -> Running
CLOCK = SystemClock()

NODES = [
    NodeEntry(prefix="small-", count=100, allocatable={"cpu": 16, "memory": "64Gi"}),
    NodeEntry(prefix="large-", count=50, allocatable={"cpu": 32, "memory": "128Gi"}, labels={"disk": "ssd"}),
    NodeEntry(
        prefix="gpu-", count=20, allocatable={"cpu": 64, "memory": "256Gi"}, labels={"pool": "gpu"},
        taints=[Taint(key="dedicated", value="gpu", effect="NoSchedule")],
    ),
]
QUEUES = {"analytics": 1, "training": 2, "batch": 1}
SIZES = [("250m", "512Mi"), ("500m", "1Gi"), ("1", "2Gi"), ("2", "4Gi")]
JOB = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {{name: template, namespace: {namespace}}}
spec:
  minAvailable: 2
  queue: {queue}
  tasks:
    - name: w
      replicas: 2
      template:
        metadata: {{annotations: {{eventbatch.io/sim-duration: 1s}}}}
        spec:
          {placement}
          containers: [{{name: c, image: busybox, resources: {{requests: {{cpu: "{cpu}", memory: {memory}}}}}}}]
"""
GPU_PLACEMENT = (
    "nodeSelector: {pool: gpu}\n          "
    "tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]"
)


def job_templates():
    """The mixed inputs, in the order jobs cycle through them (deterministic)."""
    out = []
    for i in range(20):
        cpu, memory = SIZES[i % len(SIZES)]
        queue = list(QUEUES)[i % len(QUEUES)]
        placement = GPU_PLACEMENT if i % 5 == 4 else ""
        text = JOB.format(namespace=f"team-{i % 2}", queue=queue, cpu=cpu, memory=memory, placement=placement)
        out.append(load_manifests(text)[0])
    return out


def submission(templates, n: int, tag: str) -> JobSubmitRequested:
    manifest = templates[n % len(templates)]
    meta = msgspec.structs.replace(manifest.metadata, name=f"load-{tag}-{n:06d}")
    manifest = msgspec.structs.replace(manifest, metadata=meta)
    return JobSubmitRequested(job=f"{meta.namespace}/{meta.name}", manifest=manifest)


# --- the observer ----------------------------------------------------------------


class _Payload(msgspec.Struct):
    job: str | None = ""
    phase: str = ""


class _Record(msgspec.Struct):
    type: str
    recorded_at: int
    payload: _Payload


_record = msgspec.json.Decoder(_Record)


STAGES = ("JobCreated", "PodGroupEnqueued", "PodRequested", "PodCreated", "PodBound", "PodStarted")
STAGE_PREFIXES = tuple(b'{"type":"%s"' % name.encode() for name in STAGES)
ANSWERS = (b'{"type":"JobCreated"', b'{"type":"JobSubmitRefused"')  # the job controller's answers to a submission


@dataclass
class Observer:
    """Follows the log on its own handle; stamps when each job is seen Running."""

    submitted: dict[str, int] = field(default_factory=dict)  # job -> recorded_at of its request
    running: dict[str, int] = field(default_factory=dict)  # job -> wall time it was seen Running
    answered: set[str] = field(default_factory=set)  # jobs whose submission was answered (created or refused)
    # (event type, job) -> wall time the first such record of the job was seen (``--stages``)
    seen: dict[tuple[str, str], int] | None = None
    records: int = 0
    end: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, url: str) -> None:
        async with open_log(url) as log, contextlib.aclosing(log.read_records(0, follow=True)) as chunks:
            async for chunk in chunks:
                now = CLOCK.now()
                seen = self.seen
                for _position, data in chunk:
                    if data.startswith(ANSWERS):
                        self.answered.add(_record.decode(data).payload.job or "")
                    if seen is not None and data.startswith(STAGE_PREFIXES):
                        record = _record.decode(data)
                        if record.payload.job:
                            seen.setdefault((record.type, record.payload.job), now)
                    if b'"Running"' in data and b'"JobPhaseChanged"' in data:
                        record = _record.decode(data)
                        if record.type == "JobPhaseChanged" and record.payload.phase == "Running":
                            self.running.setdefault(record.payload.job or "", now)
                self.records += len(chunk)
                self.end = chunk[-1][0] + 1
                self.changed.set()


# --- one rate ----------------------------------------------------------------------


@dataclass
class RateResult:
    rate: int
    start: int  # the log's end when the rate began
    achieved: float
    jobs: int
    latencies: list[int]  # ms, of the jobs that reached Running, in submission order
    missing: int
    unanswered: int  # submissions never answered while a later one was (``skipped``)
    drain_ms: int
    records: int
    backlog: bool
    trend: tuple[float, float]  # median latency of the first and the last quarter, ms
    cpu_ms: float  # serve's CPU time over the rate and its drain, per job submitted
    broker_cpu_ms: float | None = None  # the same for the Kafka broker the bench started
    stages: dict[str, tuple[float, float]] | None = None  # step -> (median of all, mean of the p99 jobs), ms


def stage_times(observer: Observer, jobs: list[str]) -> dict[str, tuple[float, float]]:
    """Where submit -> Running went, step by step (as the bench's reader saw each record):
    the median over every job that ran, and the mean over the jobs at or above the p99."""
    assert observer.seen is not None
    seen = observer.seen
    steps = ["submit", *STAGES, "Running"]
    rows: list[tuple[int, list[int]]] = []
    for job in jobs:
        if job not in observer.running:
            continue
        times = [observer.submitted[job], *(seen.get((stage, job), -1) for stage in STAGES), observer.running[job]]
        if -1 in times:
            continue
        rows.append((times[-1] - times[0], [b - a for a, b in zip(times, times[1:], strict=False)]))
    if not rows:
        return {}
    cut = pct([total for total, _ in rows], .99)
    slow = [gaps for total, gaps in rows if total >= cut]
    return {
        f"{a}->{b}": (statistics.median(g[i] for _, g in rows), statistics.fmean(g[i] for g in slow))
        for i, (a, b) in enumerate(zip(steps, steps[1:], strict=False))
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, and of its children it
    waited for (the forked copies that encode large snapshots): robust to a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def pct(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def skipped(jobs: list[str], answered: set[str]) -> int:
    """Submissions left unanswered while a later one was answered: lost triggers, not a backlog
    (a backlog leaves the latest ones unanswered)."""
    last = max((i for i, job in enumerate(jobs) if job in answered), default=-1)
    return sum(1 for job in jobs[:last] if job not in answered)


async def run_rate(
    url: str, observer: Observer, templates, rate: int, seconds: float, drain_s: float, serve_pid: int,
    broker_pid: int | None = None,
) -> RateResult:
    tag = f"r{rate}-{uuid.uuid4().hex[:4]}"
    cpu_before = cpu_seconds(serve_pid)
    broker_before = cpu_seconds(broker_pid) if broker_pid is not None else 0.0
    total = int(rate * seconds)
    jobs: list[str] = []
    async with open_log(url) as log:
        start_records = await log.end_position()
        t0 = time.perf_counter()
        for n in range(total):
            due = t0 + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event = submission(templates, n, tag)
            now = CLOCK.now()
            await log.append([Envelope.wrap(event, recorded_at=now)])
            observer.submitted[event.job] = now
            jobs.append(event.job)
        elapsed = time.perf_counter() - t0
        ended = CLOCK.now()
        deadline = time.perf_counter() + drain_s
        while time.perf_counter() < deadline and not all(job in observer.running for job in jobs):
            observer.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await observer.changed.wait()
        # Let the jobs finish (1 s of run time) so the next rate starts on a quiet cluster.
        await asyncio.sleep(1.5)
        end_records = await log.end_position()
    cpu = cpu_seconds(serve_pid) - cpu_before
    broker_cpu = cpu_seconds(broker_pid) - broker_before if broker_pid is not None else None
    latencies = [observer.running[j] - observer.submitted[j] for j in jobs if j in observer.running]
    missing = total - len(latencies)
    last_running = max((observer.running[j] for j in jobs if j in observer.running), default=ended)
    quarter = max(1, len(latencies) // 4)
    first, last = statistics.median(latencies[:quarter] or [0]), statistics.median(latencies[-quarter:] or [0])
    return RateResult(
        rate=rate,
        start=start_records,
        achieved=total / elapsed if elapsed > 0 else float("inf"),
        jobs=total,
        latencies=latencies,
        missing=missing,
        unanswered=skipped(jobs, observer.answered),
        drain_ms=max(0, last_running - ended),
        records=end_records - start_records,
        backlog=missing > 0 or last - first > 500,
        trend=(first, last),
        cpu_ms=1000 * cpu / total,
        broker_cpu_ms=None if broker_cpu is None else 1000 * broker_cpu / total,
        stages=stage_times(observer, jobs) if observer.seen is not None else None,
    )


# --- the limits ----------------------------------------------------------------------


def batches_of(records: list[tuple[int, bytes]], group: int = 1000) -> list[list[bytes]]:
    """The records as appends at their largest: one batch per (trigger, component), consecutive
    batches grouped up to ``group`` records (``SharedReads.group_limit``), as grouped appends
    would send them if every batch were due at once."""
    out: list[list[bytes]] = []
    last = None
    for position, data in records:
        item = decode(position, data)
        cause = getattr(item, "causation", None)
        key = (cause.position, cause.handler) if cause is not None else None
        if key is not None and key == last:
            out[-1].append(data)
        else:
            out.append([data])
        last = key
    grouped: list[list[bytes]] = []
    for batch in out:
        if grouped and len(grouped[-1]) + len(batch) <= group:
            grouped[-1].extend(batch)
        else:
            grouped.append(list(batch))
    return grouped


async def limits(url_for_floor: str, records: list[tuple[int, bytes]], jobs: int) -> tuple[float, float]:
    """Raw append+read and raw decode of the same records, in jobs per second (best of 3)."""
    batches = batches_of(records)
    decode_best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for position, data in records:
            decode(position, data)
        decode_best = min(decode_best, time.perf_counter() - started)
    log_best = float("inf")
    for attempt in range(3):
        async with open_log(url_for_floor.format(attempt=attempt)) as log:
            started = time.perf_counter()
            for batch in batches:
                await log.append_raw(batch)
            count = 0
            async with contextlib.aclosing(log.read_records(0)) as chunks:
                async for chunk in chunks:
                    count += len(chunk)
            log_best = min(log_best, time.perf_counter() - started)
    return jobs / log_best, jobs / decode_best


# --- one backend ------------------------------------------------------------------


async def setup_cluster(url: str) -> int:
    """Node and queue requests; returns how many facts serve must answer them with."""
    now = CLOCK.now()
    events = []
    for entry in NODES:
        events.extend(NodeAddRequested(node=node.metadata.name, manifest=node) for node in nodes_of(entry))
    for name, weight in QUEUES.items():
        text = f"apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {{name: {name}}}\nspec: {{weight: {weight}}}\n"
        events.append(QueueCreateRequested(queue=name, manifest=load_manifests(text)[0]))
    async with open_log(url) as log:
        await log.append([Envelope.wrap(e, recorded_at=now) for e in events])
    return len(events)


async def wait_answered(url: str, count: int) -> None:
    async with open_log(url) as log:
        answered = 0
        async with contextlib.aclosing(log.read(0, follow=True)) as events:
            async for envelope in events:
                if envelope.type in ("NodeAdded", "QueueCreated"):
                    answered += 1
                    if answered >= count:
                        return


async def start_serve(url: str, workdir: Path, profile: str | None = None) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBATCH_")}
    env.update({"PYTHONPATH": str(SERVE_ROOT), "EVENTBATCH_SNAPSHOTS": str(workdir / "snapshots.db")})
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    return await asyncio.create_subprocess_exec(
        sys.executable, *profiler, "-m", "eventbatch", "--log", url, "--log-level", "WARNING", "serve", "--cluster", "sim",
        cwd=workdir, env=env,
    )


def observer_url(url: str) -> str:
    """The bench's own reading handle: polls often so its stamps are close to the truth."""
    return url + ("?poll_interval=0.005" if url.startswith("sqlite") else "?poll_ms=10")


async def run_backend(
    name: str, url: str, floor_url: str, rates: list[int], seconds: float, drain_s: float, profile: str | None = None,
    stages: bool = False, broker_pid: int | None = None,
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="eventbatch-load-"))
    answers = await setup_cluster(url)
    serve = await start_serve(url, workdir, profile)
    observer = Observer(seen={} if stages else None)
    watcher = asyncio.create_task(observer.follow(observer_url(url)))
    results: list[RateResult] = []
    try:
        async with asyncio.timeout(60):
            await wait_answered(url, answers)
        templates = job_templates()
        print(f"\n{name}: {sum(e.count for e in NODES)} nodes, {len(QUEUES)} queues, 2-pod jobs of 1 s, "
              f"{seconds:g} s per rate; serve with the default settings (startup {STARTUP_MS} ms)")
        print(f"{'rate':>6} {'achieved':>9} {'jobs':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
              f"{'p99-startup':>11} {'drain ms':>9} {'rec/job':>7} {'cpu ms/job':>10}  backlog (first -> last quarter p50)")
        for rate in rates:
            if serve.returncode is not None:
                raise RuntimeError(f"serve exited with {serve.returncode}")
            result = await run_rate(url, observer, templates, rate, seconds, drain_s, serve.pid, broker_pid)
            results.append(result)
            lat = result.latencies
            print(
                f"{rate:>6} {result.achieved:>9.0f} {result.jobs:>6} {pct(lat, .5):>8.0f} {pct(lat, .99):>8.0f} "
                f"{max(lat, default=float('nan')):>8.0f} {pct(lat, .99) - STARTUP_MS:>11.0f} "
                f"{result.drain_ms:>9} {result.records / result.jobs:>7.1f} {result.cpu_ms:>10.2f}  "
                f"{'YES' if result.backlog else 'no'} ({result.trend[0]:.0f} -> {result.trend[1]:.0f} ms"
                f"{f', {result.missing} not Running' if result.missing else ''}"
                f"{f', {result.unanswered} skipped: never answered, a later one answered' if result.unanswered else ''})",
                flush=True,
            )
            if result.broker_cpu_ms is not None:
                print(f"{'':>6} the broker: {result.broker_cpu_ms:.2f} cpu ms/job", flush=True)
            if result.stages:
                print("       where it went, ms (median of all jobs / mean of the p99 jobs): " + ", ".join(
                    f"{step} {median:.0f}/{slow:.0f}" for step, (median, slow) in result.stages.items()
                ), flush=True)
            if result.backlog and result.missing > result.jobs // 2:
                print("       (stopping: the pipeline is saturated)")
                break
    finally:
        if serve.returncode is None:
            serve.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(20):
                    await serve.wait()
            except TimeoutError:
                serve.kill()
                await serve.wait()
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    # The limits, on the records of the highest rate whose every job ran (each of its jobs
    # complete, so the records per job are the whole life of a job).
    sustained = [r for r in results if not r.backlog and pct(r.latencies, .99) - STARTUP_MS < 1000]
    index = max((i for i, r in enumerate(results) if not r.missing), default=0)
    last = results[index]
    async with open_log(url) as log:
        start = last.start
        end = start + last.records
        records: list[tuple[int, bytes]] = []
        async with contextlib.aclosing(log.read_records(start)) as chunks:
            async for chunk in chunks:
                records.extend(item for item in chunk if item[0] < end)
                if chunk[-1][0] + 1 >= end:
                    break
    log_floor, decode_floor = await limits(floor_url, records, last.jobs)
    best = max((r.rate for r in sustained), default=0)
    print(f"limits on the same records ({last.records / last.jobs:.1f} per job): raw append+read "
          f"{log_floor:,.0f} jobs/s, raw decode {decode_floor:,.0f} jobs/s")
    print(f"sustained (no backlog, p99-startup < 1 s): {best} jobs/s = {best / log_floor:.3f} x append+read, "
          f"{best / decode_floor:.3f} x decode")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="50,100,200,400,600", help="jobs per second, comma separated")
    parser.add_argument("--seconds", type=float, default=15.0, help="submission time per rate")
    parser.add_argument("--drain", type=float, default=20.0, help="seconds to wait for Running after a rate")
    parser.add_argument("--backend", default="sqlite,kafka", help="sqlite, kafka or both")
    parser.add_argument("--kafka", help="HOST:PORT of a broker (default: start tansu; or KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--quick", action="store_true", help="smoke test: SQLite, 20 jobs/s for 5 s")
    parser.add_argument("--profile", metavar="FILE", help="run serve under cProfile, writing FILE (one backend)")
    parser.add_argument("--stages", action="store_true", help="print where submit -> Running went, step by step")
    parser.add_argument("--serve-root", help="run serve from this checkout (to compare two versions)")
    args = parser.parse_args()
    if args.serve_root:
        global SERVE_ROOT
        SERVE_ROOT = Path(args.serve_root).resolve()
    return args


async def main() -> None:
    args = parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    backends = args.backend.split(",")
    if args.quick:
        rates, args.seconds, args.drain, backends = [20], 5.0, 15.0, ["sqlite"]
    print(f"bench/load.py: load {os.getloadavg()[0]:.2f} at start ({os.cpu_count()} cores)")
    tmp = Path(tempfile.mkdtemp(prefix="eventbatch-load-"))
    if "sqlite" in backends:
        await run_backend(
            "sqlite", f"sqlite://{tmp}/events.db", f"sqlite://{tmp}/floor-{{attempt}}.db", rates, args.seconds, args.drain,
            args.profile, args.stages,
        )
    if "kafka" in backends:
        bootstrap = args.kafka or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        broker = None
        if not bootstrap:
            from tests.support.broker import TansuBroker

            broker = TansuBroker().start()
            bootstrap = broker.bootstrap
        try:
            topic = f"load-{uuid.uuid4().hex[:8]}"
            await run_backend(
                "kafka", f"kafka://{bootstrap}/{topic}", f"kafka://{bootstrap}/{topic}-floor-{{attempt}}",
                rates, args.seconds, args.drain, args.profile, args.stages,
                broker_pid=broker.pid if broker is not None else None,
            )
        finally:
            if broker is not None:
                broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
