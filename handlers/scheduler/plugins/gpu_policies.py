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
  ``F`` least (``F(after) - F(before)``), as the simulator scores it
  (``fgd_score.go``): ``int(100 sigmoid(-increase / 1000))``, so increases
  within a few tens of milli-GPU score alike; the device is the first (lowest
  index) with the node's best score. A whole-device task takes the
  lowest-indexed wholly free devices (which ones does not change ``F``).

The baselines, as the simulator scores them (its experiment's settings):

- ``bestfit``: ``int(100 (1 - s))`` for ``s = 0.5 (cpu_free - cpu)/128000 +
  0.5 (gpu_free - gpu)/8000`` (the node's total free GPU; 128 cores and 8
  GPUs: the largest openb node); device: best fit (the fullest device that
  fits).
- ``dotproduct`` (Tetris): ``int(100 (1 - d / 2))`` for ``d =
  (cpu_free/128000)(cpu/128000) + (gpu_free/8000)(gpu/8000)`` (total GPU,
  normalised by the largest node, as the simulator's ``merge``/``max``
  settings); device: best fit.
- ``gpupacking``: prefer a share on a partly used device (the fuller the
  better), then wholly free devices on a partly used node (the fewer the
  better), then an idle node (the fewer its devices the better); the
  simulator's integer scores. Device: best fit.
- ``gpuclustering``: prefer nodes already holding only tasks of the same kind
  (a share / k whole devices), then nodes holding that kind among
  others, then idle nodes, then nodes of other kinds; within each class the
  fuller node. The kinds on each node are the ``kinds`` bitmask argument
  (``kind_bit``); without it they are inferred from the devices (a partly used
  device: shares; a device used wholly: whole devices of some count), which is
  exact for shares only. Device: best fit.
- ``random``: a node drawn uniformly among the feasible ones with
  ``numpy.random.default_rng(rng_key)``; device: drawn among those that fit
  (shares), the lowest-indexed free ones (whole devices).

Costs are minus those integer scores (lower is better); ``exact=True`` gives
the exact values they round instead (FGD: the increase itself, and the device
of the least increase). Equal costs go to the lowest node index, as the
simulator's kube-scheduler (a fork that takes the lowest node name among the
best, not a random one) does among its nodes' names.

The one entry point is ``choose(policy, cpu_free, gpu_free, feasible, request,
cpu, workload, rng_key) -> (node, devices)``: the chosen row (-1: none) and the
devices on it (empty for a task without GPU). ``scores`` gives the policy's
per-node cost (lower is better, ``inf`` where the task does not fit) and the
device pick per node, for callers that combine it with other node scores.
``Placer`` keeps the same decision incrementally over a sequence of
placements (one row recomputed per placement), for sessions and the
experiment. ``fgd_state`` gives FGD's (cost, device) of one node state
(``PlainState``) in plain Python, the same values: a caller scoring a few
states for many kinds of task keeps each state's fragmentation before a
placement, and its results per GPU request and CPU class, across kinds.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from math import exp, floor

import numpy as np

from handlers.scheduler.devices import MILLI, GpuRequest

POLICIES = ("fgd", "bestfit", "dotproduct", "gpupacking", "gpuclustering", "random")
MAX_SPEC_CPU = 128_000  # milli-CPU of the largest openb node (the simulator's MaxSpecCpu)
MAX_SPEC_GPU = 8_000  # milli-GPU of the largest openb node (MaxSpecGpu)
POPULARITY_THRESHOLD = 0.95  # the simulator's typical pods: the most popular types up to 95% of tasks

NO_DEVICES: tuple[int, ...] = ()
# Score nodes in identical states once when more than this many are scored at a time.
DEDUPE = 64
# Score this many nodes or fewer in plain Python (the same integers; fewer calls into numpy).
PLAIN = 4


@dataclass(frozen=True, eq=False)
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

    @cached_property
    def shapes(self) -> _Shapes:
        """The types grouped by GPU shape, for the fragmentation arithmetic."""
        return _shapes(self)

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


