"""Placement of one kind of task: which nodes it fits and which is best, kept current.

Where it sits: used by the allocate, backfill, preempt, reclaim and reserve
actions through ``placement_for``. Tasks with the same requests and the same
placement constraints (typically the pods of one task role, and often of many
jobs) share one ``Placement`` per session: predicates (cached per constraint
signature by the session), the resource fit against idle and releasing
resources and the node scores are computed once over all nodes as arrays.

Afterwards a placement only catches up with the rows the session changed
since it last looked (``NodeArrays.changes``): the distinct changed rows that
pass the predicates are fitted and scored again in one array call of every
scoring plugin (``score(task, nodes, rows)``), or the whole column is when
that is most of the nodes. A row's score depends only on the row itself and
on per-task data fixed for the session, so the arrays after a catch-up are
exactly those a new ``Placement`` would build on the same nodes; the cost of
a catch-up follows the rows changed, not how many kinds of task there are.

A placement is carried on to later sessions on the same nodes (``Carried``,
kept with the node arrays between sessions) when what it reads of a session
is the node arrays alone: no inter-pod rules, and the node scores and
predicates only of ``nodeorder``, ``binpack`` and ``predicates`` under the
same conf, which score a row from the row itself and the task. A later
session takes it up when the predicates still let the same nodes through,
and it catches up first with the rows that may differ from the arrays it
last read: those the session it was last used in changed (``detach``), those
the log changed since that session opened (``ClusterState.node_touched``),
and those changed in this session so far; the same arithmetic as ever on
those rows, so its arrays are those a new ``Placement`` would build.

The best node is the highest score among nodes the task fits on idle
resources (allocate), else among nodes it fits counting resources being
released (pipeline); equal scores go to the node first by name.

Inter-pod affinity (``plugins.predicates_pods``) depends on where the
session put other pods, and on the task's own labels, so it stays out of the
cached arrays: when the session has such rules and they concern the task in
hand, ``best`` takes the nodes they refuse out and adds their preferred
scores, normalised over the nodes being compared, at the moment it is asked.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from handlers.scheduler.api import RequestsKey, TaskInfo
from handlers.scheduler.devices import GpuRequest
from handlers.scheduler.devices import fits as device_fits
from handlers.scheduler.hooks import Refusal
from handlers.scheduler.plugins.predicates_pods import normalised, rules_of
from handlers.scheduler.snapshot import _NodeCache

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

# What tasks share one placement by: their requests, their constraints' signature, pipelining.
PlacementKey: TypeAlias = tuple[RequestsKey, bytes, bool]

NEG = -np.inf
# Catch up row by row in plain Python up to this many changes, in one array call beyond
# (a row in plain Python costs about a sixth of the dozens of array operations of a call).
FEW = 6
# Catch up by recomputing the whole column once there are this many changes per node.
WHOLE = 0.25


class Placement:
    # Per node row: whether the task fits on idle / on future resources (and passes the
    # predicates), and its score where it fits so, -inf elsewhere. Set by ``_column``.
    fit_idle: np.ndarray
    fit_future: np.ndarray
    on_idle: np.ndarray
    on_future: np.ndarray

    def __init__(self, ssn: Session, task: TaskInfo, *, pipeline: bool = True) -> None:
        self.ssn = ssn
        self.task = task
        self.current = task  # the task ``best`` is asked for (``placement_for`` sets it)
        nodes = ssn.nodes
        self.synced = len(nodes.changes)
        self.ok, _ = ssn.static_filter(task)
        self.rules = rules_of(ssn)
        if self.rules is not None:
            self.ok = self.rules.pure[task.signature][0]  # the predicates alone: inter-pod rules change
        self.nz = task.nz
        self.need = task.vec[task.nz]
        self.pairs: list[tuple[int, int]] = list(zip(task.nz.tolist(), self.need.tolist(), strict=True))
        self.pipeline = pipeline
        # What it asks of GPU devices: a share fits one device, never the sum of several.
        self.gpu = task.gpu
        self.whole = max(1, int(len(nodes) * WHOLE))
        # Carried on (``Carried``): the node arrays' log sequence as the session it was last
        # used in opened, and, once that session is over, the rows it had read changed in it.
        self.open_seq = -1
        self.dirty: set[int] = set()
        self._column()

    def detach(self) -> None:
        """The session it was used in is over: keep the rows that session changed that this
        placement has read (its arrays differ there from the node arrays at that open)."""
        self.dirty = set(self.ssn.nodes.changes[: self.synced])
        del self.ssn  # the session is not kept alive by what is carried on

    def adopt(self, ssn: Session, task: TaskInfo, cache: _NodeCache) -> bool:
        """Take this placement up in ``ssn`` (the node arrays of ``cache``); False when the
        predicates let other nodes through now (then a new placement is built)."""
        if hasattr(self, "ssn"):  # that session was never closed
            self.detach()
        ok, _ = ssn.static_filter(task)
        if ok is not self.ok and not np.array_equal(ok, self.ok):  # the same kept verdict, or equal
            return False
        rows = self.dirty
        self.dirty = set()
        # Rows the log changed since the session it was last used in opened, most recent first.
        index, open_seq, whole = cache.index, self.open_seq, self.whole
        for name, seq in reversed(ssn.state.node_touched.items()):
            if seq <= open_seq or len(rows) >= whole:
                break
            rows.add(index[name])
        self.ssn = ssn
        self.task = self.current = task
        self.open_seq = cache.seq
        changes = ssn.nodes.changes
        rows.update(changes)
        self.synced = len(changes)
        if len(rows) >= whole:
            self._column()
        elif len(rows) <= FEW:
            for i in sorted(rows):
                if self.ok[i]:
                    self._row(i)
        else:
            at = np.array(sorted(rows), dtype=np.intp)
            at = at[self.ok[at]]
            if len(at):
                self._rows(at)
        return True

    def _fits(self, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Whether the task fits each row on idle and on future resources (rows ``None``: all)."""
        nodes = self.ssn.nodes
        nz, need = self.nz, self.need
        if rows is None:
            idle, future = nodes.idle[:, nz], nodes.future[:, nz] if self.pipeline else None
        else:
            at = rows[:, None]  # rows by columns in one indexing
            idle, future = nodes.idle[at, nz], nodes.future[at, nz] if self.pipeline else None
        fit_idle = (idle >= need).all(axis=1)
        fit_future = (future >= need).all(axis=1) if future is not None else np.zeros(len(fit_idle), dtype=bool)
        if self.gpu is not None:
            devices = self.ssn.devices
            if rows is None:
                fit_idle &= device_fits(devices.gpu_free, devices.mem_free, self.gpu)
                if future is not None:
                    fit_future &= device_fits(devices.future, devices.mem_future, self.gpu)
            else:
                fit_idle &= _rows_fit(devices.gpu_free, devices.mem_free, rows, self.gpu)
                if future is not None:
                    fit_future &= _rows_fit(devices.future, devices.mem_future, rows, self.gpu)
        return fit_idle, fit_future

    def _column(self) -> None:
        """Fit and score every node."""
        ok = self.ok
        fit_idle, fit_future = self._fits(None)
        self.fit_idle = ok & fit_idle
        self.fit_future = ok & fit_future
        scores = self.ssn.node_scores(self.task)
        # Scores where the task fits, -inf elsewhere: the best node is one argmax.
        self.on_idle = np.where(self.fit_idle, scores, NEG)
        self.on_future = np.where(self.fit_future & ~self.fit_idle, scores, NEG)

    def best(self) -> tuple[str, int] | None:
        if not len(self.on_idle):
            return None  # a cluster without nodes: nowhere to go
        self.sync()
        if self.rules is not None:
            verdict = self.rules.judge(self.current)
            if verdict is not None:
                return self._best_judged(verdict[1], verdict[2], self.rules.weight)
        i = int(self.on_idle.argmax())
        if self.on_idle[i] > NEG:
            return "allocate", i
        if self.pipeline:
            i = int(self.on_future.argmax())
            if self.on_future[i] > NEG:
                return "pipeline", i
        return None

    def _best_judged(self, allowed: np.ndarray | None, raw: np.ndarray | None, weight: float) -> tuple[str, int] | None:
        """``best`` with the inter-pod rules: refused nodes out, preferred scores added."""
        on_idle, on_future = self.on_idle, self.on_future
        if allowed is not None:
            on_idle = np.where(allowed, on_idle, NEG)
            on_future = np.where(allowed, on_future, NEG)
        i = _best_fitting(on_idle, raw, weight)
        if i is not None:
            return "allocate", i
        if self.pipeline:
            i = _best_fitting(on_future, raw, weight)
            if i is not None:
                return "pipeline", i
        return None

    def sync(self) -> None:
        """Catch up with the rows changed since this placement last looked."""
        changes = self.ssn.nodes.changes
        end = len(changes)
        if self.synced == end:
            return
        if end - self.synced <= FEW:
            # Typically the row the previous task of this kind went to, or a few: plain
            # Python on a few rows costs less than the dozens of array operations of a call.
            few = changes[self.synced :]
            self.synced = end
            for i in sorted(set(few)) if len(few) > 1 else few:
                if self.ok[i]:
                    self._row(i)
            return
        if end - self.synced >= self.whole:
            # So many changes that sorting them out would cost what scoring every node costs.
            self.synced = end
            self._column()
            return
        rows = np.array(sorted(set(changes[self.synced :])), dtype=np.intp)  # sorted, each row once
        self.synced = end
        rows = rows[self.ok[rows]]  # rows the predicates refuse stay out for the session
        if len(rows):
            self._rows(rows)

    def _row(self, i: int) -> None:
        """Fit and score row ``i`` alone (it passes the predicates), the same arithmetic on scalars."""
        nodes = self.ssn.nodes
        pairs = self.pairs
        fit_idle = _covers(nodes.idle[i].tolist(), pairs)
        fit_future = self.pipeline and _covers(nodes.future[i].tolist(), pairs)
        if self.gpu is not None and (fit_idle or fit_future):
            devices = self.ssn.devices
            fit_idle = fit_idle and _row_fits(devices.gpu_free[i], devices.mem_free[i], self.gpu)
            fit_future = fit_future and _row_fits(devices.future[i], devices.mem_future[i], self.gpu)
        self.fit_idle[i] = fit_idle
        self.fit_future[i] = fit_future
        if fit_idle or fit_future:
            score = self.ssn.hooks.node_order.sum(self.task, nodes, i)
            self.on_idle[i] = score if fit_idle else NEG
            self.on_future[i] = NEG if fit_idle else score
        else:
            self.on_idle[i] = self.on_future[i] = NEG

    def _rows(self, rows: np.ndarray) -> None:
        """Fit and score ``rows`` (sorted, distinct, all passing the predicates) in one call."""
        fit_idle, fit_future = self._fits(rows)
        scores = self.ssn.node_scores(self.task, rows)
        self.fit_idle[rows] = fit_idle
        self.fit_future[rows] = fit_future
        self.on_idle[rows] = np.where(fit_idle, scores, NEG)
        self.on_future[rows] = np.where(fit_future & ~fit_idle, scores, NEG)


