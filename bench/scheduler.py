"""Benchmark: one full scheduling session (enqueue + allocate) on synthetic clusters.

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
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from handlers.scheduler import DEFAULT_CONF, run_session
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
    args = parser.parse_args(argv)
    cases = [(1_000, 10_000)] if args.quick else [(1_000, 10_000), (5_000, 50_000)]
    for nodes, pods in cases:
        run_case(nodes, pods, max(1, args.repeat))


if __name__ == "__main__":
    main()
