"""The workload-inflation experiment of Weng et al. (USENIX ATC 2023) on an openb trace.

Where it sits: a tool beside ``eventbatch trace import``, behind
``eventbatch trace experiment`` and ``bench/fgd.py``. It runs in memory and
writes no log; ``recorded_run`` turns one policy and seed of it into a scenario
the real pipeline runs onto a log as ``simulate`` does (``trace experiment
--log``). It places tasks with the scheduler's GPU placement policies
(``handlers.scheduler.plugins.gpu_policies``) over the scheduler's device
arrays (``handlers.scheduler.devices``): per node, the free milli-GPU of each
device, so a share of one GPU fits only on one device that has that much free.

The method, as the paper's simulator (hkust-adsl/kubernetes-scheduler-simulator)
runs it:

- the cluster is the node list's GPU nodes (``gpu_nodes_only``; the
  simulator's experiments run on ``openb_node_list_gpu_node``, the openb list
  without its nodes without GPU, in the same order), empty at the start:
  every device 1,000 milli-GPU free, every node its CPU and memory; tasks
  without GPU take GPU nodes' CPU;
- the arrivals are the pod list's tasks shuffled, then tasks drawn from it at
  random (with replacement), in draw order, until the next draw would take the
  GPU requests past ``ratio`` × the cluster's GPU capacity (a list already
  above it loses tasks at random until it is not); a seed fixes all of it;
- the tasks arrive one by one and never leave. A task is placed where the
  policy chooses among the nodes that can hold it (CPU, memory, its GPU model
  if it names some, and per device: one device with its share free, or as
  many wholly free devices as it asks); a task nowhere feasible stays
  unplaced;
- every ``step`` % of arrived GPU requests (as a share of the GPU capacity)
  it records the **unallocated GPU** share (free milli-GPU / capacity, %) and
  the **fragmentation rate** (the cluster's expected fragmentation under the
  workload, ``gpu_policies.fragmentation`` summed over nodes, / free milli-GPU, %).

- a policy ranks the nodes by the simulator's integer scores
  (``gpu_policies.scores``; ``scheduler_engine(exact=True)``: by the exact
  costs they round), and equal scores go to the first node in a shuffle of the
  node list drawn from the seed (``ties="shuffled"``, ``node_order``): the
  simulator renames its nodes with a prefix from a seeded permutation and its
  kube-scheduler takes the lowest name among the best. ``ties="lowest"``
  breaks them by the list's order instead, ``ties="random"`` draws among the
  best per task (seeded), as upstream kube-scheduler does. ``random`` is asked
  about the feasible nodes only.

The workload the policies are told about (``TaskTypes``) is the pod list's
distribution of task sizes before inflation, as the simulator's typical pods
are. Everything is a pure function of the inputs and the seed: no wall clock,
no hash order.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MILLI = 1000
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_COLUMNS = ("cpu_milli", "memory_mib", "num_gpu", "gpu_milli")  # gpu_spec optional (multigpu50 has none)
MAX_ROWS = 1_000_000


class TraceError(ValueError):
    """A node or pod list that cannot be read as an openb list: the message is one line for the user."""


@dataclass(frozen=True)
class Nodes:
    names: list[str]
    cpu: np.ndarray  # (n,) int64 milli-CPU
    memory: np.ndarray  # (n,) int64 MiB
    gpus: np.ndarray  # (n,) int32 device count
    model: list[str]  # GPU model per node ("" for none)

    @property
    def gpu_capacity(self) -> int:
        """Milli-GPU of every device together."""
        return int(self.gpus.sum()) * MILLI

    def take(self, rows: np.ndarray) -> Nodes:
        """The same nodes listed in the order of ``rows``."""
        return Nodes([self.names[i] for i in rows.tolist()], self.cpu[rows], self.memory[rows], self.gpus[rows],
                     [self.model[i] for i in rows.tolist()])


@dataclass(frozen=True)
class Tasks:
    cpu: np.ndarray  # (t,) int64 milli-CPU
    memory: np.ndarray  # (t,) int64 MiB
    count: np.ndarray  # (t,) int32: whole devices, or 1 for a share
    milli: np.ndarray  # (t,) int32: milli-GPU per device (1000 for whole devices; 0 with count 0)
    spec: list[str]  # allowed GPU models, "|"-separated; "" for any

    def __len__(self) -> int:
        return len(self.cpu)

    @property
    def gpu_milli(self) -> np.ndarray:
        """Each task's GPU request in milli-GPU."""
        return self.count.astype(np.int64) * self.milli


