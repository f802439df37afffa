"""data-locality: nodes where a job's data lives score higher.

Where it sits: a scheduler plugin (see ``plugins.base``), a node score. A job
names where its data is with the annotation ``eventbatch.io/data-locality``
on its PodGroup, or on its pods (the Job's task template), one or both of:

- ``nodes=a,b`` — these nodes hold the data;
- ``labels=dataset=imagenet,zone=z1`` — nodes carrying all these labels hold it;

separated by ``;`` (``"nodes=gpu-3;labels=dataset=imagenet"``: either kind
matches). A node holding the data scores ``data-locality.weight``
(argument, default 10) x 100 more, enough to win over the spreading and
balancing scores of ``nodeorder``; nodes without the data stay usable. A
malformed annotation prefers no node and the session goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from handlers.scheduler.api import NodeArrays, TaskInfo
from handlers.scheduler.conf import PluginOption, number
from handlers.scheduler.hooks import Rows, Score
from handlers.scheduler.plugins.base import Plugin

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

ANNOTATION = "eventbatch.io/data-locality"
MAX = 100


def parse(text: str) -> tuple[frozenset[str], tuple[dict[str, str], ...]] | None:
    """``(node names, label selectors)`` of an annotation value; None when malformed."""
    names: set[str] = set()
    selectors: list[dict[str, str]] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        kind, sep, value = part.partition("=")
        if not sep:
            return None
        if kind.strip() == "nodes":
            names.update(n.strip() for n in value.split(",") if n.strip())
        elif kind.strip() == "labels":
            selector = {}
            for pair in value.split(","):
                key, eq, wanted = pair.strip().partition("=")
                if not eq or not key:
                    return None
                selector[key.strip()] = wanted.strip()
            selectors.append(selector)
        else:
            return None
    if not names and not selectors:
        return None
    return frozenset(names), tuple(selectors)


class DataLocality(Plugin):
    name = "data-locality"

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        self.weight = number(self.arguments, "data-locality.weight", 10)

    def open(self, ssn: Session) -> None:
        self.masks: dict[str, np.ndarray | None] = {}
        self.register(ssn.hooks.node_order, self._score)

    def _mask(self, task: TaskInfo, nodes: NodeArrays) -> np.ndarray | None:
        text = task.job.annotations.get(ANNOTATION) or task.record.annotations.get(ANNOTATION)
        if not text:
            return None
        if text in self.masks:
            return self.masks[text]
        wanted = parse(text)
        mask = None
        if wanted is not None:
            names, selectors = wanted
            mask = np.zeros(len(nodes), dtype=bool)
            for i, (name, labels) in enumerate(zip(nodes.names, nodes.labels, strict=True)):
                mask[i] = name in names or any(all(labels.get(k) == v for k, v in s.items()) for s in selectors)
        self.masks[text] = mask
        return mask

    def _score(self, task: TaskInfo, nodes: NodeArrays, rows: Rows) -> Score:
        mask = self._mask(task, nodes)
        if isinstance(rows, int):
            return self.weight * MAX if mask is not None and mask[rows] else 0.0
        if mask is None:
            return 0.0
        return np.where(mask if rows is None else mask[rows], self.weight * MAX, 0.0)
