"""The crash-torture harness: a 200-job workload, ``serve`` killed at random, and a checker.

Where it sits: test support for ``tests/integration/test_crash_torture.py``.
It drives the real ``eventbatch serve`` as a subprocess over a real log
(SQLite file or Kafka topic) and reads the log it leaves behind:

- ``workload()`` is a deterministic set of requests (three queues with
  weights, nodes, 200 jobs of 1-4 tasks; some fail on purpose under
  RestartJob / RestartTask policies with a maxRetry, some fail with no
  policy). The simulated kubelet runs each pod for its
  ``eventbatch.io/sim-duration`` (50-400 ms) and ends it with its
  ``eventbatch.io/sim-exit-code``, so an uninterrupted run takes seconds.
- ``Serve`` starts and SIGKILLs ``serve`` (or the fault-planting runner
  ``tests.support.faulty_serve``); ``torture()`` appends the workload, then
  kills ``serve`` each time the log's end passes a random position (a
  seeded ``random.Random``), restarting it with snapshots every N events,
  N cycling through the given values; ``reference()`` is the same workload
  without a kill.
- ``check()`` reads a finished log and lists every duplicated effect (a
  component answering one cause twice, a pod incarnation created, started,
  finished or deleted twice, a pod requested again while its incarnation
  lives, an effect applied to an incarnation that did not ask for it) and
  every lost one (a pod requested and never created, bound and never
  started, started and never finished, asked to be deleted and never
  deleted, a timer past due never fired, a job not in a final phase), and
  the outcome of every job (final phase, retries, pod exit codes).

Pods are keyed by incarnation, the position of the ``PodRequested`` that
asked for them, never by name: a restarted job reuses its pod names.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from eventbatch.cli.intents import intent_for
from eventbatch.clock import SystemClock
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from projections.job_records import FINAL_PHASES
from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    JobPhaseChanged,
    JobSubmitRequested,
    NodeAdded,
    NodeAddRequested,
    PodBound,
    PodCreated,
    PodDeleted,
    PodDeletionRequested,
    PodEvictionRequested,
    PodFailed,
    PodRequested,
    PodStarted,
    PodSucceeded,
    QueueCreated,
    TimerCancelled,
    TimerFired,
    TimerScheduled,
)
from schemas.loaders import load_manifests

ROOT = Path(__file__).resolve().parents[2]
JOBS = 200
WORKLOAD_SEED = 13
NODES = 24
QUEUES = {"default": 1, "research": 2, "batch": 3}
SIM_COMPONENTS = ("sim", "timers")  # components that answer causes with observations

# --- the workload ------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    setup: list  # queue and node requests, appended first
    jobs: list  # job submit requests
    kinds: dict[str, str]  # job key -> what it is meant to do ("ok", "restart-job", ...)


_QUEUE = "apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {{name: {name}}}\nspec: {{weight: {weight}}}\n"
_NODE = """\
apiVersion: v1
kind: Node
metadata: {{name: {name}, labels: {{kubernetes.io/hostname: {name}}}}}
status: {{capacity: {{cpu: "32", memory: 128Gi, pods: "110"}}, allocatable: {{cpu: "32", memory: 128Gi, pods: "110"}}}}
"""


def _task(name: str, replicas: int, cpu: int, duration_ms: int, exit_code: int, extra: str = "") -> str:
    annotations = f"eventbatch.io/sim-duration: {duration_ms}ms"
    if exit_code:
        annotations += f', eventbatch.io/sim-exit-code: "{exit_code}"'
    return (
        f"  - name: {name}\n    replicas: {replicas}\n{extra}"
        f"    template:\n      metadata: {{annotations: {{{annotations}}}}}\n"
        f"      spec: {{containers: [{{name: c, image: busybox, resources: {{requests: {{cpu: \"{cpu}\", memory: 1Gi}}}}}}]}}\n"
    )


def workload(jobs: int = JOBS, seed: int = WORKLOAD_SEED) -> Workload:
    """The same requests for the same arguments.

    Kinds: ``ok`` (every pod exits 0: Completed; a third of them with
    ``ttlSecondsAfterFinished: 1``, a timer that removes them a second
    later); ``restart-job`` (every pod
    exits 3, ``PodFailed -> RestartJob``, maxRetry 2: Failed after two
    restarts); ``restart-task`` (one task's pods exit 5, ``PodFailed ->
    RestartTask`` on that task, maxRetry 2, the others succeed first);
    ``no-policy`` (every pod exits 1, no policy).
    """
    rng = random.Random(seed)
    setup = [intent_for(m) for name, weight in QUEUES.items() for m in load_manifests(_QUEUE.format(name=name, weight=weight))]
    for i in range(NODES):
        setup += [intent_for(m) for m in load_manifests(_NODE.format(name=f"node-{i}"))]
    requests, kinds = [], {}
    queues = list(QUEUES)
    for j in range(jobs):
        kind = rng.choices(["ok", "restart-job", "restart-task", "no-policy"], weights=[60, 15, 15, 10])[0]
        ntasks = rng.randint(1, 4) if kind != "restart-task" else rng.randint(2, 4)
        tasks, spec, total = [], "", 0
        for t in range(ntasks):
            replicas = rng.choice([1, 1, 1, 2])
            cpu = rng.choice([1, 1, 2, 4])
            total += replicas
            if kind == "ok":
                tasks.append(_task(f"t{t}", replicas, cpu, rng.randint(50, 400), 0))
            elif kind == "restart-job":
                tasks.append(_task(f"t{t}", replicas, cpu, rng.randint(50, 400), 3))
            elif kind == "no-policy":
                tasks.append(_task(f"t{t}", replicas, cpu, rng.randint(50, 400), 1))
            elif t == 0:  # restart-task: the failing task runs longer than the others
                extra = "    maxRetry: 2\n    policies: [{event: PodFailed, action: RestartTask}]\n"
                tasks.append(_task(f"t{t}", replicas, cpu, rng.randint(300, 400), 5, extra))
            else:
                tasks.append(_task(f"t{t}", replicas, cpu, rng.randint(50, 150), 0))
        if kind == "restart-job":
            spec = "  maxRetry: 2\n  policies: [{event: PodFailed, action: RestartJob}]\n"
        elif kind == "ok" and rng.random() < 0.3:  # removed a second after it completes: a timer
            spec = "  ttlSecondsAfterFinished: 1\n"
        name = f"job-{j:03d}"
        text = (
            "apiVersion: batch.volcano.sh/v1alpha1\nkind: Job\n"
            f"metadata: {{name: {name}, namespace: default}}\n"
            f"spec:\n  queue: {queues[j % len(queues)]}\n  minAvailable: {total}\n{spec}"
            "  tasks:\n" + "".join(tasks)
        )
        [manifest] = load_manifests(text)
        requests.append(intent_for(manifest))
        kinds[f"default/{name}"] = kind
    return Workload(setup=setup, jobs=requests, kinds=kinds)


# --- reading the log ---------------------------------------------------------------


async def read_all(url: str) -> list[Envelope]:
    async with open_log(url) as log:
        events: list[Envelope] = []
        await read_to_tail(log, await log.start_position(), events.append)
    return events


class Tail:
    """An open handle on the log for polling its end (bounded waits, never blind sleeps)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.log = open_log(url)
        self._read = 0
        self._phase: dict[str, str] = {}  # job -> latest phase, for every job submitted so far

    async def all_final(self) -> bool:
        """Whether every job submitted so far is in a final phase (reads on from where it was)."""

        def fold(envelope: Envelope) -> None:
            p = envelope.payload
            if isinstance(p, JobSubmitRequested):
                self._phase.setdefault(p.job, "")
            elif isinstance(p, JobPhaseChanged):
                self._phase[p.job] = p.phase

        self._read = await read_to_tail(self.log, self._read, fold)
        return all(phase in FINAL_PHASES for phase in self._phase.values())

    async def __aenter__(self) -> Tail:
        await self.log.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.log.stop()

    async def end(self) -> int:
        return await self.log.end_position()

    async def wait_end(self, position: int, timeout: float, alive=None, idle: float = 5.0, done=None) -> bool:  # noqa: ASYNC109 - False at its deadline
        """Wait until the log's end passes ``position``. False at the deadline, once the log
        has not grown for ``idle`` seconds (the work ran out, or is stuck), if ``alive()``
        says the writer is gone, or if ``done()`` (awaited) says the work ran out."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            end = await self.end()
            if end > position:
                return True
            if end != last:
                last, since = end, time.monotonic()
            elif time.monotonic() - since > idle:
                return False
            if alive is not None and not alive():
                return False
            if done is not None and await done():
                return False
            await asyncio.sleep(0.02)
        return False

    async def append(self, events: list) -> list[int]:
        now = SystemClock().now()
        return await self.log.append([Envelope.wrap(e, recorded_at=now) for e in events])


# --- serve as a process --------------------------------------------------------------


RESTART_IDLE_S = 30.0
"""A kill waits this long for the log to grow before it takes the work as run out."""

SERVE_SETTINGS = {"EVENTBATCH_SIM_STARTUP_MS": "10", "EVENTBATCH_DEBOUNCE_MS": "5"}


class Serve:
    """``eventbatch serve --cluster sim`` (or the fault-planting runner) on one log."""

    def __init__(self, url: str, snapshots: Path, *, module: str = "eventbatch", stderr: Path | None = None) -> None:
        self.url = url
        self.snapshots = snapshots
        self.module = module
        self.stderr = stderr
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, snapshot_every: int) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "EVENTBATCH_SNAPSHOTS": str(self.snapshots),
            "EVENTBATCH_SNAPSHOT_EVERY": str(snapshot_every),
            **SERVE_SETTINGS,
        }
        err = open(self.stderr, "ab") if self.stderr is not None else asyncio.subprocess.DEVNULL  # noqa: ASYNC230 - a local file for the child's stderr
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.module, "--log", self.url, "--log-level", "WARNING",
                "serve", "--cluster", "sim",
                cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err,
            )
        finally:
            if self.stderr is not None:
                err.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> int | None:
        """SIGKILL and reap; returns the exit status (-9, or what it exited with before)."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        code = await self.process.wait()
        self.process = None
        return code


