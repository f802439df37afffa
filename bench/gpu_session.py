"""Benchmark: a scheduling session placing GPU-sharing pods by FGD over the openb cluster.

Where it sits: outside the pipeline; run as ``python bench/gpu_session.py``.
It folds the Alibaba openb cluster (``openb_node_list_all_node.csv``: 1,523
nodes, 6,212 GPUs) and the first 1,000 GPU pods of the default pod list
(``openb_pod_list_default.csv``, each its own job, all pending) into a cluster
state, then times one session (enqueue, allocate, backfill) with the default
conf plus the ``fgd`` plugin (``fgd.policy: fgd``; the fastest of
``--repeat`` runs) and prints pods decided per second of this process's CPU
time (the figure a machine shared with other work still measures; wall time
beside it). The goal is at least 5,000 pods/s.

Next to it, measured in the same run:

- the floor: one vectorised fit test per pod over the same arrays (the pod's
  resources against every node's idle row and its GPU request against every
  node's devices, ``devices.fits``; the first node that fits, its best-fit
  devices; one row update: no scores, queues or events), in CPU time too; the
  session's CPU time over it is the ratio printed;
- the same session with the default conf alone (no ``fgd``: binpack and
  nodeorder score the nodes, devices best fit);
- the policy functions alone (``gpu_policies.Placer``, every policy) placing
  the same 1,000 pods over the same arrays.

    python bench/gpu_session.py [--repeat 3] [--pods 1000] [--per-job 1] [--trace FOLDER]

How the costs grow: the session with the pending pods and, per pod, with the
node rows changed since its kind of pod last looked (each kind scores all
nodes once, and FGD each distinct node state once per kind of GPU task; a
few new states in plain Python, once per state and GPU request for the kinds
whose CPU weighs the workload alike); not with the history of the log. The
floor grows with pods x nodes.

It also prints a digest of each session's decisions (to compare them across changes).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from handlers.scheduler import DEFAULT_CONF, load_conf, run_session  # noqa: E402
from handlers.scheduler.conf import DEFAULT_CONF_TEXT  # noqa: E402
from handlers.scheduler.devices import MODEL_LABEL, fits, gpu_request, pick  # noqa: E402
from handlers.scheduler.plugins import gpu_policies as gp  # noqa: E402
from handlers.scheduler.snapshot import build  # noqa: E402
from projections import cluster  # noqa: E402
from schemas import events as ev  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402
from schemas.resources import Node, NodeStatus, ObjectMeta, Pod, PodGroup, PodGroupSpec, Queue, QueueSpec  # noqa: E402

TRACE = ROOT.parent / "shared" / "traces" / "alibaba-openb-2023"
MIB = 1024**2
FGD_CONF = load_conf(DEFAULT_CONF_TEXT + "  - name: fgd\n    arguments:\n      fgd.policy: fgd\n")


def openb_state(trace: Path, pods: int, per_job: int = 1):
    """The openb cluster and its first ``pods`` GPU pods, pending, folded into a cluster state
    (``per_job`` consecutive pods to a job, its gang: all of them)."""
    state = cluster.initial()
    position = 0

    def fold(event: ev.Event) -> None:
        nonlocal position
        cluster.fold(state, Envelope.wrap(event, recorded_at=position).at(position))
        position += 1

    fold(
        ev.QueueCreated(queue="default", manifest=Queue(metadata=ObjectMeta(name="default"), spec=QueueSpec(weight=1)))
    )
    with open(trace / "openb_node_list_all_node.csv", newline="") as f:
        for row in csv.DictReader(f):
            allocatable = {"cpu": f"{row['cpu_milli']}m", "memory": f"{row['memory_mib']}Mi", "pods": "110"}
            labels = {}
            if int(row["gpu"]) > 0:
                allocatable["nvidia.com/gpu"] = row["gpu"]
                labels[MODEL_LABEL] = row["model"]
            meta = ObjectMeta(name=row["sn"], labels=labels)
            fold(ev.NodeAdded(node=row["sn"], manifest=Node(metadata=meta, status=NodeStatus(allocatable=allocatable))))
    template = Pod()
    taken = 0
    with open(trace / "openb_pod_list_default.csv", newline="") as f:
        rows = [row for row in csv.DictReader(f) if int(row["num_gpu"]) > 0][:pods]
    for start in range(0, len(rows), per_job):
        members = rows[start : start + per_job]
        key = f"default/{members[0]['name']}"
        needs = []
        for row in members:
            count, milli = int(row["num_gpu"]), int(row["gpu_milli"])
            requests = {"cpu": int(row["cpu_milli"]), "memory": int(row["memory_mib"]) * MIB, "pods": 1}
            requests["nvidia.com/gpu"] = milli if count == 1 and milli < 1000 else 1000 * count
            needs.append(requests)
        spec = PodGroupSpec(min_member=len(members), queue="default")
        need = {d: sum(r[d] for r in needs) for d in ("cpu", "memory")}
        fold(
            ev.PodGroupCreated(
                podgroup=key, job=key, manifest=PodGroup(metadata=ObjectMeta(name=key), spec=spec), min_resources=need
            )
        )
        for k, requests in enumerate(needs):
            fold(
                ev.PodRequested(
                    pod=f"{key}-{k}",
                    job=key,
                    podgroup=key,
                    task="worker",
                    index=k,
                    manifest=template,
                    requests=requests,
                )
            )
            taken += 1
    return state, position


def _requests(state) -> list[dict[str, int]]:
    return [state.pods[name].requests for name in sorted(state.pods)]


def fit_pass(state) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one vectorised fit test per pending pod over the same
    arrays (the floor)."""
    snap = build(state)
    snap.own()  # the device arrays, as a session that places opens them
    nodes, devices = snap.nodes, snap.devices
    assert devices is not None
    idle = nodes.idle.copy()
    free = devices.gpu_free.copy()
    mem = devices.mem_free
    kinds = []
    for requests in _requests(state):
        vec = nodes.vector(requests)
        nz = np.nonzero(vec)[0]
        kinds.append((vec, nz, vec[nz], gpu_request(requests)))
    start, start_cpu = time.perf_counter(), time.process_time()
    for vec, nz, need, request in kinds:
        ok = (idle[:, nz] >= need).all(axis=1)
        if request is not None:
            ok &= fits(free, mem, request)
        i = int(np.argmax(ok))
        if ok[i]:
            idle[i] -= vec
            if request is not None:
                for d in pick(free[i], mem[i], request):
                    free[i, d] -= request.milli
    return time.perf_counter() - start, time.process_time() - start_cpu