def _int(row: dict[str, str], column: str, where: str) -> int:
    text = (row.get(column) or "").strip()
    if text == "":
        return 0
    try:
        value = int(text)
    except ValueError:
        raise TraceError(f"{where}: {column} {text[:40]!r} is not an integer") from None
    if value < 0:
        raise TraceError(f"{where}: {column} {value} is negative")
    return value


def _rows(path: Path, columns: Sequence[str], what: str) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise TraceError(f"{path}: not an openb {what} list (no column {', '.join(missing)})")
            rows = []
            for row in reader:
                rows.append(row)
                if len(rows) > MAX_ROWS:
                    raise TraceError(f"{path}: more than {MAX_ROWS:,} rows")
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a UTF-8 CSV file") from None
    except csv.Error as exc:
        raise TraceError(f"{path}: {exc}") from None
    if not rows:
        raise TraceError(f"{path}: no {what}s")
    return rows


def load_nodes(path: Path) -> Nodes:
    """An openb node list (``sn,cpu_milli,memory_mib,gpu,model``)."""
    rows = _rows(path, NODE_COLUMNS, "node")
    cpu, memory, gpus, model = [], [], [], []
    for i, row in enumerate(rows, start=2):
        where = f"{path}:{i}"
        cpu.append(_int(row, "cpu_milli", where))
        memory.append(_int(row, "memory_mib", where))
        count = _int(row, "gpu", where)
        if count > 64:
            raise TraceError(f"{where}: gpu {count} is more than 64 devices")
        gpus.append(count)
        model.append((row.get("model") or "").strip())
    nodes = Nodes([r["sn"] for r in rows], np.array(cpu, np.int64), np.array(memory, np.int64), np.array(gpus, np.int32), model)
    if nodes.gpu_capacity == 0:
        raise TraceError(f"{path}: no GPUs in the node list")
    return nodes


def load_tasks(path: Path) -> Tasks:
    """An openb pod list: ``num_gpu`` whole devices, or (``num_gpu`` 1, ``gpu_milli`` < 1000) a share of one."""
    rows = _rows(path, POD_COLUMNS, "pod")
    cpu, memory, count, milli, spec = [], [], [], [], []
    for i, row in enumerate(rows, start=2):
        where = f"{path}:{i}"
        cpu.append(_int(row, "cpu_milli", where))
        memory.append(_int(row, "memory_mib", where))
        n, m = _int(row, "num_gpu", where), _int(row, "gpu_milli", where)
        if n > 64:
            raise TraceError(f"{where}: num_gpu {n} is more than 64 devices")
        if m > MILLI:
            raise TraceError(f"{where}: gpu_milli {m} is more than one GPU (1000)")
        if n == 0:
            count.append(0)
            milli.append(0)
        elif n == 1 and 0 < m < MILLI:
            count.append(1)
            milli.append(m)
        else:
            count.append(n)
            milli.append(MILLI)
        spec.append((row.get("gpu_spec") or "").strip())
    if not any(count):
        raise TraceError(f"{path}: no pod asks for a GPU (nothing to inflate the workload with)")
    return Tasks(np.array(cpu, np.int64), np.array(memory, np.int64), np.array(count, np.int32), np.array(milli, np.int32), spec)