def _rows_fit(free: np.ndarray, mem: np.ndarray, rows: np.ndarray, request: GpuRequest) -> np.ndarray:
    """``devices.fits`` of ``rows`` of ``free`` and ``mem``, the memory read only when asked for."""
    if not request.memory:
        if free.shape[1] == 0:
            return np.zeros(len(rows), dtype=bool)
        ok = free[rows] >= request.milli
        return np.asarray(ok.any(axis=1)) if request.count == 1 else np.asarray(ok.sum(axis=1) >= request.count)
    return device_fits(free[rows], mem[rows], request)


def _covers(values: list[int], pairs: list[tuple[int, int]]) -> bool:
    """Whether ``values[j] >= need`` for every ``(j, need)`` of ``pairs``."""
    for j, need in pairs:
        if values[j] < need:
            return False
    return True


def _row_fits(free: np.ndarray, mem: np.ndarray, request: GpuRequest) -> bool:
    """``devices.fits`` for one node's device row, on its values in plain Python."""
    if not free.shape[0]:
        return False
    milli, memory = request.milli, request.memory
    if memory:
        room = mem.tolist()
        fitting = sum(1 for g, v in enumerate(free.tolist()) if v >= milli and room[g] >= memory)
    else:
        fitting = sum(1 for v in free.tolist() if v >= milli)
    return fitting >= request.count if request.count > 1 else fitting > 0


