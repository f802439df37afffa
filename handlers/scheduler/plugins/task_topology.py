"""task-topology: keep some task roles of a job together and others apart.

Where it sits: a scheduler plugin (see ``plugins.base``). A job says, in
Volcano's annotations on its PodGroup (or on its pods' template):

- ``volcano.sh/task-topology-affinity: "ps,worker;chief,evaluator"`` —
  groups (``;``) of roles (``,``) whose tasks prefer the same node, e.g. keep
  parameter servers with their workers;
- ``volcano.sh/task-topology-anti-affinity: "ps;worker"`` — groups whose
  tasks prefer different nodes (a one-role group spreads that role);
- ``volcano.sh/task-topology-task-order: "ps,worker"`` — roles placed first,
  in that order (otherwise roles named in an affinity group go first).

Hooks: task order (as above), node order: for a task of role ``r`` a node
scores ``task-topology.weight`` (argument, default 1) x 100 x (the job's
tasks on it whose role shares an affinity group with ``r`` − those whose role
shares an anti-affinity group with ``r``). The counts follow the session's
placements, so a job's second task already sees where the first one went.
When a role is both (``affinity: "ps,worker"`` with ``anti-affinity: "ps"``),
apart wins: parameter servers spread, and each worker is drawn to them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from handlers.scheduler.api import JobInfo, NodeArrays, TaskInfo
from handlers.scheduler.conf import PluginOption, number
from handlers.scheduler.hooks import Rows, Score
from handlers.scheduler.plugins.base import Plugin

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

AFFINITY = "volcano.sh/task-topology-affinity"
ANTI_AFFINITY = "volcano.sh/task-topology-anti-affinity"
TASK_ORDER = "volcano.sh/task-topology-task-order"
HOLDING = frozenset({"Allocated", "Bound", "Running", "Pipelined"})
MAX = 100


def _groups(text: str) -> list[set[str]]:
    groups = []
    for part in text.split(";"):
        roles = {r.strip() for r in part.split(",") if r.strip()}
        if roles:
            groups.append(roles)
    return groups


class Topology:
    """One job's wishes: for each role, the roles it wants near and the roles it wants away."""

    def __init__(self, annotations: dict[str, str]) -> None:
        affinity = _groups(annotations.get(AFFINITY, ""))
        anti = _groups(annotations.get(ANTI_AFFINITY, ""))
        self.near: dict[str, frozenset[str]] = {}
        self.away: dict[str, frozenset[str]] = {}
        for group in affinity:
            for role in group:
                self.near[role] = self.near.get(role, frozenset()) | group
        for group in anti:
            for role in group:
                self.away[role] = self.away.get(role, frozenset()) | group
        for role, away in self.away.items():  # apart wins over together
            if role in self.near:
                self.near[role] = self.near[role] - away
        order = [r.strip() for r in annotations.get(TASK_ORDER, "").split(",") if r.strip()]
        if not order:
            order = sorted({r for g in affinity for r in g})
        self.rank = {role: i for i, role in enumerate(order)}


def annotations_of(job: JobInfo) -> dict[str, str]:
    """The job's topology annotations: its PodGroup's, else the first of its pods' that has them."""
    if AFFINITY in job.annotations or ANTI_AFFINITY in job.annotations:
        return job.annotations
    for task in job.tasks:
        found = task.record.annotations
        if AFFINITY in found or ANTI_AFFINITY in found:
            return found
    return {}


class TaskTopology(Plugin):
    name = "task-topology"

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        self.weight = number(self.arguments, "task-topology.weight", 1)

    def open(self, ssn: Session) -> None:
        self.topologies: dict[str, Topology] = {}
        self.where: dict[str, dict[int, Counter[str]]] = {}  # job -> node row -> roles there
        self.placed: dict[str, int] = {}  # task -> node row, for the session's own placements
        for job in ssn.jobs.values():
            found = annotations_of(job)
            if not found:
                continue
            self.topologies[job.name] = Topology(found)
            rows = self.where[job.name] = {}
            for task in job.tasks:
                if task.node >= 0 and task.status in HOLDING:
                    rows.setdefault(task.node, Counter())[task.role] += 1
        if not self.topologies:
            return
        self.register(ssn.hooks.task_order, self._order)
        self.register(ssn.hooks.node_order, self._score)
        self.on_allocate = self._allocated
        self.on_deallocate = self._deallocated

    def _order(self, left: TaskInfo, right: TaskInfo) -> int:
        if left.job is not right.job:
            return 0
        topology = self.topologies.get(left.job.name)
        if topology is None:
            return 0
        big = len(topology.rank)
        lr, rr = topology.rank.get(left.role, big), topology.rank.get(right.role, big)
        return -1 if lr < rr else (1 if lr > rr else 0)

    def _node_score(self, topology: Topology, role: str, roles: Counter[str] | None) -> float:
        if not roles:
            return 0.0
        near = topology.near.get(role, frozenset())
        away = topology.away.get(role, frozenset())
        count = sum(n for r, n in roles.items() if r in near) - sum(n for r, n in roles.items() if r in away)
        return self.weight * MAX * count

    def _score(self, task: TaskInfo, nodes: NodeArrays, rows: Rows) -> Score:
        topology = self.topologies.get(task.job.name)
        where = self.where.get(task.job.name, {})
        if isinstance(rows, int):
            return self._node_score(topology, task.role, where.get(rows)) if topology else 0.0
        index = range(len(nodes)) if rows is None else rows
        scores = np.zeros(len(index))
        if topology is not None:
            for k, i in enumerate(index):
                if i in where:
                    scores[k] = self._node_score(topology, task.role, where[i])
        return scores

    def _allocated(self, task: TaskInfo) -> None:
        rows = self.where.get(task.job.name)
        if rows is not None and task.node >= 0:
            rows.setdefault(task.node, Counter())[task.role] += 1
            self.placed[task.name] = task.node

    def _deallocated(self, task: TaskInfo) -> None:
        rows = self.where.get(task.job.name)
        node = self.placed.pop(task.name, task.node)
        if rows is not None and node in rows:
            rows[node][task.role] -= 1
