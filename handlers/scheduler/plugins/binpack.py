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
        alloc = nodes.alloc if rows is None else nodes.alloc[rows]
        used = nodes.used if rows is None else nodes.used[rows]
        n = alloc.shape[0]
        total = np.zeros(n)
        weight_sum = 0.0
        over = np.zeros(n, dtype=bool)
        for j, w in self.columns:
            request = task.vec[j]
            if request <= 0:
                continue
            cap = alloc[:, j]
            final = used[:, j] + request
            over |= final > cap
            total += np.where(cap > 0, final * w / np.maximum(cap, 1), 0.0)  # never divides by 0
            weight_sum += w
        if weight_sum == 0:
            return total
        total = total / weight_sum * MAX_NODE_SCORE * self.weight
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