def placement_for(ssn: Session, task: TaskInfo, *, pipeline: bool = True) -> Placement:
    """The session's shared placement for tasks like ``task`` (carried on from an earlier
    session when it can be, see ``Carried``)."""
    key: PlacementKey = (task.role_key[1], task.signature, pipeline)
    place = ssn.placements.get(key)
    if place is None:
        carried = Carried.of(ssn)
        if carried is None:
            place = Placement(ssn, task, pipeline=pipeline)
        else:
            place = carried.take(ssn, key, task, pipeline)
        ssn.placements[key] = place
    place.current = task
    return place


# Plugins whose node scores and predicates read of a session only the node arrays (a row's
# score from the row and the task; the predicates from the nodes' names, labels, taints and
# unschedulable flags, and the RuntimeClasses, checked again by ``Placement.adopt``).
ROW_PURE_SCORES = frozenset({"nodeorder", "binpack"})
ROW_PURE_PREDICATES = frozenset({"predicates"})


class Carried:
    """Placements carried on between sessions on the same node arrays and conf, kept with the
    node arrays (``snapshot._NodeCache.carried``), the most recently used last, at most ``KEPT``.

    The predicates' verdicts are kept with them (``static``, per constraint signature, at
    most ``KEPT`` signatures): under the same conf and with only ``predicates`` filtering,
    they read the nodes' names, labels, taints and unschedulable flags, which these node
    arrays keep until a node changes (then new arrays come with nothing carried), the
    task's constraints, which its signature stands for, and the RuntimeClasses, which are
    compared at each use (``classes``): a change drops every kept verdict."""

    KEPT = 256

    __slots__ = ("conf", "places", "static", "classes")

    def __init__(self, conf: object) -> None:
        self.conf = conf
        self.places: OrderedDict[PlacementKey, Placement] = OrderedDict()
        self.static: dict[bytes, tuple[np.ndarray, list[Refusal]]] = {}
        self.classes: dict[str, object] = {}

    def predicates(self, ssn: Session, task: TaskInfo) -> tuple[np.ndarray, list[Refusal]]:
        """What ``ssn``'s predicates make of ``task``'s constraints on these nodes: the verdict
        kept from an earlier session (read only, like every static filter), else evaluated now
        and kept."""
        classes = ssn.state.runtime_classes
        static = self.static
        if classes != self.classes:
            static.clear()
            self.classes = dict(classes)
        hit = static.get(task.signature)
        if hit is None:
            if len(static) >= self.KEPT:
                static.clear()
            nodes = ssn.nodes
            hit = static[task.signature] = ssn.hooks.predicate.filter(len(nodes), task, nodes)
        return hit

    @staticmethod
    def of(ssn: Session) -> Carried | None:
        """The session's carried placements, None when its placements cannot be carried."""
        found = ssn.carried
        if found is not False:
            return found
        carried = None
        cache = ssn.state.node_cache
        hooks = ssn.hooks
        if (
            isinstance(cache, _NodeCache)
            and cache.names is ssn.nodes.names  # the arrays this session opened on
            and rules_of(ssn) is None
            and hooks.node_order.plugins() <= ROW_PURE_SCORES
            and hooks.predicate.plugins() <= ROW_PURE_PREDICATES
        ):
            kept = cache.carried
            if isinstance(kept, Carried) and kept.conf is ssn.conf:
                carried = kept
            else:
                carried = cache.carried = Carried(ssn.conf)
        ssn.carried = carried
        return carried

    def take(self, ssn: Session, key: PlacementKey, task: TaskInfo, pipeline: bool) -> Placement:
        cache = ssn.state.node_cache
        assert isinstance(cache, _NodeCache)
        places = self.places
        place = places.pop(key, None)
        if place is None or not place.adopt(ssn, task, cache):
            place = Placement(ssn, task, pipeline=pipeline)
            place.open_seq = cache.seq
        places[key] = place
        if len(places) > self.KEPT:
            places.popitem(last=False)
        return place


def _best_fitting(scores: np.ndarray, raw: np.ndarray | None, weight: float) -> int | None:
    """The node with the highest score among those that fit (score above ``NEG``), the inter-pod
    preferred scores ``raw`` (normalised over the fitting nodes) added at ``weight``; None if none fits."""
    fits = scores > NEG
    if raw is not None:
        scores = scores + weight * normalised(raw, fits)
    i = int(scores.argmax())
    return i if fits[i] else None
