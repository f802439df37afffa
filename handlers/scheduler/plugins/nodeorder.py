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

``podaffinity.weight`` and ``imagelocality.weight`` are accepted and have no
effect (no pod affinity or image data reaches the scheduler).
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from handlers.scheduler.conf import number
from handlers.scheduler.plugins.base import Plugin
from handlers.scheduler.plugins.matching import term_matches, untolerated
from schemas.resources import NodeSelectorTerm

MAX = 100
PREFER = frozenset({"PreferNoSchedule"})


def _int_share(free: np.ndarray, cap: np.ndarray) -> np.ndarray:
    return np.where((cap > 0) & (free >= 0), free * MAX // np.maximum(cap, 1), 0)


class NodeOrder(Plugin):
    name = "nodeorder"

    def __init__(self, option, tier) -> None:
        super().__init__(option, tier)
        args = self.arguments
        self.least = number(args, "leastrequested.weight", 1)
        self.most = number(args, "mostrequested.weight", 0)
        self.balanced = number(args, "balancedresource.weight", 1)
        self.affinity = number(args, "nodeaffinity.weight", 2)
        self.taints = number(args, "tainttoleration.weight", 3)
        number(args, "podaffinity.weight", 2)
        number(args, "imagelocality.weight", 1)

    def open(self, ssn) -> None:
        self.cpu = ssn.nodes.column("cpu")
        self.memory = ssn.nodes.column("memory")
        self.static: dict[bytes, np.ndarray] = {}
        self.register(ssn, "node_order", self.score)

    def _static(self, task, nodes) -> np.ndarray:
        cached = self.static.get(task.signature)
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
            for i in range(n):
                left = [t for t in nodes.taints[i] if t.effect == "PreferNoSchedule"]
                while left:
                    taint = untolerated(left, record.tolerations, PREFER)
                    if taint is None:
                        break
                    counts[i] += 1
                    left.remove(taint)
            worst = counts.max() if n else 0
            scores = MAX - counts * MAX // worst if worst > 0 else np.full(n, float(MAX))
            total += self.taints * scores
        self.static[task.signature] = total
        return total

    def score(self, task, nodes, rows):
        static = self._static(task, nodes)
        if isinstance(rows, int):
            return self._score_one(task, nodes, rows, float(static[rows]))
        total = static.copy() if rows is None else static[rows]
        alloc = nodes.alloc if rows is None else nodes.alloc[rows]
        used = nodes.used if rows is None else nodes.used[rows]
        fractions = []
        least = most = 0
        count = 0
        for j in (self.cpu, self.memory):
            if j < 0:
                continue
            cap = alloc[:, j]
            requested = used[:, j] + task.vec[j]
            count += 1
            if self.least:
                least = least + _int_share(cap - requested, cap)
            if self.most:
                most = most + np.where(requested <= cap, _int_share(requested, cap), 0)
            if self.balanced:
                with np.errstate(divide="ignore", invalid="ignore"):
                    fractions.append(np.where(cap > 0, np.minimum(requested / np.maximum(cap, 1), 1.0), 0.0))
        if count:
            if self.least:
                total = total + self.least * (least // count)
            if self.most:
                total = total + self.most * (most // count)
            if self.balanced and fractions:
                std = np.abs(fractions[0] - fractions[1]) / 2 if len(fractions) == 2 else 0.0
                total = total + self.balanced * np.floor((1 - std) * MAX)
        return total

    def _score_one(self, task, nodes, i: int, static: float) -> float:
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