# --- runs ----------------------------------------------------------------------------


@dataclass
class Kill:
    target: int  # the log position the kill waited for
    at: int  # the log's end when the kill was sent
    snapshot_every: int  # of the serve that was killed
    reached: bool
    waited: float = 0.0  # seconds from the serve's start to the kill


@dataclass
class Run:
    url: str
    seconds: float = 0.0
    kills: list[Kill] = field(default_factory=list)
    settled: bool = False  # every job final and nothing outstanding before the deadline
    serve_died: list[int] = field(default_factory=list)  # exit statuses of serves that ended on their own
    incarnations: list[tuple[int, int]] = field(default_factory=list)  # (first position, snapshot_every) per serve
    waves: list[tuple[int, bool]] = field(default_factory=list)  # (kills before it, whether it came early) per wave

    def timeline(self) -> str:
        """The kills as target/end-at-the-kill (``!`` where the target was not reached) and the waves."""
        kills = " ".join(f"{k.target}/{k.at}{'' if k.reached else '!'}" for k in self.kills)
        waves = " ".join(f"{n}{'e' if early else ''}" for n, early in self.waves)
        return f"kills {kills}; waves after kill n (e: early) {waves}"


async def _setup(tail: Tail, load: Workload, serve: Serve, snapshot_every: int, timeout: float, jobs: list) -> int:  # noqa: ASYNC109 - fails naming what it waited for
    """Append the queues and nodes, wait for serve to create them, then append ``jobs``."""
    await tail.append(load.setup)
    await serve.start(snapshot_every)
    deadline = time.monotonic() + timeout
    queues, nodes = set(QUEUES), {r.node for r in load.setup if isinstance(r, NodeAddRequested)}
    position = 0
    while queues or nodes:
        if time.monotonic() > deadline:
            raise AssertionError(f"serve did not create the queues {queues} and nodes {nodes} in {timeout}s")
        seen: list[Envelope] = []
        position = await read_to_tail(tail.log, position, seen.append)
        for e in seen:
            if isinstance(e.payload, QueueCreated):
                queues.discard(e.payload.queue)
            elif isinstance(e.payload, NodeAdded):
                nodes.discard(e.payload.node)
        await asyncio.sleep(0.02)
    await submit(tail, jobs)
    return await tail.end()