def arrivals(tasks: Tasks, capacity: int, ratio: float, seed: int) -> np.ndarray:
    """Indices into ``tasks`` in arrival order, as the simulator orders them: the list
    shuffled, then, below ``ratio`` × capacity, tasks drawn from it (with replacement)
    appended in draw order until the next draw would pass it; above, tasks removed at
    random until the rest is not above it (in their shuffled order)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    request = tasks.gpu_milli
    target = ratio * capacity
    order: list[int] = rng.permutation(len(tasks)).tolist()
    total = int(request.sum())
    if total > target:
        while total > target:
            gone = order.pop(int(rng.integers(len(order))))
            total -= int(request[gone])
        return np.array(order, np.int64)
    while True:
        for idx in rng.integers(0, len(tasks), size=1024).tolist():
            if total + int(request[idx]) > target:
                return np.array(order, np.int64)
            total += int(request[idx])
            order.append(idx)


# ---------------------------------------------------------------- the policies' side of the contract

ChooseFn = Callable[..., tuple[int, Any]]
FragFn = Callable[[np.ndarray, np.ndarray, Any], np.ndarray]


@dataclass(frozen=True)
class Policy:
    name: str
    choose: ChooseFn  # (cpu_free, gpu_free, feasible, request, cpu, workload, rng_key, kinds) -> (node, devices)
    kind: Callable[[Any], int] | None = None  # request -> the bit it sets in its node's kinds mask (GPU clustering)
    # Row-local policies: (cpu_free, gpu_free, request, cpu, workload, kinds) of some rows -> (cost, device) of
    # those rows, lower cost better, inf where the task does not fit. The run keeps each kind of task's costs
    # and recomputes only the rows placed on since; ``choose`` is then not called.
    scores: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None
    devices: Callable[[np.ndarray, Any, int], Sequence[int]] | None = None  # (node's gpu_free row, request, device)


@dataclass(frozen=True)
class Engine:
    """What the experiment needs from the scheduler: the request type, the workload type, the policies."""

    request: Callable[[int, int], Any]  # (milli, count) -> GpuRequest (None for count 0)
    workload: Callable[[Tasks], Any]  # the pod list -> TaskTypes
    fragmentation: FragFn
    policies: dict[str, Policy]
    exact: bool = False  # the policies rank nodes by exact costs, not the simulator's integer scores


NOT_ROW_LOCAL = {"random"}
# How equal scores are broken: the first node in a seeded shuffle of the node list (the simulator's
# way, the default), the first node in the list, or one drawn among them per task.
TIES = ("shuffled", "lowest", "random")


def node_order(n: int, seed: int) -> np.ndarray:
    """The node rows in the order ``ties="shuffled"`` breaks ties in: a permutation drawn from
    the seed on a stream of its own (the arrivals' draws are not disturbed), the same for
    every policy under one seed. The simulator renames every node with a prefix from a
    permutation drawn from its seed (``fmt.Sprintf("%04d-", idx)``) and its kube-scheduler
    takes the lowest name among the best scores, so its ties go to the first node of a
    random order fixed for the run."""
    order: np.ndarray = np.random.Generator(np.random.PCG64([seed, 1])).permutation(n)
    return order  # a node drawn among all feasible ones: no per-row cost to keep


def scheduler_engine(exact: bool = False) -> Engine:
    """The scheduler's own device model and placement policies, ranking nodes by the paper's
    simulator's integer scores (``exact``: by the exact costs those scores round)."""
    from handlers.scheduler import devices
    from handlers.scheduler.plugins import gpu_policies

    def request(milli: int, count: int) -> devices.GpuRequest | None:
        return devices.GpuRequest(milli, count) if count else None

    def workload(tasks: Tasks) -> gpu_policies.TaskTypes:
        return gpu_policies.TaskTypes.learn(
            (int(c), request(int(m), int(k))) for c, m, k in zip(tasks.cpu, tasks.milli, tasks.count, strict=True)
        )

    def row_scores(name: str) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
        def rows(cpu_free: np.ndarray, gpu_free: np.ndarray, request: Any, cpu: int, workload: Any, kinds: np.ndarray) -> Any:
            everywhere = np.ones(len(cpu_free), bool)
            return gpu_policies.scores(name, cpu_free, gpu_free, everywhere, request, cpu, workload, 0, kinds, exact=exact)
        return rows

    def choose(name: str) -> ChooseFn:
        def one(cpu_free: np.ndarray, gpu_free: np.ndarray, feasible: np.ndarray, request: Any, cpu: int,
                workload: Any, rng_key: int, kinds: np.ndarray) -> tuple[int, Any]:
            return gpu_policies.choose(name, cpu_free, gpu_free, feasible, request, cpu, workload, rng_key, kinds, exact)
        return one

    policies = {
        name: Policy(
            name, choose(name), gpu_policies.kind_bit,
            None if name in NOT_ROW_LOCAL else row_scores(name), gpu_policies.devices_on,
        )
        for name in gpu_policies.POLICIES
    }
    return Engine(request, workload, gpu_policies.fragmentation, policies, exact)


# ---------------------------------------------------------------- one run

@dataclass
class Curve:
    """One policy, one seed: the state at every mark of arrived GPU requests."""

    arrival_pct: list[float] = field(default_factory=list)
    unallocated_pct: list[float] = field(default_factory=list)
    frag_rate_pct: list[float] = field(default_factory=list)
    placed: int = 0
    unplaced: int = 0


def _model_masks(nodes: Nodes, specs: Sequence[str]) -> dict[str, np.ndarray]:
    models = np.array(nodes.model, dtype=object)
    masks = {}
    for spec in sorted(set(specs)):
        if spec:
            allowed = [m for m in spec.split("|") if m]
            masks[spec] = np.isin(models, allowed)
    return masks


def run(
    nodes: Nodes, tasks: Tasks, order: np.ndarray, policy: Policy, engine: Engine, workload: Any,
    *, ratio: float, step: float, seed: int, ties: str = "shuffled",
) -> Curve:
    """Place ``tasks[order]`` one by one with ``policy``; record the marks every ``step`` % of arrival.
    Equal scores go by ``ties`` (``TIES``)."""
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")
    if ties == "shuffled":  # the nodes listed in the seed's order: ties then go to the first
        nodes = nodes.take(node_order(len(nodes.names), seed))
    width = max(int(nodes.gpus.max()), 1)
    slots = np.arange(width, dtype=np.int32)[None, :]
    gpu_free = np.where(slots < nodes.gpus[:, None], MILLI, -1).astype(np.int32)
    cpu_free = nodes.cpu.copy()
    mem_free = nodes.memory.copy()
    most_free = gpu_free.max(axis=1)  # per node, its device with the most free (kept per placement)
    wholly_free = (gpu_free == MILLI).sum(axis=1)  # per node, its wholly free devices
    capacity = nodes.gpu_capacity
    masks = _model_masks(nodes, [tasks.spec[i] for i in set(order.tolist())])
    requests: dict[tuple[int, int], Any] = {}
    kinds = np.zeros(len(nodes.names), np.int64)  # what kinds of task each node holds (GPU clustering)
    curve = Curve()
    # per kind of task (cpu, milli, count): its cost and device per node, and the tick they were computed at
    cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray, int]] = {}
    changed_at = np.zeros(len(nodes.names), np.int64)
    marks = [round(k * step, 6) for k in range(int(math.floor(ratio * 100 / step + 1e-9)) + 1)]
    next_mark = 0
    arrived = 0

    def record(pct: float) -> None:
        free = int(gpu_free[gpu_free > 0].sum())
        frag = float(np.asarray(engine.fragmentation(cpu_free, gpu_free, workload)).sum())
        curve.arrival_pct.append(pct)
        curve.unallocated_pct.append(100.0 * free / capacity)
        curve.frag_rate_pct.append(100.0 * frag / free if free else 0.0)

    record(marks[0])
    next_mark = 1
    for position, t in enumerate(order.tolist()):
        cpu, mem = int(tasks.cpu[t]), int(tasks.memory[t])
        count, milli = int(tasks.count[t]), int(tasks.milli[t])
        feasible = (cpu_free >= cpu) & (mem_free >= mem)
        if count == 1 and milli < MILLI:
            feasible &= most_free >= milli
        elif count > 0:
            feasible &= wholly_free >= count
        spec = tasks.spec[t]
        if spec:
            feasible &= masks[spec]
        if feasible.any():
            key = (milli, count)
            if key not in requests:
                requests[key] = engine.request(milli, count)
            request = requests[key]
            if policy.scores is not None and policy.devices is not None:
                node, devices = _cached_choice(
                    policy, cache, changed_at, position, (cpu, milli, count),
                    cpu_free, gpu_free, feasible, request, cpu, workload, kinds,
                    seed * 1_000_003 + position if ties == "random" else None,
                )
            else:  # a policy over the whole cluster: asked about the feasible rows only, its row mapped back
                rows = np.flatnonzero(feasible)
                node, devices = policy.choose(
                    cpu_free[rows], gpu_free[rows], np.ones(len(rows), bool), request, cpu, workload,
                    seed * 1_000_003 + position, kinds[rows],
                )
                node = int(rows[node]) if node >= 0 else -1
            node = int(node)
            if node < 0 or not feasible[node]:
                raise AssertionError(f"policy {policy.name} chose node {node}, which cannot hold the task")
            if count:
                picked = np.atleast_1d(np.asarray(devices, dtype=np.int64))
                if len(picked) != count or len(set(picked.tolist())) != count or (gpu_free[node, picked] < milli).any():
                    raise AssertionError(f"policy {policy.name} chose devices {picked.tolist()} on node {node} for {count}×{milli}m")
                gpu_free[node, picked] -= milli
                most_free[node] = gpu_free[node].max()
                wholly_free[node] = int((gpu_free[node] == MILLI).sum())
            cpu_free[node] -= cpu
            mem_free[node] -= mem
            if policy.kind is not None:
                kinds[node] |= policy.kind(request)
            changed_at[node] = position + 1
            curve.placed += 1
        else:
            curve.unplaced += 1
        arrived += count * milli
        while next_mark < len(marks) and arrived * 100 >= marks[next_mark] * capacity:
            record(marks[next_mark])
            next_mark += 1
    while next_mark < len(marks):  # the list stopped short of the last marks (a draw would pass the ratio)
        record(marks[next_mark])
        next_mark += 1
    return curve