@dataclass(frozen=True)
class _Shapes:
    """The workload grouped by GPU shape (milli, count) for the arithmetic: a type's
    fragmentation is the node's free GPU less, where the type fits, what it can use
    (the free GPU on devices with at least its ``milli``); what it can use depends on the
    shape alone, whether it fits also on the type's CPU."""

    milli: np.ndarray  # (U,) the GPU shapes
    count: np.ndarray  # (U,)
    total: int  # every type's popularity (types without GPU included)
    # per shape (milli, count, [(cpu, popularity) of its types]), for one node at a time
    plain: tuple[tuple[int, int, tuple[tuple[int, int], ...]], ...]
    # the GPU types' distinct CPUs, ascending: a CPU value's class is how many of them it
    # holds (``cpu_class``), and all the CPU values of a class weigh the types alike:
    thresholds: tuple[int, ...]
    # per class, per shape: the popularity of the shape's types that the class's CPU holds
    by_class: tuple[tuple[int, ...], ...]
    class_cpu: np.ndarray  # (C,) int64: ``thresholds``
    class_weights: np.ndarray  # (C + 1, U) int64: ``by_class``


def _shapes(workload: TaskTypes) -> _Shapes:
    gpu = workload.count > 0
    pairs = sorted({(int(m), int(c)) for m, c in zip(workload.milli[gpu], workload.count[gpu], strict=True)})
    types = list(
        zip(
            workload.cpu[gpu].tolist(),
            workload.milli[gpu].tolist(),
            workload.count[gpu].tolist(),
            workload.popularity[gpu].tolist(),
            strict=True,
        )
    )
    plain = tuple((m, c, tuple((tc, p) for tc, tm, tk, p in types if (tm, tk) == (m, c))) for m, c in pairs)
    thresholds = tuple(sorted({tc for tc, _, _, _ in types}))
    by_class = tuple(
        tuple(sum(p for tc, p in of_shape if tc <= cpu) for _, _, of_shape in plain) for cpu in (-1, *thresholds)
    )
    return _Shapes(
        np.array([m for m, _ in pairs], dtype=np.int64),
        np.array([c for _, c in pairs], dtype=np.int64),
        int(workload.popularity.sum()),
        plain,
        thresholds,
        by_class,
        np.array(thresholds, dtype=np.int64),
        np.array(by_class, dtype=np.int64).reshape(len(by_class), len(pairs)),
    )


def _scale(workload: TaskTypes) -> float:
    total = workload.shapes.total  # every type's popularity, summed once per workload
    return float(total) if total else 1.0


def _usable_weight(sh: _Shapes, cpu: np.ndarray) -> np.ndarray:
    """Per row and shape: the popularity of the shape's types whose CPU the row holds ((k, U)):
    the weights of each row's CPU class (``cpu_class``)."""
    fits: np.ndarray = sh.class_weights[np.searchsorted(sh.class_cpu, cpu, side="right")]
    return fits


def fragmentation(cpu_free: np.ndarray, gpu_free: np.ndarray, workload: TaskTypes) -> np.ndarray:
    """The expected fragmentation of each node (milli-GPU, (n,) float64) under ``workload``."""
    out: np.ndarray = _fragmentation(np.asarray(cpu_free, dtype=np.int64), _free(gpu_free), workload.shapes)
    return out / _scale(workload)


def _fragmentation(cpu: np.ndarray, free: np.ndarray, sh: _Shapes) -> np.ndarray:
    """``fragmentation`` times the popularities' sum: (k,) int64, exact. ``free``: clipped."""
    total = free.sum(axis=1)
    big = free[:, :, None] >= sh.milli  # (k, G, U); absent devices (0) never
    usable = (free[:, :, None] * big).sum(axis=1)  # (k, U)
    fits = big.sum(axis=1) >= sh.count
    out: np.ndarray = sh.total * total - (_usable_weight(sh, cpu) * fits * usable).sum(axis=1)
    return out


