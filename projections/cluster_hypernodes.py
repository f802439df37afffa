"""The HyperNodes of the cluster, folded from the hypernode controller's facts.

Where it sits: ``projections.cluster`` registers ``FOLDS`` in the cluster
state's fold table, so the scheduler's state holds every HyperNode as last
added or updated (``ClusterState.hypernodes``) and ``hypernode_epoch``, bumped
at each change, for readers that derive something from them (the
network-topology plugin's tree, ``handlers.scheduler.hypernodes``). The
hypernode controller (``handlers.hypernode``) folds the same facts into its
own ``HyperNodesState`` (``handlers.hypernode.FOLDS``). Requests are never folded: a refused
one changes nothing.
"""

from __future__ import annotations

from projections.cluster_model import ClusterState
from projections.dispatch import FoldTable
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.hypernode import HyperNode


def _upsert(state: ClusterState, e: ev.HyperNodeAdded | ev.HyperNodeUpdated, _: Envelope) -> None:
    state.hypernodes[e.hypernode] = e.manifest
    state.hypernode_epoch += 1


def _removed(state: ClusterState, e: ev.HyperNodeRemoved, _: Envelope) -> None:
    if state.hypernodes.pop(e.hypernode, None) is not None:
        state.hypernode_epoch += 1


_TABLE: FoldTable[ClusterState, [Envelope], None] = FoldTable()
_TABLE.on(ev.HyperNodeAdded, _upsert)
_TABLE.on(ev.HyperNodeUpdated, _upsert)
_TABLE.on(ev.HyperNodeRemoved, _removed)
# The cluster state's folds of HyperNode facts (merged into ``projections.cluster.FOLDS``).
FOLDS = _TABLE.folds


class HyperNodesState:
    """The hypernode controller's state: every HyperNode by name, as its facts left it.
    ``position`` stays -1: the controller reads no position."""

    __slots__ = ("position", "hypernodes")

    def __init__(self) -> None:
        self.position = -1
        self.hypernodes: dict[str, HyperNode] = {}