def _cached_choice(
    policy: Policy, cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray, int]], changed_at: np.ndarray,
    tick: int, key: tuple[int, int, int], cpu_free: np.ndarray, gpu_free: np.ndarray, feasible: np.ndarray,
    request: Any, cpu: int, workload: Any, kinds: np.ndarray, tie_key: int | None = None,
) -> tuple[int, Sequence[int]]:
    """The policy's choice as ``choose`` makes it (least cost among the feasible rows, ties to the
    lowest row; drawn among them with ``tie_key`` as seed when given), with only the rows placed
    on since this kind of task last came recomputed."""
    assert policy.scores is not None and policy.devices is not None
    held = cache.get(key)
    if held is None:
        cost, device = policy.scores(cpu_free, gpu_free, request, cpu, workload, kinds)
        cost, device = np.array(cost, np.float64), np.array(device, np.int64)
    else:
        cost, device, synced = held
        rows = np.flatnonzero(changed_at > synced)
        if len(rows):
            c, d = policy.scores(cpu_free[rows], gpu_free[rows], request, cpu, workload, kinds[rows])
            cost[rows], device[rows] = c, d
    cache[key] = (cost, device, tick)
    masked = np.where(feasible, cost, np.inf)
    node = int(masked.argmin())
    if not np.isfinite(masked[node]):
        return -1, ()
    if tie_key is not None:  # kube-scheduler's selectHost: uniformly among the best
        best = np.flatnonzero(masked == masked[node])
        if len(best) > 1:
            node = int(best[np.random.default_rng(tie_key).integers(len(best))])
    return node, policy.devices(gpu_free[node], request, int(device[node]))


