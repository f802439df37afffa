"""The simulation report, computed from the log alone.

Where it sits: after ``eventbatch simulate`` (and ``--cycles``) ran, this
module folds the events it appended into what a platform team asks of a
run: each job's phase timeline, where each pod ran and when, every eviction
with its reason and preemptor, each queue's podgroup counts over time, wait
time percentiles per queue, cluster utilisation and makespan. Times are
milliseconds of virtual time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    JobPhaseChanged,
    NodeAdded,
    NodeRemoved,
    PodBound,
    PodDeleted,
    PodEvicted,
    PodEvictionRequested,
    PodFailed,
    PodGroupCreated,
    PodGroupEnqueued,
    PodGroupPhaseChanged,
    PodGroupUnschedulable,
    PodPipelined,
    PodRequested,
    PodStarted,
    PodSucceeded,
)
from schemas.quantity import to_resources

RESOURCES = ("cpu", "memory", "nvidia.com/gpu")


def duration(ms: float | int | None) -> str:
    """Virtual milliseconds as ``1h02m03s``, ``4m05s``, ``6.7s`` (``-`` for None)."""
    if ms is None:
        return "-"
    ms = int(ms)
    seconds, millis = divmod(ms, 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}.{millis // 100}s" if millis else f"{secs}s"


@dataclass
class JobLine:
    job: str
    queue: str
    submitted: int
    phases: list[tuple[int, str]] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return self.phases[-1][1] if self.phases else "Pending"

    @property
    def wait(self) -> int | None:
        running = next((t for t, p in self.phases if p == "Running"), None)
        return None if running is None else running - self.submitted


@dataclass
class PodLine:
    pod: str
    job: str
    node: str = ""
    bound: int | None = None
    started: int | None = None
    finished: int | None = None
    result: str = ""


@dataclass
class Eviction:
    at: int
    pod: str
    reason: str
    preemptor: str
    rule: str


@dataclass
class Report:
    jobs: list[JobLine]
    pods: list[PodLine]
    evictions: list[Eviction]
    queue_series: list[dict]
    waits: dict[str, dict[str, float]]
    utilisation: dict[str, float]
    gpu_series: list[tuple[int, float]]
    makespan: int | None
    never_ran: list[str]
    binds: list[tuple[str, str, str]] = field(default_factory=list)  # pod, node, rule
    pipelined: list[tuple[str, str, str]] = field(default_factory=list)
    podgroups: dict[str, str] = field(default_factory=dict)
    unschedulable: dict[str, str] = field(default_factory=dict)


def percentile(values: list[int], q: float) -> float:
    """Nearest-rank percentile of ``values`` (sorted here), q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 100))
    return float(ordered[int(rank) - 1])


def summarize(values: list[int]) -> dict[str, float]:
    """Count, p50, p90, p99 and max of some durations."""
    if not values:
        return {"jobs": 0}
    return {
        "jobs": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": float(max(values)),
    }


class _Usage:
    """Time-weighted allocation of each resource against cluster capacity."""

    def __init__(self) -> None:
        self.capacity: dict[str, int] = defaultdict(int)
        self.allocated: dict[str, int] = defaultdict(int)
        self.area_used: dict[str, float] = defaultdict(float)
        self.area_cap: dict[str, float] = defaultdict(float)
        self.last: int | None = None
        self.gpu_series: list[tuple[int, float]] = []

    def advance(self, now: int) -> None:
        if self.last is not None and now > self.last:
            span = now - self.last
            for r in RESOURCES:
                self.area_used[r] += self.allocated[r] * span
                self.area_cap[r] += self.capacity[r] * span
        self.last = now

    def change(self, now: int, amounts: dict[str, int], sign: int, *, capacity: bool = False) -> None:
        self.advance(now)
        target = self.capacity if capacity else self.allocated
        for r, v in amounts.items():
            target[r] += sign * v
        gpus = self.capacity["nvidia.com/gpu"]
        if gpus:
            ratio = self.allocated["nvidia.com/gpu"] / gpus
            if not self.gpu_series or self.gpu_series[-1][1] != ratio:
                self.gpu_series.append((now, ratio))

    def ratios(self) -> dict[str, float]:
        return {r: (self.area_used[r] / self.area_cap[r]) for r in RESOURCES if self.area_cap[r]}


