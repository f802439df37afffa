"""nodeorder: kube-scheduler's node scores, weighted (least/most requested, balanced, affinity, taints).

Where it sits: a scheduler plugin (see ``plugins.base``); a node score, the
sum of:

- ``leastrequested.weight`` (1) x least requested: free share of cpu and
  memory after placing the task, 0..100 — spreads;
- ``mostrequested.weight`` (0) x most requested: used share, 0..100 — packs;
- ``balancedresource.weight`` (1) x balanced allocation: 100 x (1 - standard
  deviation of the cpu and memory fractions);
- ``nodeaffinity.weight`` (2) x preferred node affinity: matched term
  weights, normalised to 0..100 over the nodes;
- ``tainttoleration.weight`` (3) x PreferNoSchedule taints the pod does not
  tolerate, fewest best, normalised to 0..100.

- ``podaffinity.weight`` (2) x preferred inter-pod affinity and
  anti-affinity: the weights of the pod's preferred terms times the pods
  they match in each node's topology domains, plus those of placed pods'
  preferred terms matching the pod, normalised to 0..100 over the nodes
  compared (``predicates_pods``; added when the session looks for a node,
  since it changes with every pod placed).

``imagelocality.weight`` is accepted and has no effect (no image data
reaches the scheduler).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypeAlias

import msgspec
import numpy as np

from handlers.scheduler.api import NodeArrays, TaskInfo
from handlers.scheduler.conf import PluginOption, number
from handlers.scheduler.hooks import Rows, Score
from handlers.scheduler.plugins.base import Plugin
from handlers.scheduler.plugins.matching import term_matches, untolerated
from handlers.scheduler.plugins.predicates_pods import open_rules
from schemas.resources import NodeSelectorTerm

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

MAX = 100
PREFER = frozenset({"PreferNoSchedule"})


def _columns_sum(shares: np.ndarray) -> np.ndarray:
    """Per node, the cpu share plus the memory share (far cheaper than ``sum(axis=1)`` on two columns)."""
    return shares[:, 0] + shares[:, 1] if shares.shape[1] == 2 else shares[:, 0]


# What a task's static scores depend on: its constraints' signature and the two weights.
StaticKey: TypeAlias = tuple[bytes, float, float]


class _StaticScores:
    """The static scores (preferred affinity, PreferNoSchedule taints) of one set of nodes, kept
    from session to session while the session's node lists are the very same objects: the
    snapshot builds names, labels and taints again whenever a node is added, changed or removed
    (``node_epoch``), so the same lists mean the same nodes. Only the ``KEPT`` kinds of pod
    asked for most recently are kept: kinds that are live, not history (sessions that place
    nothing, between those that do, leave them be). The nodes' cpu and memory allocatable
    the scores read are kept with them."""

    KEPT = 64

    def __init__(self, nodes: NodeArrays) -> None:
        self.lists = (nodes.names, nodes.labels, nodes.taints)
        self.current: dict[StaticKey, np.ndarray] = {}  # the least recently asked for first
        # (cpu, memory columns) -> their allocatable, floored at 1, > 0, and whether all are.
        self.capacity: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = {}
        # The nodes with PreferNoSchedule taints, and those taints (most nodes have none).
        self.prefer = [
            (i, [t for t in node_taints if t.effect == "PreferNoSchedule"])
            for i, node_taints in enumerate(nodes.taints)
            if any(t.effect == "PreferNoSchedule" for t in node_taints)
        ]

    def same_nodes(self, nodes: NodeArrays) -> bool:
        names, labels, taints = self.lists
        return names is nodes.names and labels is nodes.labels and taints is nodes.taints

    def get(self, key: StaticKey) -> np.ndarray | None:
        found = self.current.pop(key, None)
        if found is not None:
            self.current[key] = found  # now the most recently asked for
        return found

    def put(self, key: StaticKey, scores: np.ndarray) -> None:
        scores.flags.writeable = False  # shared with later sessions: never changed in place
        current = self.current
        current[key] = scores
        if len(current) > self.KEPT:
            del current[next(iter(current))]


_SHARED: list[_StaticScores] = []  # for the latest set of nodes a session opened on, at most one


def _static_scores(nodes: NodeArrays) -> _StaticScores:
    if not (_SHARED and _SHARED[0].same_nodes(nodes)):
        _SHARED[:] = [_StaticScores(nodes)]
    return _SHARED[0]


class NodeOrder(Plugin):
    name = "nodeorder"
    # Per node, the cpu and memory allocatable, the same floored at 1, whether it is > 0
    # (set at open; shared with later sessions on the same nodes, read only).
    cap: np.ndarray
    cap1: np.ndarray
    has: np.ndarray
    sized: bool

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        args = self.arguments
        self.least = number(args, "leastrequested.weight", 1)
        self.most = number(args, "mostrequested.weight", 0)
        self.balanced = number(args, "balancedresource.weight", 1)
        self.affinity = number(args, "nodeaffinity.weight", 2)
        self.taints = number(args, "tainttoleration.weight", 3)
        self.pod_affinity = number(args, "podaffinity.weight", 2)
        number(args, "imagelocality.weight", 1)

    def open(self, ssn: Session) -> None:
        nodes = ssn.nodes
        self.cpu = nodes.column("cpu")
        self.memory = nodes.column("memory")
        self.static = _static_scores(nodes)
        self.prefer = self.static.prefer
        # What the array scores read of the nodes' allocatable (fixed for the session),
        # cpu then memory: the columns, the capacity, the capacity floored at 1, capacity > 0.
        cols = [j for j in (self.cpu, self.memory) if j >= 0]
        adjacent = len(cols) == 2 and cols[1] == cols[0] + 1
        self.cols = slice(cols[0], cols[0] + 2) if adjacent else cols
        self.count = len(cols)
        # Allocatable is that of the same nodes while the node lists are the same: kept with the
        # static scores.
        key = tuple(cols)
        kept = self.static.capacity.get(key)
        if kept is None:
            cap = nodes.alloc[:, self.cols].copy()  # not a view of this session's arrays
            arrays = (cap, np.maximum(cap, 1), cap > 0)
            for array in arrays:
                array.flags.writeable = False  # shared with later sessions: never changed in place
            kept = self.static.capacity[key] = (*arrays, bool(arrays[2].all()))
        # sized: every node has some cpu and memory
        self.cap, self.cap1, self.has, self.sized = kept
        self.register(ssn.hooks.node_order, self.score)
        if self.pod_affinity and ssn.state.pod_affinity_pods and self.option.switches.get("node_order", True):
            rules, made = open_rules(ssn)
            rules.weight = self.pod_affinity
            if made:  # the rules count what the session places: one listener for them
                self.on_allocate, self.on_deallocate = rules.allocated, rules.deallocated

    def _static(self, task: TaskInfo, nodes: NodeArrays) -> np.ndarray:
        key: StaticKey = (task.signature, self.affinity, self.taints)
        cached = self.static.get(key)
        if cached is not None:
            return cached
        n = len(nodes)
        total = np.zeros(n)
        record = task.record
        node_affinity = record.affinity.node_affinity if record.affinity else None
        preferred = node_affinity.preferred_during_scheduling_ignored_during_execution if node_affinity else []
        if self.affinity and preferred:
            raw = np.zeros(n)
            for item in preferred:
                weight = float(item.get("weight", 0))
                term = msgspec.convert(item.get("preference", {}), NodeSelectorTerm)
                for i in range(n):
                    if term_matches(term, nodes.labels[i], nodes.names[i]):
                        raw[i] += weight
            if raw.max() > 0:
                total += self.affinity * (raw * MAX // raw.max())
        if self.taints:
            counts = np.zeros(n)
            for i, prefer in self.prefer:
                left = list(prefer)
                while left:
                    taint = untolerated(left, record.tolerations, PREFER)
                    if taint is None:
                        break
                    counts[i] += 1
                    left.remove(taint)
            worst = counts.max() if n else 0
            scores = MAX - counts * MAX // worst if worst > 0 else np.full(n, float(MAX))
            total += self.taints * scores
        self.static.put(key, total)
        return total

    def score(self, task: TaskInfo, nodes: NodeArrays, rows: Rows) -> Score:
        static = self._static(task, nodes)
        if isinstance(rows, int):
            return self._score_one(task, nodes, rows, float(static[rows]))
        count = self.count
        if rows is None:
            total, cap, cap1, has = static, self.cap, self.cap1, self.has
            used = nodes.used[:, self.cols]
        else:
            total, cap, cap1 = static[rows], self.cap[rows], self.cap1[rows]
            # Read only when some node lacks cpu or memory: not cut down to the rows otherwise.
            has = self.has if self.sized else self.has[rows]
            # Rows by columns in one indexing (the columns a slice when adjacent, as usual).
            used = nodes.used[rows, self.cols] if isinstance(self.cols, slice) else nodes.used[rows][:, self.cols]
        if not count:
            return total.copy()
        # One column per resource (cpu, memory); per node, the same arithmetic as ``_score_one``.
        requested = used + task.vec[self.cols]
        if self.least:
            free = cap - requested
            fits = free >= 0 if self.sized else has & (free >= 0)
            least = np.where(fits, free * MAX // cap1, 0)
            total = total + self.least * (_columns_sum(least) // count)
        if self.most:
            positive = requested >= 0 if self.sized else has & (requested >= 0)
            share = np.where(positive, requested * MAX // cap1, 0)
            most = np.where(requested <= cap, share, 0)
            total = total + self.most * (_columns_sum(most) // count)
        if self.balanced:
            if count == 2:
                fractions = np.minimum(requested / cap1, 1.0)
                if not self.sized:
                    fractions = np.where(has, fractions, 0.0)
                std = np.abs(fractions[:, 0] - fractions[:, 1]) / 2
                total = total + self.balanced * np.floor((1 - std) * MAX)
            else:
                total = total + self.balanced * math.floor(MAX)
        return total if total is not static else total.copy()

    def _score_one(self, task: TaskInfo, nodes: NodeArrays, i: int, static: float) -> float:
        """``score`` for node ``i`` alone, in plain Python (the same arithmetic)."""
        alloc = nodes.alloc[i].tolist()
        used = nodes.used[i].tolist()
        total = static
        fractions = []
        least = most = 0
        count = 0
        for j in (self.cpu, self.memory):
            if j < 0:
                continue
            cap = alloc[j]
            requested = used[j] + int(task.vec[j])
            count += 1
            if self.least:
                free = cap - requested
                least += free * MAX // cap if cap > 0 and free >= 0 else 0
            if self.most:
                most += requested * MAX // cap if cap > 0 and 0 <= requested <= cap else 0
            if self.balanced:
                fractions.append(min(requested / max(cap, 1), 1.0) if cap > 0 else 0.0)
        if count:
            if self.least:
                total = total + self.least * (least // count)
            if self.most:
                total = total + self.most * (most // count)
            if self.balanced and fractions:
                std = abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
                total = total + self.balanced * math.floor((1 - std) * MAX)
        return total
