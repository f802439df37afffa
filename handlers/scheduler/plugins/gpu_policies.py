"""GPU placement policies: FGD (fragmentation gradient descent) and the paper's baselines.

Where it sits: pure numpy functions over the device arrays of
``handlers.scheduler.devices`` (``gpu_free``: (nodes, G) free milli-GPU per
device, -1 beyond a node's device count). The ``gpu`` node-order plugin
(``plugins.fgd``) scores nodes and picks devices with them, and the trace
experiment (``eventbatch trace experiment``) places its tasks with them. No
clock, no global randomness, no Python loop over nodes or devices (loops run
over the workload's task types, a few dozen at most).

Definitions (Weng et al., "Beware of Fragmentation", USENIX ATC 2023, and
their simulator's ``pkg/utils/frag.go``):

- A *task type* is (milli-CPU, ``GpuRequest``) with a popularity; ``TaskTypes``
  holds the workload's distribution of them.
- The *fragmentation of node n for task type m*, in milli-GPU: the node's free
  GPU that m cannot use. If m asks for no GPU, or the node cannot hold m at
  all (too few devices with ``milli`` free, or too little CPU), all of the
  node's free GPU; if it can, the free GPU on the devices with less than m's
  ``milli`` free (a whole-device type cannot use a partly used device).
- The *expected fragmentation* ``F(n) = sum_m popularity(m) * frag(n, m)``
  (``fragmentation``).
- FGD places a task on the node and device(s) whose placement increases
  ``F`` least (``F(after) - F(before)``; ties: lowest node index, then lowest
  device index). A whole-device task takes the lowest-indexed wholly free
  devices (which ones does not change ``F``).

The baselines, as the simulator scores them (its experiment's settings):

- ``bestfit``: least ``0.5 (cpu_free - cpu)/128000 + 0.5 (gpu_free - gpu)/8000``
  (the node's total free GPU; 128 cores and 8 GPUs: the largest openb node);
  device: best fit (the fullest device that fits).
- ``dotproduct`` (Tetris): least ``(cpu_free/128000)(cpu/128000) +
  (gpu_free/8000)(gpu/8000)`` (total GPU, normalised by the largest node, as
  the simulator's ``merge``/``max`` settings); device: best fit.
- ``gpupacking``: prefer a share on a partly used device (the fuller the
  better), then wholly free devices on a partly used node (the fewer the
  better), then an idle node (the fewer its devices the better); the
  simulator's integer scores. Device: best fit.
- ``gpuclustering``: prefer nodes already holding only tasks of the same kind
  (no GPU / a share / k whole devices), then nodes holding that kind among
  others, then idle nodes, then nodes of other kinds; within each class the
  fuller node. The kinds on each node are the ``kinds`` bitmask argument
  (``kind_bit``); without it they are inferred from the devices (a partly used
  device: shares; a device used wholly: whole devices of some count), which is
  exact for shares only. Device: best fit.
- ``random``: a node drawn uniformly among the feasible ones with
  ``numpy.random.default_rng(rng_key)``; device: drawn among those that fit
  (shares), the lowest-indexed free ones (whole devices).

Scores are the exact values, not the simulator's integer-rounded ones, and
ties go to the lowest node index (the simulator's kube-scheduler breaks ties
at random): one source of difference from its figures.

The one entry point is ``choose(policy, cpu_free, gpu_free, feasible, request,
cpu, workload, rng_key) -> (node, devices)``: the chosen row (-1: none) and the
devices on it (empty for a task without GPU). ``scores`` gives the policy's
per-node cost (lower is better, ``inf`` where the task does not fit) and the
device pick per node, for callers that combine it with other node scores.
``Placer`` keeps the same decision incrementally over a sequence of
placements (one row recomputed per placement), for sessions and the
experiment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from handlers.scheduler.devices import MILLI, GpuRequest

POLICIES = ("fgd", "bestfit", "dotproduct", "gpupacking", "gpuclustering", "random")
MAX_SPEC_CPU = 128_000  # milli-CPU of the largest openb node (the simulator's MaxSpecCpu)
MAX_SPEC_GPU = 8_000  # milli-GPU of the largest openb node (MaxSpecGpu)
POPULARITY_THRESHOLD = 0.95  # the simulator's typical pods: the most popular types up to 95% of tasks

NO_DEVICES: tuple[int, ...] = ()


@dataclass(frozen=True)
class TaskTypes:
    """The workload's distribution of task types: per type, milli-CPU, the GPU request
    (``milli`` per device, ``count`` devices; 0 devices: no GPU) and popularity as an
    integer weight (``popularity``: how many tasks of the type were seen; ``weight`` is
    it normalised). Integer weights keep fragmentation sums exact, so equal placements
    tie exactly and ties go to the lowest node. Types are ordered by decreasing
    popularity, then by (cpu, milli, count): deterministic for the same submissions."""

    cpu: np.ndarray  # (T,) int64
    milli: np.ndarray  # (T,) int64, 0 for a type without GPU
    count: np.ndarray  # (T,) int64
    popularity: np.ndarray  # (T,) int64, > 0

    def __len__(self) -> int:
        return int(self.cpu.shape[0])

    @property
    def weight(self) -> np.ndarray:
        """Popularity normalised to sum to 1."""
        total = int(self.popularity.sum())
        out: np.ndarray = self.popularity / total if total else self.popularity.astype(np.float64)
        return out

    @classmethod
    def of(cls, types: Iterable[tuple[int, GpuRequest | None, float]]) -> TaskTypes:
        """From (milli-CPU, request or None, popularity) triples; integer popularities are
        kept, others scaled to integers (parts in 2**20)."""
        rows = [(int(c), (r.milli, r.count) if r is not None else (0, 0), p) for c, r, p in types]
        if not rows or sum(p for _, _, p in rows) <= 0:
            return EMPTY_WORKLOAD
        pops = [p for _, _, p in rows]
        if not all(float(p).is_integer() for p in pops):
            total = sum(pops)
            pops = [max(1, round(p / total * (1 << 20))) if p > 0 else 0 for p in pops]
        return cls(
            np.array([c for c, _, _ in rows], dtype=np.int64),
            np.array([g[0] for _, g, _ in rows], dtype=np.int64),
            np.array([g[1] for _, g, _ in rows], dtype=np.int64),
            np.array([int(p) for p in pops], dtype=np.int64),
        )

    @classmethod
    def learn(
        cls, tasks: Iterable[tuple[int, GpuRequest | None]], threshold: float = POPULARITY_THRESHOLD
    ) -> TaskTypes:
        """The distribution of the submitted ``tasks`` ((milli-CPU, request or None) each):
        counted per distinct type, the most popular types kept until they cover
        ``threshold`` of the tasks (the simulator's "typical pods", 95%), their counts as
        popularity (so normalised over the kept ones)."""
        counts = Counter((int(c), (r.milli, r.count) if r is not None and r.count > 0 else (0, 0)) for c, r in tasks)
        total = sum(counts.values())
        if total == 0:
            return EMPTY_WORKLOAD
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept: list[tuple[int, GpuRequest | None, float]] = []
        covered = 0
        for (c, (milli, count)), k in ordered:
            if covered >= threshold * total:
                break
            kept.append((c, GpuRequest(milli, count) if count else None, k))
            covered += k
        return cls.of(kept)


EMPTY_WORKLOAD = TaskTypes(
    np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
)


def _free(gpu_free: np.ndarray) -> np.ndarray:
    """Free milli-GPU per device as int64, absent devices (-1) as 0."""
    out: np.ndarray = np.maximum(gpu_free, 0).astype(np.int64)
    return out


def _typed(workload: TaskTypes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The workload's columns, to broadcast over (rows, T): milli, count, cpu, integer
    popularity, and whether the type asks for GPU at all."""
    gpu = workload.count > 0
    return workload.milli, workload.count, workload.cpu, workload.popularity, gpu


def _weighted(frag: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """Sum over the last axis of ``frag * popularity``, in integers (exact)."""
    out: np.ndarray = (frag * popularity).sum(axis=-1)
    return out


def _scale(workload: TaskTypes) -> float:
    total = int(workload.popularity.sum())
    return float(total) if total else 1.0


def fragmentation(cpu_free: np.ndarray, gpu_free: np.ndarray, workload: TaskTypes) -> np.ndarray:
    """The expected fragmentation of each node (milli-GPU, (n,) float64) under ``workload``."""
    out: np.ndarray = _fragmentation(cpu_free, gpu_free, workload) / _scale(workload)
    return out


def _fragmentation(cpu_free: np.ndarray, gpu_free: np.ndarray, workload: TaskTypes) -> np.ndarray:
    """``fragmentation`` times the popularities' sum: (n,) int64, exact."""
    free = _free(gpu_free)
    total = free.sum(axis=1)
    cpu = np.asarray(cpu_free, dtype=np.int64)
    milli, count, tcpu, weight, gpu = _typed(workload)
    small = free[:, :, None] < milli  # (n, G, T): devices too small for the type
    big_count = (~small).sum(axis=1)  # (n, T); absent devices hold 0 < milli
    part = np.where(small, free[:, :, None], 0).sum(axis=1)  # (n, T)
    fits = gpu & (big_count >= count) & (cpu[:, None] >= tcpu)
    return _weighted(np.where(fits, part, total[:, None]), weight)


def _fgd_costs(
    cpu_free: np.ndarray, gpu_free: np.ndarray, request: GpuRequest | None, cpu: int, workload: TaskTypes
) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the least increase of expected fragmentation over the placements of
    the task on that row (``inf`` where it does not fit) and the device it takes (a share:
    that device; whole devices or none: -1, the caller takes the lowest free ones).
    Elementwise per row, so any subset of rows gives the same values as all rows."""
    free = _free(gpu_free)
    n, g = free.shape
    cpu_now = np.asarray(cpu_free, dtype=np.int64)
    cpu_after = cpu_now - cpu
    cpu_ok = cpu_after >= 0
    none = np.full(n, -1, dtype=np.int64)
    # Integer sums (milli-GPU times popularity) until the one division at the end.
    scale = _scale(workload)
    before = _fragmentation(cpu_now, gpu_free, workload)
    if request is None or request.count == 0:
        after = _fragmentation(cpu_after, gpu_free, workload)
        return np.where(cpu_ok, (after - before) / scale, np.inf), none
    milli, count, tcpu, weight, gpu = _typed(workload)
    total = free.sum(axis=1)
    small = free[:, :, None] < milli  # (n, G, T)
    big_count = g - small.sum(axis=1)  # (n, T); absent devices count as too small
    part = np.where(small, free[:, :, None], 0).sum(axis=1)  # (n, T)
    cpu_fits = cpu_after[:, None] >= tcpu  # (n, T)
    if not request.shared:
        k = request.count
        ok = cpu_ok & ((free >= MILLI).sum(axis=1) >= k)
        total_after = total - MILLI * k
        # k wholly free devices become 0: they leave the count of devices fitting each
        # type (every milli <= 1000) and add nothing to the free GPU on devices too small.
        fits = gpu & (big_count - k >= count) & cpu_fits
        frag = np.where(fits, part, total_after[:, None])
        after = _weighted(frag, weight)
        return np.where(ok, (after - before) / scale, np.inf), none
    if g == 0:
        return np.full(n, np.inf), none
    # A share: one candidate per device, whose free drops by r.
    r = request.milli
    dev_after = free - r  # (n, G)
    dev_ok = (gpu_free >= r) & cpu_ok[:, None]
    was_small = small  # (n, G, T)
    now_small = dev_after[:, :, None] < milli
    count_t = big_count[:, None, :] + was_small.astype(np.int64) - now_small  # (n, G, T)
    part_t = part[:, None, :] - np.where(was_small, free[:, :, None], 0) + np.where(now_small, dev_after[:, :, None], 0)
    fits = gpu & (count_t >= count) & cpu_fits[:, None, :]
    frag = np.where(fits, part_t, (total - r)[:, None, None])
    after = _weighted(frag, weight)  # (n, G)
    delta = np.where(dev_ok, (after - before[:, None]) / scale, np.inf)
    rows = np.arange(n)
    best = delta.argmin(axis=1)  # first minimum: lowest device index on ties
    cost = delta[rows, best]
    return cost, np.where(np.isfinite(cost), best, -1)


def _gpu_fit(cpu_free: np.ndarray, gpu_free: np.ndarray, request: GpuRequest | None, cpu: int) -> np.ndarray:
    """Rows where the task fits: CPU, and one device (a share) or enough wholly free devices."""
    ok = np.asarray(cpu_free, dtype=np.int64) >= cpu
    if request is None or request.count == 0:
        return ok
    if gpu_free.shape[1] == 0:
        return np.zeros(gpu_free.shape[0], dtype=bool)
    big = gpu_free >= request.milli
    return ok & (big.any(axis=1) if request.shared else big.sum(axis=1) >= request.count)


def _best_fit_device(gpu_free: np.ndarray, request: GpuRequest | None) -> np.ndarray:
    """Per row, the fullest device a share fits (lowest index on ties), -1 if none or not a share."""
    n = gpu_free.shape[0]
    if request is None or not request.shared or gpu_free.shape[1] == 0:
        return np.full(n, -1, dtype=np.int64)
    left = np.where(gpu_free >= request.milli, gpu_free.astype(np.int64), np.iinfo(np.int64).max)
    best = left.argmin(axis=1)
    return np.where(left[np.arange(n), best] < np.iinfo(np.int64).max, best, -1)


# The kinds of task ``gpuclustering`` groups: bit 0 no GPU, bit 1 a share, bit 1+k k whole devices.
def kind_bit(request: GpuRequest | None) -> int:
    """The ``gpuclustering`` kind of a task, as a bit of a node's ``kinds`` mask."""
    if request is None or request.count == 0:
        return 1
    if request.shared:
        return 2
    return 1 << (1 + min(request.count, 60))


def inferred_kinds(gpu_free: np.ndarray) -> np.ndarray:
    """Each node's kinds as far as its devices tell: shares where a device is partly used,
    one whole device where a device is used up (the count of a whole-device task is not
    recorded on the devices)."""
    partly = ((gpu_free > 0) & (gpu_free < MILLI)).any(axis=1)
    used = (gpu_free == 0).any(axis=1)
    return np.where(partly, 2, 0).astype(np.int64) | np.where(used, kind_bit(GpuRequest(MILLI, 1)), 0)


def scores(
    policy: str,
    cpu_free: np.ndarray,
    gpu_free: np.ndarray,
    feasible: np.ndarray,
    request: GpuRequest | None,
    cpu: int,
    workload: TaskTypes,
    rng_key: int = 0,
    kinds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The policy's cost per node (lower is better; ``inf`` where infeasible or the task does
    not fit) and the device each node would give a share (-1: none, or whole devices)."""
    gpu_free = np.asarray(gpu_free)
    n = gpu_free.shape[0]
    ok = np.asarray(feasible, dtype=bool) & _gpu_fit(cpu_free, gpu_free, request, cpu)
    cpu64 = np.asarray(cpu_free, dtype=np.int64)
    total = _free(gpu_free).sum(axis=1)
    want = 0 if request is None else request.total
    device = _best_fit_device(gpu_free, request)
    if policy == "fgd":
        cost, device = _fgd_costs(cpu_free, gpu_free, request, cpu, workload)
    elif policy == "bestfit":
        cost = 0.5 * (cpu64 - cpu) / MAX_SPEC_CPU + 0.5 * (total - want) / MAX_SPEC_GPU
    elif policy == "dotproduct":
        cost = (cpu64 / MAX_SPEC_CPU) * (cpu / MAX_SPEC_CPU) + (total / MAX_SPEC_GPU) * (want / MAX_SPEC_GPU)
    elif policy == "gpupacking":
        cost = -_packing_score(gpu_free, request, device).astype(np.float64)
    elif policy == "gpuclustering":
        cost = -_clustering_score(gpu_free, request, total, inferred_kinds(gpu_free) if kinds is None else kinds)
    elif policy == "random":
        cost = np.zeros(n, dtype=np.float64)
        rng = np.random.default_rng(rng_key)
        idx = np.flatnonzero(ok)
        if len(idx):
            cost[:] = 1.0
            cost[idx[int(rng.integers(len(idx)))]] = 0.0
        if request is not None and request.shared and gpu_free.shape[1]:
            # a device drawn among those that fit, per node (only the chosen node's is used)
            fit = gpu_free >= request.milli
            draw = rng.random(gpu_free.shape)
            device = np.where(fit.any(axis=1), np.where(fit, draw, -1.0).argmax(axis=1), -1)
    else:
        raise ValueError(f"unknown GPU placement policy {policy!r} (one of {', '.join(POLICIES)})")
    return np.where(ok, cost, np.inf), np.where(ok, device, -1)


def _packing_score(gpu_free: np.ndarray, request: GpuRequest | None, device: np.ndarray) -> np.ndarray:
    """The simulator's GPU packing score (0..100, higher is better)."""
    n = gpu_free.shape[0]
    if request is None or request.count == 0:
        return np.zeros(n, dtype=np.int64)
    count = (gpu_free >= 0).sum(axis=1)
    wholly = (gpu_free >= MILLI).sum(axis=1)
    idle = wholly == count
    idle_score = np.maximum(100 // 3 - wholly, wholly)
    if request.shared:
        rows = np.arange(n)
        chosen = gpu_free[rows, np.maximum(device, 0)].astype(np.int64) if gpu_free.shape[1] else np.zeros(n, np.int64)
        fresh = chosen >= MILLI  # best fit had to take a wholly free device
        shared_score = np.maximum(100 - (chosen * 100 // MILLI) // 10, 50)
        used_score = np.where(fresh, np.maximum(50 - 1, 100 // 3), shared_score)
    else:
        used_score = np.full(n, max(50 - request.count, 100 // 3), dtype=np.int64)
    out: np.ndarray = np.where(idle, idle_score, used_score).astype(np.int64)
    return out


def _clustering_score(
    gpu_free: np.ndarray, request: GpuRequest | None, total: np.ndarray, kinds: np.ndarray
) -> np.ndarray:
    """The simulator's GPU clustering score (0..100, higher is better)."""
    n = gpu_free.shape[0]
    if request is None or request.count == 0:
        return np.zeros(n, dtype=np.float64)
    bit = kind_bit(request)
    kinds = np.asarray(kinds, dtype=np.int64)
    fill = (25 * (MAX_SPEC_GPU - total)) // MAX_SPEC_GPU
    same = (kinds & bit) != 0
    only = kinds == bit
    base = np.where(same, np.where(only, 75, 50), np.where(kinds == 0, 25, 0))
    out: np.ndarray = (base + fill).astype(np.float64)
    return out


def choose(
    policy: str,
    cpu_free: np.ndarray,
    gpu_free: np.ndarray,
    feasible: np.ndarray,
    request: GpuRequest | None,
    cpu: int,
    workload: TaskTypes,
    rng_key: int = 0,
    kinds: np.ndarray | None = None,
) -> tuple[int, tuple[int, ...]]:
    """Where ``policy`` places a task of ``cpu`` milli-CPU and ``request`` (None: no GPU):
    (node row, devices), or (-1, ()) when it fits no feasible node. Ties: lowest row."""
    gpu_free = np.asarray(gpu_free)
    cost, device = scores(policy, cpu_free, gpu_free, feasible, request, cpu, workload, rng_key, kinds)
    if cost.shape[0] == 0:
        return -1, NO_DEVICES
    node = int(cost.argmin())
    if not np.isfinite(cost[node]):
        return -1, NO_DEVICES
    return node, devices_on(gpu_free[node], request, int(device[node]))


def devices_on(free: np.ndarray, request: GpuRequest | None, device: int) -> tuple[int, ...]:
    """The devices a task takes on a node with device row ``free``: the share's ``device``,
    or the lowest-indexed wholly free devices."""
    if request is None or request.count == 0:
        return NO_DEVICES
    if request.shared:
        return (device,)
    return tuple(int(i) for i in np.flatnonzero(free >= MILLI)[: request.count])