def build_report(events: list[Envelope], *, end: int) -> Report:
    jobs: dict[str, JobLine] = {}
    pods: dict[str, PodLine] = {}
    requests: dict[str, dict[str, int]] = {}
    holding: set[str] = set()
    evictions: list[Eviction] = []
    podgroup_queue: dict[str, str] = {}
    podgroup_phase: dict[str, str] = {}
    unschedulable: dict[str, str] = {}
    binds: list[tuple[str, str, str]] = []
    pipelined: list[tuple[str, str, str]] = []
    series: list[dict] = []
    usage = _Usage()

    # queue -> podgroups per phase, kept as phases change (a point costs the same whatever
    # number of podgroups came before it)
    phase_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def set_group(podgroup: str, queue: str, phase: str) -> None:
        if podgroup in podgroup_queue:
            phase_counts[podgroup_queue[podgroup]][podgroup_phase[podgroup]] -= 1
        podgroup_queue[podgroup], podgroup_phase[podgroup] = queue, phase
        phase_counts[queue][phase] += 1

    def queue_point(now: int, queue: str) -> None:
        counts = phase_counts[queue]
        point = {"at": now, "queue": queue, **{p: counts[p] for p in ("Pending", "Inqueue", "Running", "Completed")}}
        if series and series[-1]["at"] == now and series[-1]["queue"] == queue:
            series[-1] = point
        else:
            series.append(point)

    def release(now: int, pod: str) -> None:
        if pod in holding:
            holding.discard(pod)
            usage.change(now, requests.get(pod, {}), -1)

    for env in events:
        e, now = env.payload, env.recorded_at
        if isinstance(e, JobCreated):
            jobs.setdefault(e.job, JobLine(e.job, e.manifest.spec.queue or "default", now))
        elif isinstance(e, JobPhaseChanged) and e.job in jobs:
            jobs[e.job].phases.append((now, e.phase))
        elif isinstance(e, NodeAdded):
            usage.change(now, to_resources(e.manifest.status.allocatable), +1, capacity=True)
        elif isinstance(e, NodeRemoved):
            pass  # capacity of a lost node is kept: the report measures what was offered
        elif isinstance(e, PodRequested):
            pods[e.pod] = PodLine(e.pod, e.job)
            requests[e.pod] = dict(e.requests)
        elif isinstance(e, PodBound) and e.pod in pods:
            line = pods[e.pod]
            line.node, line.bound = e.node, now
            binds.append((e.pod, e.node, e.rule))
            if e.pod not in holding:
                holding.add(e.pod)
                usage.change(now, requests.get(e.pod, {}), +1)
        elif isinstance(e, PodPipelined):
            pipelined.append((e.pod, e.node, e.rule))
        elif isinstance(e, PodStarted) and e.pod in pods:
            pods[e.pod].started = now
        elif isinstance(e, PodSucceeded | PodFailed) and e.pod in pods:
            pods[e.pod].finished = now
            pods[e.pod].result = "Succeeded" if isinstance(e, PodSucceeded) else f"Failed({e.exit_code})"
            release(now, e.pod)
        elif isinstance(e, PodEvicted | PodDeleted):
            if e.pod in pods and not pods[e.pod].result:
                pods[e.pod].result = "Evicted" if isinstance(e, PodEvicted) else "Deleted"
                pods[e.pod].finished = now
            release(now, e.pod)
        elif isinstance(e, PodEvictionRequested):
            evictions.append(Eviction(now, e.pod, e.reason, e.preemptor, e.rule))
        elif isinstance(e, PodGroupCreated):
            set_group(e.podgroup, e.manifest.spec.queue or "default", podgroup_phase.get(e.podgroup, "Pending"))
            queue_point(now, podgroup_queue[e.podgroup])
        elif isinstance(e, PodGroupEnqueued | PodGroupPhaseChanged) and e.podgroup in podgroup_queue:
            set_group(e.podgroup, podgroup_queue[e.podgroup], "Inqueue" if isinstance(e, PodGroupEnqueued) else e.phase)
            unschedulable.pop(e.podgroup, None)
            queue_point(now, podgroup_queue[e.podgroup])
        elif isinstance(e, PodGroupUnschedulable):
            unschedulable[e.podgroup] = f"{e.reason}: {e.message}" if e.message else e.reason
    usage.advance(end)

    by_queue: dict[str, list[int]] = defaultdict(list)
    for job in jobs.values():
        if job.wait is not None:
            by_queue[job.queue].append(job.wait)
    waits = {q: summarize(v) for q, v in sorted(by_queue.items())}
    finals = [t for j in jobs.values() for t, p in j.phases if p in ("Completed", "Failed", "Terminated")]
    makespan = (max(finals) - min(j.submitted for j in jobs.values())) if finals else None
    started_jobs = {p.job for p in pods.values() if p.started is not None}
    never_ran = sorted(j.job for j in jobs.values() if j.job not in started_jobs)
    return Report(
        jobs=sorted(jobs.values(), key=lambda j: (j.submitted, j.job)),
        pods=sorted(pods.values(), key=lambda p: (p.bound if p.bound is not None else 1 << 62, p.pod)),
        evictions=evictions,
        queue_series=series,
        waits=waits,
        utilisation=usage.ratios(),
        gpu_series=usage.gpu_series,
        makespan=makespan,
        never_ran=never_ran,
        binds=binds,
        pipelined=pipelined,
        podgroups=dict(sorted(podgroup_phase.items())),
        unschedulable=dict(sorted(unschedulable.items())),
    )