def _fgd_costs(
    cpu_free: np.ndarray,
    gpu_free: np.ndarray,
    request: GpuRequest | None,
    cpu: int,
    workload: TaskTypes,
    distinct: bool = False,
    exact: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the cost of the task's best placement on that row (``inf`` where it
    does not fit) and the device it takes (a share: that device; whole devices or none: -1,
    the caller takes the lowest free ones). ``exact``: the cost is the least increase of
    expected fragmentation, the device the first that gives it; else the cost is minus the
    simulator's integer score of that increase (``_fgd_score``), the device the first with
    the best score. Elementwise per row, so any subset of rows gives the same values as all
    rows; the sums are integers (milli-GPU times popularity) until one division at the end.
    ``distinct``: the caller knows no two rows alike (nodes alike are then not looked for)."""
    gpu_free = np.asarray(gpu_free)
    cpu_now = np.asarray(cpu_free, dtype=np.int64)
    n = gpu_free.shape[0]
    cost = np.full(n, np.inf)
    device = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(_gpu_fit(cpu_now, gpu_free, request, cpu))  # only where it fits
    if not len(rows):
        return cost, device
    cpu_k, gpu_k = cpu_now[rows], gpu_free[rows]
    if len(rows) <= PLAIN:
        for i in rows.tolist():
            cost[i], device[i] = _fgd_one(int(cpu_now[i]), gpu_free[i].tolist(), request, cpu, workload, exact)
        return cost, device
    if len(rows) > DEDUPE and not distinct:
        # Nodes alike (same idle CPU, same device row) score alike: score each state once.
        key = np.concatenate([cpu_k[:, None], gpu_k.astype(np.int64)], axis=1)
        alike, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        if len(alike) * 2 <= len(rows):
            c, d = _fgd_rows(cpu_k[first], gpu_k[first], request, cpu, workload, exact)
            cost[rows] = c[inverse.reshape(-1)]
            device[rows] = d[inverse.reshape(-1)]
            return cost, device
    cost[rows], device[rows] = _fgd_rows(cpu_k, gpu_k, request, cpu, workload, exact)
    return cost, device


def _fgd_score(delta: np.ndarray, scale: float) -> np.ndarray:
    """The simulator's FGD node score (``fgd_score.go``) of increases of expected fragmentation
    given as ``delta`` (milli-GPU times the popularities' sum ``scale``), as float64: Go's
    ``int64(sigmoid((before - after) / 1000) * 100)``, 0..100, so increases within a few tens
    of milli-GPU score alike."""
    x = -(np.asarray(delta, dtype=np.int64) / scale) / 1000.0
    out: np.ndarray = np.floor(1.0 / (1.0 + np.exp(-x)) * 100.0)
    return out


def _fgd_rows(
    cpu_k: np.ndarray, gpu_k: np.ndarray, request: GpuRequest | None, cpu: int, workload: TaskTypes, exact: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``_fgd_costs`` of rows the task fits on."""
    sh = workload.shapes
    scale = _scale(workload)
    free = _free(gpu_k)
    before = _fragmentation(cpu_k, free, sh)
    none = np.full(len(cpu_k), -1, dtype=np.int64)
    if request is None or request.count == 0:
        increase = _fragmentation(cpu_k - cpu, free, sh) - before
        out: np.ndarray = increase / scale if exact else -_fgd_score(increase, scale)
        return out, none
    weight = _usable_weight(sh, cpu_k - cpu)  # (k, U)
    total = free.sum(axis=1)
    big = free[:, :, None] >= sh.milli  # (k, G, U)
    count = big.sum(axis=1)  # (k, U)
    usable = (free[:, :, None] * big).sum(axis=1)  # (k, U)
    if not request.shared:
        # k wholly free devices become 0: they leave every shape's count and usable GPU.
        k = request.count
        fits = count - k >= sh.count
        after = sh.total * (total - MILLI * k) - (weight * fits * (usable - MILLI * k)).sum(axis=1)
        return ((after - before) / scale if exact else -_fgd_score(after - before, scale)), none
    # A share: one candidate per device, whose free drops by r.
    r = request.milli
    left = free - r  # (k, G)
    big_after = left[:, :, None] >= sh.milli  # (k, G, U)
    count_after = count[:, None, :] - big + big_after
    usable_after = usable[:, None, :] - free[:, :, None] * big + left[:, :, None] * big_after
    used = ((count_after >= sh.count) * usable_after * weight[:, None, :]).sum(axis=2)  # (k, G)
    after = sh.total * (total - r)[:, None] - used
    fit = gpu_k >= r
    if exact:
        delta = np.where(fit, after - before[:, None], np.iinfo(np.int64).max)
        best = delta.argmin(axis=1)  # first minimum: lowest device index on ties
        return delta[np.arange(len(best)), best] / scale, best
    score = np.where(fit, _fgd_score(np.where(fit, after - before[:, None], 0), scale), -1.0)
    best = score.argmax(axis=1)  # first maximum: lowest device index on ties, as the simulator's loop
    return -score[np.arange(len(best)), best], best


def cpu_class(workload: TaskTypes, cpu: int) -> int:
    """How many of the workload's distinct GPU-type CPUs ``cpu`` milli-CPU holds: CPU values
    of one class weigh the types alike (``_plain_weights``), so score a node alike."""
    return bisect_right(workload.shapes.thresholds, cpu)


def _plain_weights(sh: _Shapes, cpu: int) -> tuple[int, ...]:
    """Per shape, the popularity of its types whose CPU ``cpu`` holds (``_usable_weight`` of
    one row)."""
    return sh.by_class[bisect_right(sh.thresholds, cpu)]


class PlainState:
    """One node state (idle milli-CPU ``cpu``, device row ``row``) before a placement, for
    scoring placements on it one at a time (``fgd_state``): the row sorted (for the fit
    test), its total free milli-GPU, per GPU shape (milli, count, devices with ``milli``
    free, their free GPU), its expected fragmentation times the popularities' sum, and the
    placements scored on it so far. It does not depend on the task, so a caller scoring a
    state for several kinds of task builds it once."""

    __slots__ = ("cpu", "row", "desc", "total", "shapes", "before", "scored")

    def __init__(self, cpu: int, row: list[int], workload: TaskTypes) -> None:
        sh = workload.shapes
        free = [v if v > 0 else 0 for v in row]
        total = sum(free)
        shapes: list[tuple[int, int, int, int]] = []
        used = 0
        for (m, c, _), w in zip(sh.plain, _plain_weights(sh, cpu), strict=True):
            fitting = usable = 0
            for v in free:
                if v >= m:
                    fitting += 1
                    usable += v
            if fitting >= c:
                used += w * usable
            shapes.append((m, c, fitting, usable))
        self.cpu = cpu
        self.row = row
        self.desc = sorted(row, reverse=True)
        self.total = total
        self.shapes = shapes
        self.before = sh.total * total - used
        self.scored: dict[tuple[int, int, int], tuple[float, int]] = {}


def fgd_state(state: PlainState, request: GpuRequest | None, cpu: int, workload: TaskTypes) -> tuple[float, int]:
    """``scores("fgd", ...)`` of one node in the state ``state``: (cost, device), ``(inf,
    -1)`` where the task does not fit. Where it fits, the result depends on the task's GPU
    request and on the CPU it leaves only through ``cpu_class``: tasks alike in those are
    scored once per state."""
    if state.cpu < cpu:
        return np.inf, -1
    if request is not None and request.count:
        m, k = request.milli, request.count
        if request.shared:
            k = 1
        if len(state.desc) < k or state.desc[k - 1] < m:  # fewer than k devices with m free
            return np.inf, -1
        key = (m, request.count, bisect_right(workload.shapes.thresholds, state.cpu - cpu))
    else:
        key = (0, 0, bisect_right(workload.shapes.thresholds, state.cpu - cpu))
    done = state.scored.get(key)
    if done is None:
        done = state.scored[key] = _fgd_one(state.cpu, state.row, request, cpu, workload, False, state)
    return done


def _fgd_one(
    cpu_now: int,
    row: list[int],
    request: GpuRequest | None,
    cpu: int,
    workload: TaskTypes,
    exact: bool,
    state: PlainState | None = None,
) -> tuple[float, int]:
    """``_fgd_rows`` of one node the task fits on, in plain Python: the same integer sums,
    so the same cost and device. ``state``: the node's ``PlainState``, if known."""
    sh = workload.shapes
    scale = _scale(workload)
    if state is None:
        state = PlainState(cpu_now, row, workload)
    total, shapes, before = state.total, state.shapes, state.before
    # per shape its types weigh anything in: milli, count, fitting, usable, weight after
    stats = [(m, c, f, u, w) for (m, c, f, u), w in zip(shapes, _plain_weights(sh, cpu_now - cpu), strict=True) if w]
    if request is None or request.count == 0:
        used = sum(w * u for _, c, f, u, w in stats if f >= c)
        return _fgd_cost(sh.total * total - used - before, scale, exact), -1
    if not request.shared:
        k = request.count
        used = sum(w * (u - MILLI * k) for _, c, f, u, w in stats if f - k >= c)
        return _fgd_cost(sh.total * (total - MILLI * k) - used - before, scale, exact), -1
    r = request.milli
    best: int | None = None
    best_device = -1
    deltas: list[int] = []
    devices: list[int] = []
    tried: set[int] = set()
    for g, v in enumerate(row):
        if v < r or v in tried:  # a device like one tried scores alike; the lower index wins
            continue
        tried.add(v)
        left = v - r
        used = 0
        for m, c, f, u, w in stats:
            if m <= left:  # the device serves the shape before and after: r less of it
                if f >= c:
                    used += w * (u - r)
            elif m <= v:  # it did and no longer does
                if f > c:
                    used += w * (u - v)
            elif f >= c:  # it never did
                used += w * u
        delta = sh.total * (total - r) - used - before
        deltas.append(delta)
        devices.append(g)
        if best is None or delta < best:
            best, best_device = delta, g
    if best is None:
        return np.inf, -1
    if exact:
        return best / scale, best_device
    top, first = -1.0, 0
    for delta, g in zip(deltas, devices, strict=True):  # devices in index order: the first with the best score
        score = _fgd_score_one(delta, scale)
        if score > top:
            top, first = score, g
    return -top, first


def _fgd_cost(delta: int, scale: float, exact: bool) -> float:
    """One placement's cost from its increase ``delta`` (times ``scale``), as ``_fgd_rows``."""
    return delta / scale if exact else -_fgd_score_one(delta, scale)


# How near an integer 100 sigmoid may fall before ``_fgd_score_one`` asks numpy: far more
# than the few units in the last place by which two exp implementations can differ.
_GUARD = 1e-9


def _fgd_score_one(delta: int, scale: float) -> float:
    """``_fgd_score`` of one increase, in plain Python: the same float operations, with
    ``math.exp`` for numpy's ``exp``. The two may differ in the last bits, which changes
    the floor only where 100 sigmoid lies within those bits of an integer; there (within
    ``_GUARD``; but for no increase, exactly 50) numpy computes it, so the result is
    ``_fgd_score``'s exactly."""
    if delta == 0:  # exp(0) is exactly 1 in every implementation: floor(0.5 * 100)
        return 50.0
    x = -(float(delta) / scale) / 1000.0
    if x < -700.0:  # exp overflows: numpy's inf gives 0
        return 0.0
    value = 1.0 / (1.0 + exp(-x)) * 100.0
    low = floor(value)
    if value - low < _GUARD or low + 1 - value < _GUARD:
        return float(_fgd_score(np.array([delta], dtype=np.int64), scale)[0])
    return float(low)


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


# The kinds of GPU task ``gpuclustering`` groups, as bits of a node's mask: bit 1 a share, bit
# 1+k k whole devices. A task without GPU is of no kind (the simulator's GPU affinity).
def kind_bit(request: GpuRequest | None) -> int:
    """The ``gpuclustering`` kind of a task, as a bit of a node's ``kinds`` mask (0: no GPU)."""
    if request is None or request.count == 0:
        return 0
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
    feasible: np.ndarray | None,
    request: GpuRequest | None,
    cpu: int,
    workload: TaskTypes,
    rng_key: int = 0,
    kinds: np.ndarray | None = None,
    distinct: bool = False,
    exact: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The policy's cost per node (lower is better; ``inf`` where infeasible or the task does
    not fit) and the device each node would give a share (-1: none, or whole devices).
    The cost is minus the simulator's integer node score (0..100, see the module's
    docstring); ``exact``: the exact value it rounds instead (FGD: the increase of expected
    fragmentation, with the device of the least increase; best-fit and dot-product: their
    sums). ``feasible`` None: every node. ``distinct``: no two rows are alike (a caller that
    keeps nodes' states apart: FGD then does not look for alike ones; the same results)."""
    gpu_free = np.asarray(gpu_free)
    n = gpu_free.shape[0]
    if policy == "fgd":  # infinite where the task does not fit
        cost, device = _fgd_costs(cpu_free, gpu_free, request, cpu, workload, distinct, exact)
        if feasible is None:
            return cost, device
        feasible = np.asarray(feasible, dtype=bool)
        return np.where(feasible, cost, np.inf), np.where(feasible, device, -1)
    ok = _gpu_fit(cpu_free, gpu_free, request, cpu)
    if feasible is not None:
        ok &= np.asarray(feasible, dtype=bool)
    cpu64 = np.asarray(cpu_free, dtype=np.int64)
    total = _free(gpu_free).sum(axis=1)
    want = 0 if request is None else request.total
    device = _best_fit_device(gpu_free, request)
    if policy == "bestfit":  # best_fit_score.go: the sum in its order, then int64((1 - sum) * 100)
        cost = (cpu64 - cpu) / MAX_SPEC_CPU * 0.5 + (total - want) / MAX_SPEC_GPU * 0.5
        if not exact:
            cost = -np.floor((1.0 - cost) * 100.0)
    elif policy == "dotproduct":  # dot_product_score.go (merge, max): int64(100 * (1 - dot / 2))
        cost = (cpu64 / MAX_SPEC_CPU) * (cpu / MAX_SPEC_CPU) + (total / MAX_SPEC_GPU) * (want / MAX_SPEC_GPU)
        if not exact:
            cost = -np.floor(100.0 * (1.0 - cost / 2.0))
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
    exact: bool = False,
) -> tuple[int, tuple[int, ...]]:
    """Where ``policy`` places a task of ``cpu`` milli-CPU and ``request`` (None: no GPU):
    (node row, devices), or (-1, ()) when it fits no feasible node. Ties: lowest row.
    ``exact``: by the exact costs, not the simulator's integer scores (``scores``)."""
    gpu_free = np.asarray(gpu_free)
    cost, device = scores(policy, cpu_free, gpu_free, feasible, request, cpu, workload, rng_key, kinds, exact=exact)
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
    return tuple(g for g, v in enumerate(free.tolist()) if v >= MILLI)[: request.count]


