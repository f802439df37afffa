"""Placement of one kind of task: which nodes it fits and which is best, kept current.

Where it sits: used by the allocate and backfill actions through
``placement_for``. Tasks with the same requests and the same placement
constraints (typically the pods of one task role, and often of many jobs)
share one ``Placement`` per session: predicates (cached per constraint
signature by the session), the resource fit against idle and releasing
resources and the node scores are computed once over all nodes as arrays.
Afterwards a placement only catches up with the rows the session changed
since it last looked (``NodeArrays.changes``), one row at a time.

The best node is the highest score among nodes the task fits on idle
resources (allocate), else among nodes it fits counting resources being
released (pipeline); equal scores go to the node first by name.
"""

from __future__ import annotations

import numpy as np

from handlers.scheduler.api import TaskInfo

NEG = -np.inf


class Placement:
    def __init__(self, ssn, task: TaskInfo, *, pipeline: bool = True) -> None:
        self.ssn = ssn
        self.task = task
        nodes = ssn.nodes
        self.synced = len(nodes.changes)
        self.ok, _ = ssn.static_filter(task)
        self.nz = task.nz
        self.need = task.vec[task.nz]
        self.pairs = list(zip(task.nz.tolist(), self.need.tolist()))
        self.pipeline = pipeline
        ok = self.ok
        self.fit_idle = ok & (nodes.idle[:, self.nz] >= self.need).all(axis=1)
        if pipeline:
            self.fit_future = ok & (nodes.future[:, self.nz] >= self.need).all(axis=1)
        else:
            self.fit_future = np.zeros(len(nodes), dtype=bool)
        self.scores = ssn.node_scores(task)
        # Scores where the task fits, -inf elsewhere: the best node is one argmax.
        self.on_idle = np.where(self.fit_idle, self.scores, NEG)
        self.on_future = np.where(self.fit_future & ~self.fit_idle, self.scores, NEG)

    def best(self) -> tuple[str, int] | None:
        if not len(self.on_idle):
            return None  # a cluster without nodes: nowhere to go
        self.sync()
        i = int(np.argmax(self.on_idle))
        if self.on_idle[i] > NEG:
            return "allocate", i
        if self.pipeline:
            i = int(np.argmax(self.on_future))
            if self.on_future[i] > NEG:
                return "pipeline", i
        return None

    def sync(self) -> None:
        changes = self.ssn.nodes.changes
        if self.synced == len(changes):
            return
        rows = changes[self.synced :]
        self.synced = len(changes)
        for i in sorted(set(rows)) if len(rows) > 1 else rows:
            self._refresh(i)

    def _refresh(self, i: int) -> None:
        if not self.ok[i]:
            return
        nodes = self.ssn.nodes
        idle = nodes.idle[i].tolist()
        fit_idle = all(idle[j] >= v for j, v in self.pairs)
        fit_future = False
        if self.pipeline and not fit_idle:
            future = nodes.future[i].tolist()
            fit_future = all(future[j] >= v for j, v in self.pairs)
        self.fit_idle[i] = fit_idle
        self.fit_future[i] = fit_future
        score = self.ssn.hooks.sum("node_order", self.task, nodes, i) if (fit_idle or fit_future) else NEG
        self.scores[i] = score
        self.on_idle[i] = score if fit_idle else NEG
        self.on_future[i] = score if fit_future else NEG


def placement_for(ssn, task: TaskInfo, *, pipeline: bool = True) -> Placement:
    """The session's shared placement for tasks like ``task``."""
    key = (task.role_key[1], task.signature, pipeline)
    place = ssn.placements.get(key)
    if place is None:
        place = ssn.placements[key] = Placement(ssn, task, pipeline=pipeline)
    return place
