"""binpack: prefer the node that the task fills most (pack, leave whole nodes free).

Where it sits: a scheduler plugin (see ``plugins.base``); a node score.
For each configured resource the task asks for, the node's use after placing
it over the node's allocatable, weighted; averaged by weight, scaled to
0..100 and multiplied by ``binpack.weight``. A node the task would overfill
scores 0. Arguments (Volcano's): ``binpack.weight`` (1), ``binpack.cpu`` (1),
``binpack.memory`` (1), ``binpack.resources`` (comma-separated extra
resources, e.g. ``nvidia.com/gpu``) and ``binpack.resources.<name>`` (1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from handlers.scheduler.api import NodeArrays, TaskInfo
from handlers.scheduler.conf import ConfError, PluginOption, number
from handlers.scheduler.hooks import Rows, Score
from handlers.scheduler.plugins.base import Plugin

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

MAX_NODE_SCORE = 100.0


class Binpack(Plugin):
    name = "binpack"

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        args = self.arguments
        self.weight = number(args, "binpack.weight", 1)
        weights = {"cpu": number(args, "binpack.cpu", 1), "memory": number(args, "binpack.memory", 1)}
        extra = args.get("binpack.resources", "")
        if not isinstance(extra, str):
            raise ConfError(f"binpack.resources must be a comma-separated string, got {extra!r}")
        for name in (part.strip() for part in extra.split(",")):
            if name:
                weights[name] = number(args, f"binpack.resources.{name}", 1)
        for name, value in weights.items():
            if value < 0:
                raise ConfError(f"binpack weight of {name} must not be negative")
        self.weights = weights

    def open(self, ssn: Session) -> None:
        nodes = ssn.nodes
        self.columns = [(nodes.column(d), w) for d, w in sorted(self.weights.items()) if w > 0 and nodes.column(d) >= 0]
        if self.weight > 0 and self.columns:
            self.register(ssn.hooks.node_order, self.score)

    def score(self, task: TaskInfo, nodes: NodeArrays, rows: Rows) -> Score:
        if isinstance(rows, int):
            return self._score_one(task, nodes, rows)
        vec = task.vec
        asked = [(j, w) for j, w in self.columns if vec[j] > 0]
        n = len(nodes) if rows is None else len(rows)
        if not asked:
            return np.zeros(n)
        # The asked columns at once; per node the same arithmetic as ``_score_one``, the
        # columns' terms added left to right (a sum over so few columns is sequential).
        cols = [j for j, _ in asked]
        weights = np.array([w for _, w in asked], dtype=float)
        if rows is None:
            cap, final = nodes.alloc[:, cols], nodes.used[:, cols] + vec[cols]
        else:
            at = rows[:, None]
            cap, final = nodes.alloc[at, cols], nodes.used[at, cols] + vec[cols]
        over = (final > cap).any(axis=1)
        terms = np.where(cap > 0, final * weights / np.maximum(cap, 1), 0.0)  # never divides by 0
        total = terms[:, 0] + terms[:, 1] if len(cols) == 2 else terms.sum(axis=1)
        total = total / float(weights.sum()) * MAX_NODE_SCORE * self.weight
        total[over] = 0.0
        return total

    def _score_one(self, task: TaskInfo, nodes: NodeArrays, i: int) -> float:
        """``score`` for node ``i`` alone, in plain Python (the same arithmetic)."""
        alloc = nodes.alloc[i].tolist()
        used = nodes.used[i].tolist()
        total = 0.0
        weight_sum = 0.0
        over = False
        for j, w in self.columns:
            request = int(task.vec[j])
            if request <= 0:
                continue
            cap = alloc[j]
            final = used[j] + request
            over = over or final > cap
            total += final * w / max(cap, 1) if cap > 0 else 0.0
            weight_sum += w
        if weight_sum == 0:
            return total
        if over:
            return 0.0
        return total / weight_sum * MAX_NODE_SCORE * self.weight