# ---------------------------------------------------------------- the experiment

@dataclass
class Result:
    nodes: int
    gpus: int
    tasks: int
    ratio: float
    step: float
    seeds: list[int]
    arrivals: list[int]  # tasks that arrive per seed
    curves: dict[str, list[Curve]]  # per policy, per seed
    ties: str = "shuffled"
    scores: str = "simulator"  # "exact": the engine ranked nodes by exact costs
    left_out: int = 0  # nodes of the list without GPU, not in the cluster (gpu_nodes_only)

    def summary(self) -> dict[str, Any]:
        """Per policy: the mean and spread over seeds at every mark, and the values at 100 % arrival."""
        out: dict[str, Any] = {
            "nodes": self.nodes, "gpus": self.gpus, "pod_list_tasks": self.tasks, "ratio": self.ratio,
            "step_pct": self.step, "ties": self.ties, "scores": self.scores,
            "nodes_without_gpu_left_out": self.left_out, "seeds": self.seeds, "arrived_tasks": self.arrivals, "policies": {},
        }
        for name, curves in self.curves.items():
            arrival = curves[0].arrival_pct
            unalloc = np.array([c.unallocated_pct for c in curves])
            frag = np.array([c.frag_rate_pct for c in curves])
            at = _index_of(arrival, 100.0)
            out["policies"][name] = {
                "arrival_pct": arrival,
                "unallocated_pct": {"mean": _r(unalloc.mean(0)), "std": _r(_std(unalloc))},
                "frag_rate_pct": {"mean": _r(frag.mean(0)), "std": _r(_std(frag))},
                "at_100": None if at is None else {
                    "unallocated_pct": {"mean": round(float(unalloc[:, at].mean()), 3), "std": round(float(_std(unalloc)[at]), 3),
                                        "per_seed": _r(unalloc[:, at])},
                    "unallocated_gpus": {"mean": round(float(unalloc[:, at].mean()) * self.gpus / 100, 1)},
                    "frag_rate_pct": {"mean": round(float(frag[:, at].mean()), 3), "std": round(float(_std(frag)[at]), 3)},
                },
                "placed": [c.placed for c in curves],
                "unplaced": [c.unplaced for c in curves],
            }
        return out