def policies_alone(state) -> dict[str, tuple[float, int]]:
    """Pods/s and pods placed by ``Placer`` for every policy, over the session's arrays."""
    snap = build(state)
    snap.own()  # the device arrays, as a session that places opens them
    assert snap.devices is not None
    cpu = snap.nodes.idle[:, snap.nodes.column("cpu")]
    free = snap.devices.gpu_free
    tasks = [(r["cpu"], gpu_request(r)) for r in _requests(state)]
    workload = gp.TaskTypes.learn(tasks)
    out = {}
    for policy in gp.POLICIES:
        placer = gp.Placer(policy, cpu, free, workload)
        placed = 0
        start = time.perf_counter()
        for key, (task_cpu, request) in enumerate(tasks):
            node, chosen = placer.choose(request, task_cpu, None, key)
            if node >= 0:
                placer.place(node, chosen, request, task_cpu)
                placed += 1
        out[policy] = (len(tasks) / (time.perf_counter() - start), placed)
    return out


def digest(decisions) -> str:
    """A short digest of a session's decisions (each event's kind, pod, node and devices, in
    order): equal digests, equal decisions."""
    h = hashlib.sha256()
    for d in decisions:
        h.update(
            f"{type(d).__name__} {getattr(d, 'pod', '')} {getattr(d, 'node', '')} {getattr(d, 'devices', '')}\n".encode()
        )
    return h.hexdigest()[:12]


def timed_session(state, position: int, conf, repeat: int) -> tuple[float, float, int, str]:
    """(wall seconds, this process's CPU seconds, pods placed, digest of the decisions): the
    fastest of ``repeat`` runs."""
    best, cpu, placed, seen = float("inf"), float("inf"), 0, ""
    for _ in range(repeat):  # a session never changes the state: every run decides the same
        start, start_cpu = time.perf_counter(), time.process_time()
        decisions = run_session(state, conf, now=position)
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
        placed = sum(isinstance(d, (ev.PodBound, ev.PodPipelined)) for d in decisions)
        seen = digest(decisions)
    return best, cpu, placed, seen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest counts (default 3)")
    parser.add_argument("--pods", type=int, default=1000, help="pending GPU pods (default 1000)")
    parser.add_argument("--per-job", type=int, default=1, help="pods to a job (a gang of all of them; default 1)")
    parser.add_argument("--trace", type=Path, default=TRACE, help="the openb trace folder")
    args = parser.parse_args(argv)
    state, position = openb_state(args.trace, args.pods, args.per_job)
    pods = len(state.pods)
    elapsed, cpu, placed, fgd_digest = timed_session(state, position, FGD_CONF, args.repeat)
    plain, plain_cpu, plain_placed, plain_digest = timed_session(state, position, DEFAULT_CONF, args.repeat)
    floors = [fit_pass(state) for _ in range(args.repeat)]
    fit, fit_cpu = min(f[0] for f in floors), min(f[1] for f in floors)
    print(
        f"fgd session, {len(state.nodes):,} nodes / {pods:,} pending GPU pods, {args.per_job} to a job: "
        f"{placed / cpu:,.0f} pods/s of CPU time (goal 5,000; {placed:,} placed in {cpu:.3f}s CPU, {elapsed:.3f}s wall: "
        f"{placed / elapsed:,.0f} pods/s of wall time; floor in this run: fit test per pod {fit_cpu:.3f}s CPU, "
        f"{fit:.3f}s wall -> {cpu / fit_cpu:.1f}x the floor in CPU time; the default conf without fgd "
        f"{plain_cpu:.3f}s CPU, {plain:.3f}s wall, {plain_placed:,} placed: {plain_placed / plain_cpu:,.0f} pods/s "
        f"of CPU time, {plain_cpu / fit_cpu:.1f}x the floor)",
        flush=True,
    )
    print(f"  decisions' digest: fgd {fgd_digest}, default conf {plain_digest}", flush=True)
    for policy, (rate, done) in policies_alone(state).items():
        print(f"  policy functions alone (Placer), {policy:13}: {rate:,.0f} pods/s ({done:,} placed)", flush=True)


if __name__ == "__main__":
    main()
