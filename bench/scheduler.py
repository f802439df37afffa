"""Benchmark: one full scheduling session (enqueue + allocate, and preempt) on synthetic clusters.

Where it sits: outside the pipeline; run as ``python -m bench.scheduler``
(``--quick`` for the small case only). For each case it folds a synthetic
log (nodes of 32 cpu / 128Gi / 110 pods, 10-pod gang jobs of 1 cpu / 2Gi
pods spread over four queues) into the cluster state, then times one
session with the default conf (the fastest of ``--repeat`` runs, 3 by
default) and prints pods decided per second.

The measured limits printed next to it are trivial baselines timed in the
same process: one pass of first-fit over the same node arrays (numpy, one
vectorised fit test over all nodes and one row update per pod; no predicates,
scores, gangs, queues or events), and just building the session's
``PodBound`` events. Each ratio is the session's time over that baseline's,
so the figure reads independently of the machine.

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
import time

import numpy as np

from handlers.scheduler import DEFAULT_CONF, load_conf, run_session
from handlers.scheduler.conf import DEFAULT_CONF_TEXT
from handlers.scheduler.snapshot import build
from projections import cluster
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.resources import (
    Node,
    NodeStatus,
    ObjectMeta,
    Pod,
    PodGroup,
    PodGroupSpec,
    Queue,
    QueueSpec,
)

QUEUES = ("q0", "q1", "q2", "q3")
POD = {"cpu": 1000, "memory": 2 * 1024**3, "pods": 1}


def synthetic_state(nodes: int, pods: int, per_job: int = 10):
    state = cluster.initial()
    position = 0

    def fold(event: ev.Event) -> None:
        nonlocal position
        cluster.fold(state, Envelope.wrap(event, recorded_at=position).at(position))
        position += 1

    for name in QUEUES:
        fold(ev.QueueCreated(queue=name, manifest=Queue(metadata=ObjectMeta(name=name), spec=QueueSpec(weight=1))))
    allocatable = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    for i in range(nodes):
        name = f"node-{i:05d}"
        fold(
            ev.NodeAdded(
                node=name,
                manifest=Node(metadata=ObjectMeta(name=name), status=NodeStatus(allocatable=allocatable)),
            )
        )
    template = Pod()
    for j in range(pods // per_job):
        key = f"default/job-{j:05d}"
        group = PodGroup(
            metadata=ObjectMeta(name=key),
            spec=PodGroupSpec(min_member=per_job, queue=QUEUES[j % len(QUEUES)]),
        )
        need = {"cpu": POD["cpu"] * per_job, "memory": POD["memory"] * per_job}
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
                    requests=POD,
                )
            )
    return state, position


PREEMPT_CONF = load_conf(
    DEFAULT_CONF_TEXT.replace('"enqueue, allocate, backfill"', '"enqueue, allocate, preempt, backfill"')
)


def preemption_state(nodes: int, running_per_node: int = 10, pending: int = 1_000, per_job: int = 10):
    """A full cluster of low-priority pods and ``pending`` high-priority gang pods admitted to its queues."""
    state = cluster.initial()
    position = 0

    def fold(event: ev.Event) -> None:
        nonlocal position
        cluster.fold(state, Envelope.wrap(event, recorded_at=position).at(position))
        position += 1

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
    return state, position


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


def first_fit_baseline(state, pods: int) -> float:
    """Seconds for one pass of first-fit of ``pods`` pods over the same node arrays."""
    nodes = build(state).nodes
    idle = nodes.idle.copy()
    vec = nodes.vector(POD)
    start = time.perf_counter()
    for _ in range(pods):
        fits = (idle >= vec).all(axis=1)
        i = int(np.argmax(fits))
        if not fits[i]:
            break
        idle[i] -= vec
    return time.perf_counter() - start


def events_baseline(decisions: list[ev.Event]) -> float:
    """Seconds to build the session's decision events and nothing else."""
    binds = [(d.pod, d.job, d.node) for d in decisions if isinstance(d, ev.PodBound)]
    start = time.perf_counter()
    for pod, job, node in binds:
        ev.PodBound(pod=pod, job=job, rule="allocate", node=node)
    return time.perf_counter() - start


def run_case(nodes: int, pods: int, repeat: int) -> None:
    state, position = synthetic_state(nodes, pods)
    timings = []
    for _ in range(repeat):  # a session never changes the state: every run decides the same
        start = time.perf_counter()
        decisions = run_session(state, DEFAULT_CONF, now=position)
        timings.append(time.perf_counter() - start)
    elapsed = min(timings)
    placed = sum(isinstance(d, (ev.PodBound, ev.PodPipelined)) for d in decisions)
    first_fit = min(first_fit_baseline(state, pods) for _ in range(repeat))
    events = min(events_baseline(decisions) for _ in range(repeat))
    print(
        f"{nodes:,} nodes / {pods:,} pods: {placed / elapsed:,.0f} pods/s "
        f"({placed:,} placed in {elapsed:.2f}s; limits in this run: first-fit pass {first_fit * 1000:.0f} ms "
        f"-> {elapsed / first_fit:.1f}x, building the events {events * 1000:.0f} ms -> {elapsed / events:.0f}x)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 1,000-node case")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest counts (default 3)")
    parser.add_argument("--preempt", action="store_true", help="only the preemption case")
    args = parser.parse_args(argv)
    if not args.preempt:
        cases = [(1_000, 10_000)] if args.quick else [(1_000, 10_000), (5_000, 50_000)]
        for nodes, pods in cases:
            run_case(nodes, pods, max(1, args.repeat))
    run_preemption_case(1_000, 1_000, max(1, args.repeat))


if __name__ == "__main__":
    main()