def _std(values: np.ndarray) -> np.ndarray:
    return values.std(0, ddof=1) if len(values) > 1 else np.zeros(values.shape[1])


def _r(values: np.ndarray) -> list[float]:
    return [round(float(v), 3) for v in values]


def _index_of(marks: Sequence[float], pct: float) -> int | None:
    for i, m in enumerate(marks):
        if abs(m - pct) < 1e-9:
            return i
    return None


def experiment(
    nodes: Nodes, tasks: Tasks, engine: Engine, *, policies: Sequence[str], seeds: Sequence[int],
    ratio: float = 1.3, step: float = 5.0, ties: str = "shuffled", gpu_nodes_only: bool = True,
) -> Result:
    """Every policy over every seed; the same arrivals for every policy under one seed. The
    cluster is the list's GPU nodes, as in the simulator's experiments (``gpu_nodes_only``
    False: every node of the list)."""
    listed = len(nodes.names)
    if gpu_nodes_only:
        nodes = nodes.take(np.flatnonzero(nodes.gpus > 0))
    workload = engine.workload(tasks)
    curves: dict[str, list[Curve]] = {name: [] for name in policies}
    arrived = []
    for seed in seeds:
        order = arrivals(tasks, nodes.gpu_capacity, ratio, seed)
        arrived.append(len(order))
        for name in policies:
            curves[name].append(run(nodes, tasks, order, engine.policies[name], engine, workload, ratio=ratio, step=step, seed=seed, ties=ties))
    return Result(len(nodes.names), int(nodes.gpus.sum()), len(tasks), ratio, step, list(seeds), arrived, curves, ties,
                  "exact" if engine.exact else "simulator", listed - len(nodes.names))