async def submit(tail: Tail, jobs: list) -> None:
    for i in range(0, len(jobs), 20):  # as `apply -f` of files of 20 jobs would
        await tail.append(jobs[i : i + 20])


SETTLED_QUIET_S = 2.0  # how long a clean log stays still before ``settle`` takes it as settled


async def settle(url: str, load: Workload, timeout: float, idle: float = 5.0) -> tuple[bool, Report]:  # noqa: ASYNC109 - False at its deadline
    """Wait until every job is final and the checker sees nothing outstanding: True; or False
    at ``timeout``, or once the log has not grown for ``idle`` seconds (nothing can move any
    more: no pod runs longer than 400 ms and the workload sets no long timer)."""
    deadline = time.monotonic() + timeout
    events: list[Envelope] = []
    last_end, still_since = -1, time.monotonic()
    clean: Report | None = None
    async with Tail(url) as tail:
        position = await tail.log.start_position()
        while True:
            position = await read_to_tail(tail.log, position, events.append)
            now = time.monotonic()
            if position != last_end:
                last_end, still_since, clean = position, now, None
                if await tail.all_final():
                    report = check(events, load)
                    if report.finished and not report.lost:
                        clean = report
            elif clean is not None and now - still_since > SETTLED_QUIET_S:
                # Clean and still for longer than a job's ttlSecondsAfterFinished (1 s): its
                # timer, not yet due when the job went final, has fired and been answered.
                return True, clean
            if now > deadline or now - still_since > idle:
                return False, check(events, load)
            await asyncio.sleep(0.2)