class Placer:
    """``choose`` over a sequence of placements, incrementally: the same decisions as calling
    ``choose`` on the current arrays each time, at the cost of the rows changed since a kind
    of task was last placed. Every policy but ``random`` scores a row from that row alone,
    so the scores of each kind of task (request and CPU) are kept and only the rows
    ``place``/``release`` changed are scored again (all of them once a quarter of the
    nodes changed). Owns copies of the arrays; ``cpu_free`` and ``gpu_free`` are current."""

    def __init__(
        self,
        policy: str,
        cpu_free: np.ndarray,
        gpu_free: np.ndarray,
        workload: TaskTypes,
        kinds: np.ndarray | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown GPU placement policy {policy!r} (one of {', '.join(POLICIES)})")
        self.policy = policy
        self.cpu_free = np.asarray(cpu_free, dtype=np.int64).copy()
        self.gpu_free = np.asarray(gpu_free, dtype=np.int32).copy()
        self.kinds = (inferred_kinds(self.gpu_free) if kinds is None else np.asarray(kinds, dtype=np.int64)).copy()
        self.workload = workload
        self._changes: list[int] = []
        # (milli, count, cpu) -> [cost, device, changes seen]
        self._kept: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray, list[int]]] = {}
        self._whole = max(1, self.cpu_free.shape[0] // 4)

    def set_workload(self, workload: TaskTypes) -> None:
        """A new target distribution: every kept score is dropped."""
        self.workload = workload
        self._kept.clear()

    def _costs(self, request: GpuRequest | None, cpu: int) -> tuple[np.ndarray, np.ndarray]:
        key = (0, 0, cpu) if request is None else (request.milli, request.count, cpu)
        kept = self._kept.get(key)
        n = self.cpu_free.shape[0]
        if kept is None or len(self._changes) - kept[2][0] >= self._whole:
            cost, device = scores(
                self.policy,
                self.cpu_free,
                self.gpu_free,
                np.ones(n, dtype=bool),
                request,
                cpu,
                self.workload,
                kinds=self.kinds,
            )
            self._kept[key] = (cost, device, [len(self._changes)])
            return cost, device
        cost, device, seen = kept
        if seen[0] < len(self._changes):
            rows = np.unique(np.array(self._changes[seen[0] :], dtype=np.int64))
            c, d = scores(
                self.policy,
                self.cpu_free[rows],
                self.gpu_free[rows],
                np.ones(len(rows), dtype=bool),
                request,
                cpu,
                self.workload,
                kinds=self.kinds[rows],
            )
            cost[rows] = c
            device[rows] = d
            seen[0] = len(self._changes)
        return cost, device

    def choose(
        self, request: GpuRequest | None, cpu: int, feasible: np.ndarray | None = None, rng_key: int = 0
    ) -> tuple[int, tuple[int, ...]]:
        """``choose(policy, cpu_free, gpu_free, feasible, request, cpu, workload, rng_key, kinds)``
        on the current arrays (``feasible`` None: every node)."""
        n = self.cpu_free.shape[0]
        ok = np.ones(n, dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
        if self.policy == "random":
            return choose("random", self.cpu_free, self.gpu_free, ok, request, cpu, self.workload, rng_key)
        cost, device = self._costs(request, cpu)
        if n == 0:
            return -1, NO_DEVICES
        masked = cost if feasible is None else np.where(ok, cost, np.inf)
        node = int(masked.argmin())
        if not np.isfinite(masked[node]):
            return -1, NO_DEVICES
        return node, devices_on(self.gpu_free[node], request, int(device[node]))

    def place(self, node: int, devices: tuple[int, ...], request: GpuRequest | None, cpu: int) -> None:
        """Take ``cpu`` and the request's share of ``devices`` on ``node``."""
        self.cpu_free[node] -= cpu
        if request is not None:
            for d in devices:
                self.gpu_free[node, d] -= request.milli
        self.kinds[node] |= kind_bit(request)
        self._changes.append(node)

    def release(self, node: int, devices: tuple[int, ...], request: GpuRequest | None, cpu: int) -> None:
        """Give back what ``place`` took (the node's kinds for ``gpuclustering`` are kept)."""
        self.cpu_free[node] += cpu
        if request is not None:
            for d in devices:
                self.gpu_free[node, d] += request.milli
        self._changes.append(node)
