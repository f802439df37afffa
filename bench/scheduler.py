"""Benchmark: one full scheduling session (enqueue + allocate, and preempt) on synthetic clusters.

Where it sits: outside the pipeline; run as ``python bench/scheduler.py``
(``--quick`` for the 1,000-node cases only). For each case it folds a
synthetic log into the cluster state, then times one session with the
default conf and the writing of its decisions to a fresh SQLite log (shipped
options) as one batch, the way the scheduler's runner appends them (the
fastest of ``--repeat`` runs, 3 by default), and prints pods decided per
second.

Two workloads, each at 1,000 nodes / 10,000 pods and 5,000 nodes / 50,000
pods, all pending in 10-pod gangs spread over four queues:

- uniform: nodes of 32 cpu / 128Gi / 110 pods, every pod 1 cpu / 2Gi with
  no placement constraint (every pod shares one placement);
- mixed: three node shapes (32 cpu / 128Gi, 64 cpu / 128Gi, 16 cpu /
  256Gi) labelled with their pool and one of three zones; a tenth of the
  nodes tainted ``dedicated=batch:NoSchedule`` and a tenth
  ``spot=true:PreferNoSchedule``; gangs of 100 distinct request sizes
  (0.5-5 cpu, 1-10Gi), a third with a nodeSelector on a zone, a tenth
  tolerating the dedicated taint (400 distinct kinds of pod).

The limit printed next to each figure is measured in the same run: one
vectorised fit test per pod over the same node arrays (the pod's resources
against every node's idle row, masked by the nodes its constraints allow;
argmax; one row update: no scores, gangs, queues or events) plus appending
the very same decisions to a fresh log. The ratio is the session's time over
that floor, so it reads independently of the machine. Both grow with live
objects only: the session with pending pods, with the node rows a placement
changed since a kind of pod last looked (not with the number of nodes or of
kinds), and with nodes once per kind of pod; the floor with pods x nodes.

The preemption case (``--preempt``, also run by default) is a full cluster:
1,000 nodes of 10 cpu, each running ten 1-cpu pods of low-priority jobs
(10,000 running pods, ten per job, ``minMember`` 1, spread over ten nodes), and
100 high-priority 10-pod gangs (1,000 pending pods) admitted to the same four
queues; one session with ``enqueue, allocate, preempt, backfill`` must evict
1,000 pods and pipeline every pending one. It prints the session's time (the
goal is at most 2 s) next to the time of a session over the same state with
nothing to preempt (no high-priority jobs), which is the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventbatch.log.factory import open_log
from handlers.scheduler import DEFAULT_CONF, load_conf, run_session
from handlers.scheduler.conf import DEFAULT_CONF_TEXT
from handlers.scheduler.snapshot import build
from projections import cluster
from schemas import events as ev
from schemas.envelope import Causation, Envelope
from schemas.resources import (
    Node,
    NodeSpec,
    NodeStatus,
    ObjectMeta,
    Pod,
    PodGroup,
    PodGroupSpec,
    PodSpec,
    Queue,
    QueueSpec,
    Taint,
    Toleration,
)

QUEUES = ("q0", "q1", "q2", "q3")
POD = {"cpu": 1000, "memory": 2 * 1024**3, "pods": 1}
GI = 1024**3

# The mixed workload: node shapes, zones, taints, request sizes.
SHAPES = (
    ("standard", {"cpu": "32", "memory": "128Gi", "pods": "110"}),
    ("compute", {"cpu": "64", "memory": "128Gi", "pods": "110"}),
    ("highmem", {"cpu": "16", "memory": "256Gi", "pods": "110"}),
)
ZONES = ("zone-a", "zone-b", "zone-c")
DEDICATED = Taint(key="dedicated", value="batch", effect="NoSchedule")
SPOT = Taint(key="spot", value="true", effect="PreferNoSchedule")
TOLERATE = Toleration(key="dedicated", operator="Equal", value="batch", effect="NoSchedule")
SIZES = 100


def _node_kind(i: int) -> tuple[str, dict[str, str], str, list[Taint]]:
    shape, allocatable = SHAPES[i % len(SHAPES)]
    taints = [DEDICATED] if i % 10 == 5 else [SPOT] if i % 10 == 7 else []
    return shape, allocatable, ZONES[(i // len(SHAPES)) % len(ZONES)], taints


def _pod_kind(j: int) -> tuple[dict[str, int], str, bool]:
    """Gang ``j``'s pod requests, the zone its nodeSelector names ("" for none), whether it tolerates."""
    size = j % SIZES
    requests = {"cpu": 500 * (1 + size % 10), "memory": (1 + size // 10) * GI, "pods": 1}
    zone = ZONES[(j // 3) % len(ZONES)] if j % 3 == 0 else ""
    return requests, zone, j % 10 == 0


class _Folding:
    """Folds events into a fresh cluster state, one position after another."""

    def __init__(self) -> None:
        self.state = cluster.initial()
        self.position = 0

    def __call__(self, event: ev.Event) -> None:
        cluster.fold(self.state, Envelope.wrap(event, recorded_at=self.position).at(self.position))
        self.position += 1


def synthetic_state(nodes: int, pods: int, per_job: int = 10, *, mixed: bool = False):
    fold = _Folding()
    state = fold.state

    for name in QUEUES:
        fold(ev.QueueCreated(queue=name, manifest=Queue(metadata=ObjectMeta(name=name), spec=QueueSpec(weight=1))))
    for i in range(nodes):
        name = f"node-{i:05d}"
        if mixed:
            shape, allocatable, zone, taints = _node_kind(i)
            meta = ObjectMeta(name=name, labels={"pool": shape, "zone": zone, "kubernetes.io/hostname": name})
            manifest = Node(metadata=meta, spec=NodeSpec(taints=taints), status=NodeStatus(allocatable=allocatable))
        else:
            allocatable = {"cpu": "32", "memory": "128Gi", "pods": "110"}
            manifest = Node(metadata=ObjectMeta(name=name), status=NodeStatus(allocatable=allocatable))
        fold(ev.NodeAdded(node=name, manifest=manifest))
    uniform = Pod()
    for j in range(pods // per_job):
        key = f"default/job-{j:05d}"
        requests, template = POD, uniform
        if mixed:
            requests, zone, tolerates = _pod_kind(j)
            spec = PodSpec(node_selector={"zone": zone} if zone else {}, tolerations=[TOLERATE] if tolerates else [])
            template = Pod(spec=spec)
        group = PodGroup(
            metadata=ObjectMeta(name=key),
            spec=PodGroupSpec(min_member=per_job, queue=QUEUES[j % len(QUEUES)]),
        )
        need = {"cpu": requests["cpu"] * per_job, "memory": requests["memory"] * per_job}
        fold(ev.PodGroupCreated(podgroup=key, job=key, manifest=group, min_resources=need))
        for k in range(per_job):
            fold(
                ev.PodRequested(
                    pod=f"{key}-worker-{k}",
                    job=key,
                    podgroup=key,
                    task="worker",
                    index=k,
                    manifest=template,
                    requests=requests,
                )
            )
    return state, fold.position


PREEMPT_CONF = load_conf(
    DEFAULT_CONF_TEXT.replace('"enqueue, allocate, backfill"', '"enqueue, allocate, preempt, backfill"')
)


def preemption_state(nodes: int, running_per_node: int = 10, pending: int = 1_000, per_job: int = 10):
    """A full cluster of low-priority pods and ``pending`` high-priority gang pods admitted to its queues."""
    fold = _Folding()
    state = fold.state

    fold(ev.PriorityClassAdded(name="low", value=10))
    fold(ev.PriorityClassAdded(name="high", value=1000))
    for name in QUEUES:
        fold(ev.QueueCreated(queue=name, manifest=Queue(metadata=ObjectMeta(name=name), spec=QueueSpec(weight=1))))
    allocatable = {"cpu": str(running_per_node), "memory": "128Gi", "pods": "110"}
    names = [f"node-{i:05d}" for i in range(nodes)]
    for name in names:
        manifest = Node(metadata=ObjectMeta(name=name), status=NodeStatus(allocatable=allocatable))
        fold(ev.NodeAdded(node=name, manifest=manifest))
    template = Pod()

    def job(key: str, queue: str, klass: str, min_member: int) -> None:
        spec = PodGroupSpec(min_member=min_member, queue=queue, priority_class_name=klass)
        group = PodGroup(metadata=ObjectMeta(name=key), spec=spec)
        need = {"cpu": POD["cpu"] * min_member, "memory": POD["memory"] * min_member}
        fold(ev.PodGroupCreated(podgroup=key, job=key, manifest=group, min_resources=need))
        fold(ev.PodGroupEnqueued(podgroup=key, job=key, queue=queue))

    def pod(key: str, k: int) -> str:
        name = f"{key}-worker-{k}"
        fold(
            ev.PodRequested(pod=name, job=key, podgroup=key, task="worker", index=k, manifest=template, requests=POD)
        )
        return name

    running = nodes * running_per_node
    for j in range(running // per_job):
        key = f"default/low-{j:05d}"
        job(key, QUEUES[j % len(QUEUES)], "low", 1)
        for k in range(per_job):
            name = pod(key, k)
            fold(ev.PodBound(pod=name, job=key, node=names[(j * per_job + k) % nodes]))
            fold(ev.PodStarted(pod=name, job=key, node=names[(j * per_job + k) % nodes]))
        fold(ev.PodGroupPhaseChanged(podgroup=key, job=key, phase="Running", previous="Inqueue"))
    for j in range(pending // per_job):
        key = f"default/high-{j:05d}"
        job(key, QUEUES[j % len(QUEUES)], "high", per_job)
        for k in range(per_job):
            pod(key, k)
    return state, fold.position


def run_preemption_case(nodes: int, pending: int, repeat: int) -> None:
    state, position = preemption_state(nodes, pending=pending)
    floor_state, floor_position = preemption_state(nodes, pending=0)
    timings, floors = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        decisions = run_session(state, PREEMPT_CONF, now=position)
        timings.append(time.perf_counter() - start)
        start = time.perf_counter()
        run_session(floor_state, PREEMPT_CONF, now=floor_position)
        floors.append(time.perf_counter() - start)
    elapsed, floor = min(timings), min(floors)
    evicted = sum(isinstance(d, ev.PodEvictionRequested) for d in decisions)
    pipelined = sum(isinstance(d, ev.PodPipelined) for d in decisions)
    print(
        f"preemption, {nodes:,} nodes / {nodes * 10:,} running / {pending:,} pending high-priority pods: "
        f"session {elapsed:.2f}s (goal 2 s; {evicted:,} evicted, {pipelined:,} pipelined; "
        f"the same session with nothing to preempt {floor:.2f}s)",
        flush=True,
    )


def fit_pass(state, per_job: int, mixed: bool) -> float:
    """Seconds for one vectorised fit test per pending pod over the same node arrays.

    Each pod, in gang order: its resources against every node's idle row,
    masked by the nodes its nodeSelector and tolerations allow; the first
    node that fits (argmax) takes it.
    """
    nodes = build(state).nodes
    n = len(nodes)
    idle = nodes.idle.copy()
    zone = np.array([labels.get("zone", "") for labels in nodes.labels])
    dedicated = np.array([DEDICATED in taints for taints in nodes.taints], dtype=bool)
    anywhere = np.ones(n, dtype=bool)
    kinds = []
    for j in range(len(state.podgroups)):
        if mixed:
            requests, wanted, tolerates = _pod_kind(j)
            ok = (zone == wanted) if wanted else anywhere
            ok = ok if tolerates else ok & ~dedicated
        else:
            requests, ok = POD, anywhere
        vec = nodes.vector(requests)
        nz = np.nonzero(vec)[0]
        kinds.append((ok, vec, nz, vec[nz]))
    start = time.perf_counter()
    for ok, vec, nz, need in kinds:
        for _ in range(per_job):
            fits = ok & (idle[:, nz] >= need).all(axis=1)
            i = int(np.argmax(fits))
            if fits[i]:
                idle[i] -= vec
    return time.perf_counter() - start


def batch_of(decisions: list[ev.Event], position: int) -> list[Envelope]:
    """The decisions as the scheduler's runner appends them: one batch stamped with causation."""
    return [
        Envelope.wrap(event, recorded_at=position, causation=Causation(position, "scheduler", index))
        for index, event in enumerate(decisions)
    ]


async def _timed(state, position: int, folder: str, attempt: int) -> tuple[float, float, list[ev.Event]]:
    """(session + append seconds, append-alone seconds, decisions) on fresh SQLite logs."""
    async with open_log(f"sqlite:///{folder}/session-{attempt}.db") as log:
        start = time.perf_counter()
        decisions = run_session(state, DEFAULT_CONF, now=position)
        await log.append(batch_of(decisions, position))
        elapsed = time.perf_counter() - start
    async with open_log(f"sqlite:///{folder}/append-{attempt}.db") as log:
        batch = batch_of(decisions, position)  # the same records, already decided
        start = time.perf_counter()
        await log.append(batch)
        append = time.perf_counter() - start
    return elapsed, append, decisions


def run_case(nodes: int, pods: int, repeat: int, *, mixed: bool) -> None:
    per_job = 10
    state, position = synthetic_state(nodes, pods, per_job, mixed=mixed)
    timings, appends = [], []
    with tempfile.TemporaryDirectory() as folder:
        for attempt in range(repeat):  # a session never changes the state: every run decides the same
            elapsed, append, decisions = asyncio.run(_timed(state, position, folder, attempt))
            timings.append(elapsed)
            appends.append(append)
    elapsed, append = min(timings), min(appends)
    placed = sum(isinstance(d, (ev.PodBound, ev.PodPipelined)) for d in decisions)
    fit = min(fit_pass(state, per_job, mixed) for _ in range(repeat))
    floor = fit + append
    label = "mixed" if mixed else "uniform"
    print(
        f"{label:7} {nodes:,} nodes / {pods:,} pods: {placed / elapsed:,.0f} pods/s "
        f"({placed:,} placed, session + log write {elapsed:.2f}s; floor in this run {floor:.2f}s = "
        f"fit test per pod {fit:.2f}s + log write {append:.2f}s -> {elapsed / floor:.1f}x the floor)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 1,000-node cases")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest counts (default 3)")
    parser.add_argument("--preempt", action="store_true", help="only the preemption case")
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)
    if not args.preempt:
        cases = [(1_000, 10_000)] if args.quick else [(1_000, 10_000), (5_000, 50_000)]
        for nodes, pods in cases:
            for mixed in (False, True):
                run_case(nodes, pods, repeat, mixed=mixed)
    run_preemption_case(1_000, 1_000, repeat)


if __name__ == "__main__":
    main()
