"""The HyperNode tree as network domains: tier -> [(hypernode, mask over the session's nodes)].

Where it sits: read by the network-topology plugin
(``handlers.scheduler.plugins.network_topology``) when the cluster state
holds HyperNodes (``ClusterState.hypernodes``, folded by
``projections.cluster_hypernodes``). Built from the HyperNodes and the
session's nodes each time a session needs it, so a node added later joins
every HyperNode whose selector matches it, and a HyperNode's selectors are
read as Volcano's scheduler reads them (``pkg/scheduler/api/hyper_node_info.go``):

- a ``Node`` member by ``exactMatch`` is that node; by ``regexMatch`` every
  node whose name the pattern matches anywhere (Go's ``MatchString``, here
  ``re.search``); by ``labelMatch`` every node whose labels satisfy the
  selector;
- a ``HyperNode`` member (``exactMatch``) brings all the nodes below it;
  a member not (yet) there brings none.

A HyperNode's domain is every node below it; domains of one tier are listed
by name, so the plugin's choices never depend on the order HyperNodes came in.
"""

from __future__ import annotations

import re

import numpy as np

from handlers.scheduler.api import NodeArrays
from schemas.hypernode import HyperNode, MemberSpec, label_selector_matches


class HyperNodeTree:
    """The tiers present (ascending) and, per tier, its HyperNodes' node masks by name."""

    def __init__(self, hypernodes: dict[str, HyperNode], nodes: NodeArrays) -> None:
        self.hypernodes = hypernodes
        self.nodes = nodes
        self._leaves: dict[str, np.ndarray] = {}
        by_tier: dict[int, list[str]] = {}
        for name, hypernode in hypernodes.items():
            by_tier.setdefault(hypernode.spec.tier, []).append(name)
        self.tiers: list[int] = sorted(by_tier)
        self.domains: dict[int, list[tuple[str, np.ndarray]]] = {
            tier: [(name, self.leaves(name)) for name in sorted(names)] for tier, names in by_tier.items()
        }

    def leaves(self, name: str, path: frozenset[str] = frozenset()) -> np.ndarray:
        """The mask of the nodes below HyperNode ``name`` (none for a name not there, or in a cycle)."""
        cached = self._leaves.get(name)
        if cached is not None:
            return cached
        mask = np.zeros(len(self.nodes), dtype=bool)
        hypernode = self.hypernodes.get(name)
        if hypernode is None or name in path:
            return mask
        for member in hypernode.spec.members:
            if member.type == "Node":
                mask |= self._select(member)
            elif member.type == "HyperNode" and member.selector.exact_match is not None:
                mask |= self.leaves(member.selector.exact_match.name, path | {name})
        self._leaves[name] = mask
        return mask

    def _select(self, member: MemberSpec) -> np.ndarray:
        nodes = self.nodes
        mask = np.zeros(len(nodes), dtype=bool)
        selector = member.selector
        if selector.exact_match is not None:
            i = nodes.index.get(selector.exact_match.name)
            if i is not None:
                mask[i] = True
        if selector.regex_match is not None and selector.regex_match.pattern:
            try:
                pattern = re.compile(selector.regex_match.pattern)
            except re.error:  # admission refuses these; one written to the log anyway selects nothing
                return mask
            for i, node in enumerate(nodes.names):
                if pattern.search(node):
                    mask[i] = True
        label = selector.label_match
        if label is not None and (label.match_labels or label.match_expressions):
            for i, labels in enumerate(nodes.labels):
                if label_selector_matches(label, labels):
                    mask[i] = True
        return mask