# ---------------------------------------------------------------- the plot

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def svg(summary: dict[str, Any], title: str) -> str:
    """Two panels like the paper's figures: unallocated GPU % and fragmentation rate % against arrived workload %."""
    panels = [("unallocated_pct", "Unallocated GPU (%)"), ("frag_rate_pct", "GPU fragmentation rate (%)")]
    width, height, pad_l, pad_b, pad_t, gap = 460, 320, 56, 44, 36, 40
    total_w = 2 * width + gap
    legend_h = 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{height + legend_h + 10}" '
        f'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{total_w / 2}" y="18" text-anchor="middle" font-size="14">{_esc(title)}</text>',
    ]
    names = list(summary["policies"])
    xmax = summary["ratio"] * 100
    for p, (key, label) in enumerate(panels):
        x0 = p * (width + gap)
        ymax = max([max(summary["policies"][n][key]["mean"] or [0]) for n in names] + [1.0])
        ymax = _nice(ymax)
        plot_w, plot_h = width - pad_l - 10, height - pad_t - pad_b

        def sx(v: float, _x0: int = x0, _w: int = plot_w) -> float:
            return _x0 + pad_l + v / xmax * _w

        def sy(v: float, _h: int = plot_h, _ymax: float = ymax) -> float:
            return pad_t + _h - v / _ymax * _h

        parts.append(f'<rect x="{x0 + pad_l}" y="{pad_t}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
        for k in range(6):
            yv = ymax * k / 5
            parts.append(f'<line x1="{x0 + pad_l - 4}" y1="{sy(yv):.1f}" x2="{x0 + pad_l + plot_w}" y2="{sy(yv):.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{x0 + pad_l - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:g}</text>')
        xv = 0.0
        while xv <= xmax + 1e-9:
            parts.append(f'<text x="{sx(xv):.1f}" y="{pad_t + plot_h + 16}" text-anchor="middle">{xv:g}</text>')
            xv += 20
        parts.append(f'<text x="{x0 + pad_l + plot_w / 2}" y="{pad_t + plot_h + 34}" text-anchor="middle">'
                     'Arrived workloads (% of cluster GPU capacity)</text>')
        parts.append(f'<text x="{x0 + 14}" y="{pad_t + plot_h / 2}" text-anchor="middle" '
                     f'transform="rotate(-90 {x0 + 14} {pad_t + plot_h / 2})">{label}</text>')
        for i, name in enumerate(names):
            data = summary["policies"][name]
            points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(data["arrival_pct"], data[key]["mean"], strict=True))
            parts.append(f'<polyline fill="none" stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="1.8" points="{points}"/>')
    for i, name in enumerate(names):
        lx = 60 + i * 130
        ly = height + 14
        parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="3"/>')
        parts.append(f'<text x="{lx + 30}" y="{ly + 4}">{_esc(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _nice(value: float) -> float:
    for top in (1, 2, 5, 10, 20, 25, 50, 100):
        if value <= top:
            return float(top)
    return float(math.ceil(value / 50) * 50)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- one run recorded on a log (--log)

QUEUE = "experiment"
NAMESPACE = "openb"
SPACING_MS = 10  # virtual time between two arrivals: within one scheduling window, so sessions see several


def recorded_run(
    nodes: Nodes, tasks: Tasks, policy: str, *, seed: int, ratio: float, ties: str = "shuffled",
    gpu_nodes_only: bool = True,
) -> tuple[dict[str, Any], np.ndarray, int]:
    """One policy, one seed as a scenario ``simulate`` runs through the real pipeline:
    (scenario, arrivals, index into them of the arrival that reaches 100 %).

    The cluster is the experiment's (its GPU nodes, with ``nvidia.com/gpu`` devices and
    the model label), with no pod-count limit as in memory. Under ``ties="shuffled"``
    every node is named with a prefix from its place in the seed's shuffle
    (``node_order``, ``0000-<sn>``), as the paper's simulator renames them, so the
    scheduler's rule for equal scores (the first node by name) is the experiment's. The
    scheduler conf is the default one with ``nodeorder`` and ``binpack`` (node scores of
    their own) replaced by ``fgd`` with ``fgd.policy``, and without ``proportion``: the
    experiment has no queues to share, and proportion's fair share of the one queue
    refuses placements that fit once the cluster is nearly full. The arrivals are the experiment's
    under ``seed`` (the same draws), each a one-pod job that never ends, submitted
    ``SPACING_MS`` of virtual time after the one before."""
    if gpu_nodes_only:
        nodes = nodes.take(np.flatnonzero(nodes.gpus > 0))
    order = arrivals(tasks, nodes.gpu_capacity, ratio, seed)
    rank = np.empty(len(nodes.names), np.int64)
    rank[node_order(len(nodes.names), seed)] = np.arange(len(nodes.names))
    width = len(str(max(len(nodes.names) - 1, 1)))
    pods_per_node = str(max(len(order), 110))
    node_entries: list[dict[str, Any]] = []
    for i, sn in enumerate(nodes.names):
        allocatable = {"cpu": f"{int(nodes.cpu[i])}m", "memory": f"{int(nodes.memory[i])}Mi", "pods": pods_per_node}
        labels = {"eventbatch.io/trace": "openb"}
        if nodes.gpus[i] > 0:
            allocatable["nvidia.com/gpu"] = str(int(nodes.gpus[i]))
            if nodes.model[i]:
                labels["nvidia.com/gpu.product"] = nodes.model[i]
        name = f"{int(rank[i]):0{width}d}-{sn}" if ties == "shuffled" else sn
        node_entries.append({"name": name, "allocatable": allocatable, "labels": labels})
    if ties == "shuffled":
        node_entries.sort(key=lambda n: str(n["name"]))
    workload = [
        {"at": f"{(k + 1) * SPACING_MS}ms", "apply": _job(f"a{k:05d}-t{t}", tasks, t)} for k, t in enumerate(order.tolist())
    ]
    arrived = np.cumsum(tasks.gpu_milli[order])
    full = int(np.searchsorted(arrived, nodes.gpu_capacity, side="left"))  # the first arrival at or past 100 %
    conf = {
        "actions": "enqueue, allocate, backfill",
        "tiers": [
            {"plugins": [{"name": "priority"}, {"name": "gang"}, {"name": "conformance"}]},
            {"plugins": [
                {"name": "overcommit"}, {"name": "drf"}, {"name": "predicates"},
                {"name": "fgd", "arguments": {"fgd.policy": policy, "fgd.seed": seed}},
            ]},
        ],
    }
    scenario = {
        "nodes": node_entries,
        "queues": [{"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": QUEUE},
                    "spec": {"weight": 1, "reclaimable": False}}],
        "scheduler": conf,
        "workload": workload,
        "until": f"{(len(order) + 1) * SPACING_MS + 60_000}ms",
    }
    return scenario, order, full


