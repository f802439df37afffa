"""network-topology-aware: place a job inside one network domain (switch, spine, zone...).

Where it sits: a scheduler plugin (see ``plugins.base``). The tiers come
from node labels named in the plugin's arguments, lowest tier first::

    - name: network-topology-aware
      arguments:
        tiers: [topology.kubernetes.io/switch, topology.kubernetes.io/spine, topology.kubernetes.io/zone]
        weight: 10          # soft mode's score, x 100 (default 10)

Nodes with the same value of tier ``t``'s label form one domain of that
tier; a node without the label is in no domain of it. A job asks through
its ``spec.networkTopology {mode, highestTierAllowed}``, which the job
controller copies onto its PodGroup. When the job's first task is
considered, the plugin picks its domain: the lowest tier (up to
``highestTierAllowed``; every tier when unset) with a domain holding all the
job's placed tasks and enough idle resources, summed over its nodes, for its
pending ones; among those, the one with the least idle left over (so big
domains stay free for big jobs), then the first by name.

- ``hard``: the job's tasks may only go to nodes of that domain (a
  predicate: other nodes are refused with "node(s) outside the job's network
  domain"); when no domain of an allowed tier can hold the job, the largest
  domain of its highest allowed tier is used, and the gang waits;
- ``soft``: nodes of that domain score ``weight`` x 100 more; when none can
  hold the job, no node is preferred.

When the cluster has HyperNodes (``topology.volcano.sh/v1alpha1``), the
domains are theirs instead and ``tiers`` is not needed: the domains of tier
``t`` are the HyperNodes of ``spec.tier`` ``t``, each holding every node
below it (``handlers.scheduler.hypernodes``), and ``highestTierAllowed``
names a HyperNode tier. The choice is the same: the lowest allowed tier
first, the least idle left over, then the first by HyperNode name; so a
tier-``t`` label with value ``v`` and a tier-``t`` HyperNode named ``v``
holding the nodes labelled ``v`` decide alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from handlers.scheduler.api import JobInfo, NodeArrays, TaskInfo
from handlers.scheduler.conf import ConfError, PluginOption, number
from handlers.scheduler.hooks import Refusal, Rows, Score
from handlers.scheduler.hypernodes import HyperNodeTree
from handlers.scheduler.plugins.base import Plugin

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

HOLDING = frozenset({"Allocated", "Bound", "Running", "Pipelined"})
MAX = 100


def _tiers(raw: object) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",")]
    if not isinstance(raw, list) or not all(isinstance(t, str) and t for t in raw):
        raise ConfError(f"tiers of network-topology-aware must be a list of node label names, got {raw!r}")
    return list(raw)


class NetworkTopology(Plugin):
    name = "network-topology-aware"

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        self.tiers = _tiers(self.arguments.get("tiers"))
        self.weight = number(self.arguments, "weight", 10)

    def open(self, ssn: Session) -> None:
        self.ssn = ssn
        self.wishes: dict[str, tuple[str, list[int]]] = {}
        self.tree: HyperNodeTree | None = None
        hyper = bool(ssn.state.hypernodes)
        if not hyper and not self.tiers:
            return
        for job in ssn.jobs.values():
            record = ssn.state.podgroups.get(job.name)
            if record is None or record.network_topology is None:
                continue
            mode, highest = record.network_topology
            if hyper:
                if self.tree is None:
                    self.tree = HyperNodeTree(ssn.state.hypernodes, ssn.nodes)
                allowed = [t for t in self.tree.tiers if highest <= 0 or t <= highest]
            else:
                top = len(self.tiers) if highest <= 0 else min(highest, len(self.tiers))
                allowed = list(range(1, top + 1))
            self.wishes[job.name] = (mode, allowed)
        if not self.wishes:
            return
        self.chosen: dict[str, tuple[str, np.ndarray] | None] = {}
        self.register(ssn.hooks.predicate, self._predicate)
        self.register(ssn.hooks.node_order, self._score)

    def _domains(self, tier: int) -> list[tuple[str, np.ndarray]]:
        """Tier ``tier``'s domains, by name: (how a refusal names it, its mask over the nodes)."""
        if self.tree is not None:
            return [(f"hypernode {name}", mask) for name, mask in self.tree.domains.get(tier, [])]
        label = self.tiers[tier - 1]
        nodes = self.ssn.nodes
        members: dict[str, list[int]] = {}
        for i, labels in enumerate(nodes.labels):
            value = labels.get(label)
            if value is not None:
                members.setdefault(value, []).append(i)
        out = []
        for value in sorted(members):
            mask = np.zeros(len(nodes), dtype=bool)
            mask[members[value]] = True
            out.append((f"{label}={value}", mask))
        return out

    def _choose(self, job: JobInfo) -> tuple[str, np.ndarray] | None:
        mode, allowed = self.wishes[job.name]
        nodes = self.ssn.nodes
        need = np.zeros(len(nodes.dims), dtype=np.int64)
        for task in job.tasks:
            if task.status == "Pending":
                need += task.vec
        held = np.zeros(len(nodes), dtype=bool)
        for task in job.tasks:
            if task.node >= 0 and task.status in HOLDING:
                held[task.node] = True
        total = np.maximum(nodes.alloc.sum(axis=0), 1)
        for tier in allowed:
            best = None
            for name, mask in self._domains(tier):
                if (held & ~mask).any():
                    continue
                idle = nodes.idle[mask].sum(axis=0)
                if (idle < need).any():
                    continue
                slack = float(((idle - need) / total).sum())
                if best is None or slack < best[0]:
                    best = (slack, name, mask)
            if best is not None:
                return best[1], best[2]
        if mode != "hard":
            return None
        largest = None
        for name, mask in self._domains(allowed[-1]) if allowed else []:
            size = float((nodes.idle[mask].sum(axis=0) / total).sum())
            if largest is None or size > largest[0]:
                largest = (size, name, mask)
        if largest is None:
            return "", np.zeros(len(nodes), dtype=bool)
        return largest[1], largest[2]

    def _domain(self, job: JobInfo) -> tuple[str, np.ndarray] | None:
        if job.name not in self.chosen:
            self.chosen[job.name] = self._choose(job)
        return self.chosen[job.name]

    def _predicate(self, task: TaskInfo, nodes: NodeArrays) -> list[Refusal]:
        wish = self.wishes.get(task.job.name)
        if wish is None or wish[0] != "hard":
            return []
        chosen = self._domain(task.job)
        assert chosen is not None  # hard mode always chooses a domain (``_choose``)
        name, mask = chosen
        where = f" ({name})" if name else ""
        return [(f"node(s) outside the job's network domain{where}", ~mask)]

    def _score(self, task: TaskInfo, nodes: NodeArrays, rows: Rows) -> Score:
        wish = self.wishes.get(task.job.name)
        chosen = self._domain(task.job) if wish is not None and wish[0] != "hard" else None
        if isinstance(rows, int):
            return self.weight * MAX if chosen is not None and chosen[1][rows] else 0.0
        n = len(nodes) if rows is None else len(rows)
        if chosen is None:
            return np.zeros(n)
        mask = chosen[1] if rows is None else chosen[1][rows]
        return np.where(mask, self.weight * MAX, 0.0)