async def reference(url: str, snapshots: Path, load: Workload, *, timeout: float = 90.0) -> tuple[Run, Report]:  # noqa: ASYNC109 - handed to settle
    """The workload through one serve that is never killed."""
    run = Run(url)
    started = time.monotonic()
    serve = Serve(url, snapshots)
    try:
        async with Tail(url) as tail:
            await _setup(tail, load, serve, 10_000, timeout, load.jobs)
        run.settled, report = await settle(url, load, timeout)
    finally:
        await serve.kill()
    run.seconds = time.monotonic() - started
    return run, check(await read_all(url), load)


# The furthest a kill lands past the log's end, by snapshot interval: a serve that
# snapshots every event moves slowly (each of its seven components saves its whole state
# per event), so its kills come sooner; every gap is drawn uniformly from 1 to this.
KILL_GAP = {1: 60, 10: 150, 100: 300}


async def torture(
    url: str,
    snapshots: Path,
    load: Workload,
    *,
    kills: int,
    seed: int,
    every: tuple[int, ...] = (100, 10, 1),
    waves: int = 16,
    module: str = "eventbatch",
    stderr: Path | None = None,
    timeout: float = 120.0,  # noqa: ASYNC109 - handed to _setup and settle
    step_timeout: float = 60.0,
) -> tuple[Run, Report]:
    """The workload through serve, SIGKILLed ``kills`` times at random log positions.

    Serve ``i`` snapshots every ``every[i % len(every)]`` events (largest
    first: a serve that snapshots every event restarts from snapshots at most
    ten events old instead of a hundred, which it would fold one snapshot per
    event). Its kill
    position is the log's end when it started plus a gap drawn by
    ``random.Random(seed)`` (``KILL_GAP``, an eighth of it once every wave is in); the harness waits until the log's
    end passes that position, SIGKILLs serve and starts the next one.

    The jobs arrive in ``waves`` equal parts, spread over the first 96% of
    the kills, so that there is work in flight at every kill, the last ones
    included (all at once,
    the 200 jobs would be done before the 50th restart; a job's outcome does
    not depend on when it arrives). A wave comes early when every job
    submitted so far is final, or when the log stops growing (stuck work).
    With no wave left, a kill position the log does not reach within
    ``step_timeout`` ends the killing. Then a serve snapshotting every
    ``max(every)`` events runs until the workload settles (``settle``) and
    is killed too; the report is taken on the log it leaves.
    """
    rng = random.Random(seed)
    run = Run(url)
    started = time.monotonic()
    serve = Serve(url, snapshots, module=module, stderr=stderr)
    size = -(-len(load.jobs) // waves)
    parts = [load.jobs[i : i + size] for i in range(0, len(load.jobs), size)]
    try:
        async with Tail(url) as tail:
            await _setup(tail, load, serve, every[0], timeout, parts.pop(0))
            run.incarnations.append((0, every[0]))
            n = 0
            while n < kills:
                interval = every[n % len(every)]
                if n > 0 and not serve.alive():
                    await serve.start(interval)
                    run.incarnations.append((await tail.end(), interval))
                if parts and n >= (waves - len(parts)) * (kills * 24 // 25) // max(waves - 1, 1):
                    await submit(tail, parts.pop(0))
                    run.waves.append((n, False))
                gap = KILL_GAP.get(interval, 300)
                if not parts:  # the last wave's work has to last the kills that are left
                    gap = max(1, gap // 8)
                target = await tail.end() + rng.randint(1, gap)
                since = time.monotonic()
                # idle: how long the log may stand still before the work counts as run out. It
                # includes a restarted serve's start (connecting, loading snapshots, catching up),
                # which takes seconds on a busy 2-core machine, on Kafka most of all.
                reached = await tail.wait_end(target, step_timeout, serve.alive, idle=RESTART_IDLE_S,
                                              done=tail.all_final)
                if not reached and parts and serve.alive():
                    await submit(tail, parts.pop(0))  # the work ran out before this wave was due
                    run.waves.append((n, True))
                    continue
                at = await tail.end()
                code = await serve.kill()
                if code != -signal.SIGKILL:
                    run.serve_died.append(code)
                run.kills.append(Kill(target, at, interval, reached, time.monotonic() - since))
                n += 1
                if not reached:
                    break
            while parts:
                await submit(tail, parts.pop(0))
            await serve.kill()
            await serve.start(max(every))
            run.incarnations.append((await tail.end(), max(every)))
        run.settled, _ = await settle(url, load, timeout)
    finally:
        await serve.kill()
    run.seconds = time.monotonic() - started
    return run, check(await read_all(url), load)


async def replay_verify(url: str) -> tuple[int, str]:
    """``eventbatch replay --verify --log URL`` with the settings serve ran with (the sim's
    startup latency is what the sim kubelet's effects are re-derived with): status and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, "replay", "--verify",
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **SERVE_SETTINGS},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode()


# --- the checker ---------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    kind: str  # what went wrong, e.g. "PodCreated twice"
    position: int  # where on the log (the cause, or the offending record)
    detail: str

    def __str__(self) -> str:
        return f"#{self.position} {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Outcome:
    phase: str
    retries: int
    exit_codes: tuple[int, ...]  # distinct exit codes of the job's pods, sorted


@dataclass
class Report:
    events: int
    duplicated: list[Finding] = field(default_factory=list)
    lost: list[Finding] = field(default_factory=list)
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # job key -> outcome

    @property
    def finished(self) -> bool:
        return all(o.phase in FINAL_PHASES for o in self.outcomes.values())

    def kinds(self) -> Counter:
        return Counter(f.kind for f in self.duplicated + self.lost)

    def summary(self, limit: int = 15) -> str:
        lines = [f"{self.events} events, {len(self.duplicated)} duplicated and {len(self.lost)} lost effect(s)"]
        lines += [f"  {count} x {kind}" for kind, count in sorted(self.kinds().items())]
        lines += [f"  {f}" for f in (self.duplicated + self.lost)[:limit]]
        return "\n".join(lines)


@dataclass
class _Incarnation:
    requested: int  # position of the PodRequested
    pod: str
    job: str
    created: list[int] = field(default_factory=list)
    bound: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    ended: list[tuple[int, int]] = field(default_factory=list)  # (position, exit code)
    deletion_asked: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    runs_forever: bool = False


def check(events: list[Envelope], load: Workload) -> Report:
    """Every duplicated and lost effect on a finished log, and each job's outcome."""
    report = Report(events=len(events))
    dup, lost = report.duplicated, report.lost
    at = {e.position: e for e in events}

    # 1. No component answers one cause with the same index twice.
    answers: dict[tuple[int, str, int], list[int]] = defaultdict(list)
    for e in events:
        if e.causation is not None:
            answers[(e.causation.position, e.causation.handler, e.causation.index)].append(e.position)
    for (cause, handler, index), positions in sorted(answers.items()):
        if len(positions) > 1:
            kind = at[positions[0]].type
            dup.append(Finding(f"{handler} answered a cause twice", positions[1],
                               f"{kind} index {index} at {positions} answering "
                               f"{at[cause].type if cause in at else '?'} #{cause}"))

    # 2. Pods by incarnation.
    current: dict[str, _Incarnation] = {}  # pod name -> latest incarnation
    incarnations: dict[int, _Incarnation] = {}
    for e in events:
        p = e.payload
        if isinstance(p, PodRequested):
            previous = current.get(p.pod)
            if previous is not None and not previous.deleted and not previous.ended:
                dup.append(Finding("pod requested while its incarnation lives", e.position,
                                   f"{p.pod} (incarnation #{previous.requested} neither ended nor deleted)"))
            inc = _Incarnation(e.position, p.pod, p.job,
                               runs_forever="eventbatch.io/sim-duration" not in p.manifest.metadata.annotations)
            current[p.pod] = incarnations[e.position] = inc
            continue
        pod = getattr(p, "pod", None)
        if not isinstance(pod, str) or pod not in current:
            continue
        inc = current[pod]
        if isinstance(p, PodCreated):
            inc.created.append(e.position)
        elif isinstance(p, PodBound):
            inc.bound.append(e.position)
        elif isinstance(p, PodStarted):
            inc.started.append(e.position)
        elif isinstance(p, PodSucceeded):
            inc.ended.append((e.position, 0))
        elif isinstance(p, PodFailed):
            inc.ended.append((e.position, p.exit_code))
        elif isinstance(p, PodDeletionRequested | PodEvictionRequested):
            inc.deletion_asked.append(e.position)
        elif isinstance(p, PodDeleted):
            inc.deleted.append(e.position)

    for inc in incarnations.values():
        name = f"{inc.pod} (#{inc.requested})"
        for what, positions in (("PodCreated", inc.created), ("PodStarted", inc.started),
                                ("PodDeleted", inc.deleted), ("PodSucceeded/PodFailed", [p for p, _ in inc.ended])):
            if len(positions) > 1:
                dup.append(Finding(f"{what} twice for one pod", inc.requested, f"{name} at {positions}"))
        # An observation must answer a cause of this incarnation, not of an earlier one.
        for position in inc.created:
            cause = at[position].causation
            if cause is None or cause.position != inc.requested:
                dup.append(Finding("PodCreated answers another incarnation", position,
                                   f"{name}: causation {cause}"))
        for position in inc.started:
            cause = at[position].causation
            if cause is None or cause.position not in inc.bound:
                dup.append(Finding("PodStarted answers another incarnation", position,
                                   f"{name}: causation {cause}, bound at {inc.bound}"))
        for position in inc.deleted:
            cause = at[position].causation
            if cause is None or cause.position not in inc.deletion_asked:
                dup.append(Finding("PodDeleted answers another incarnation", position,
                                   f"{name}: causation {cause}, deletion asked at {inc.deletion_asked}"))
        # Lost: every step the sim owes this incarnation happened.
        if not inc.created and not inc.deleted:
            lost.append(Finding("PodRequested never answered", inc.requested, f"{name}: no PodCreated"))
        if inc.bound and not inc.started and not inc.deleted and not inc.deletion_asked:
            lost.append(Finding("PodBound never started", inc.bound[0], name))
        if inc.started and not inc.ended and not inc.deleted and not inc.deletion_asked and not inc.runs_forever:
            lost.append(Finding("PodStarted never finished", inc.started[0], name))
        if inc.deletion_asked and not inc.deleted:
            lost.append(Finding("PodDeletionRequested never answered", inc.deletion_asked[0], name))

    # 3. Timers: each past due fires once, unless cancelled or replaced first.
    end_time = max((e.recorded_at for e in events), default=0)
    pending: dict[str, Envelope] = {}
    for e in events:
        p = e.payload
        if isinstance(p, TimerScheduled):
            pending[p.timer] = e
        elif isinstance(p, TimerCancelled | TimerFired):
            pending.pop(p.timer, None)
    for timer, e in sorted(pending.items(), key=lambda kv: kv[1].position):
        if e.payload.fire_at < end_time - 1_000:  # a second of slack for the last ones
            lost.append(Finding("TimerScheduled past due never fired", e.position,
                                f"{timer} due at {e.payload.fire_at}, log ends at {end_time}"))

    # 4. Jobs: every submitted job created, and its outcome.
    created = {e.payload.job for e in events if isinstance(e.payload, JobCreated)}
    submitted = [e for e in events if isinstance(e.payload, JobSubmitRequested)]
    phase: dict[str, JobPhaseChanged] = {}
    for e in events:
        if isinstance(e.payload, JobPhaseChanged):
            phase[e.payload.job] = e.payload
    codes: dict[str, set[int]] = defaultdict(set)
    for inc in incarnations.values():
        for _, code in inc.ended[:1]:
            codes[inc.job].add(code)
    for e in submitted:
        job = e.payload.job
        if job not in created:
            lost.append(Finding("JobSubmitRequested never created", e.position, job))
        last = phase.get(job)
        outcome = Outcome(last.phase if last else "(none)", last.retry_count if last else 0, tuple(sorted(codes[job])))
        report.outcomes[job] = outcome
        if outcome.phase not in FINAL_PHASES:
            lost.append(Finding("job not in a final phase", e.position, f"{job} is {outcome.phase}"))
    return report


def by_snapshot_interval(run: Run, report: Report) -> dict[int, Counter]:
    """Findings per snapshot interval of the serve that appended the offending record
    (a loss counts against the serve running when its cause was appended)."""
    out: dict[int, Counter] = defaultdict(Counter)
    starts = run.incarnations
    for finding in report.duplicated + report.lost:
        every = starts[0][1] if starts else 0
        for first, n in starts:
            if first <= finding.position:
                every = n
        out[every][finding.kind] += 1
    return dict(out)


def compare_outcomes(reference: Report, other: Report) -> list[str]:
    """Each job whose outcome differs from the reference's, one line each."""
    return [
        f"{job}: {other.outcomes.get(job)} (reference {want})"
        for job, want in sorted(reference.outcomes.items())
        if other.outcomes.get(job) != want
    ]