def _job(name: str, tasks: Tasks, t: int) -> dict[str, Any]:
    requests = {"cpu": f"{int(tasks.cpu[t])}m", "memory": f"{int(tasks.memory[t])}Mi"}
    count, milli = int(tasks.count[t]), int(tasks.milli[t])
    if count:
        requests["nvidia.com/gpu"] = f"{milli}m" if milli < MILLI else str(count)
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "openb/task", "resources": {"requests": requests}}],
        "restartPolicy": "Never",
    }
    models = [m for m in tasks.spec[t].split("|") if m]
    if models:
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": models}]}]}}}
    return {
        "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"minAvailable": 1, "queue": QUEUE, "maxRetry": 0, "tasks": [
            {"name": "main", "replicas": 1, "template": {"spec": spec}}]},  # no sim-duration: it never ends
    }


def unallocated_pct(state: Any) -> tuple[float, int, int]:
    """(unallocated GPU %, pods holding GPU devices, GPUs) of a folded ``ClusterState``: the free
    milli-GPU of every device over the devices' capacity, as the experiment measures it."""
    free = capacity = 0
    holding: set[str] = set()
    for record in state.devices.values():
        free += sum(max(f, 0) for f in record.free())
        capacity += record.count * MILLI
        holding.update(record.pods)
    return (100.0 * free / capacity if capacity else 0.0), len(holding), capacity // MILLI
