"""Node state folded from the log: each node's manifest and the pods it holds.

Where it sits: the projection the node controller (``handlers.node``)
decides on. Pure and deterministic, facts only: a node exists from its
``NodeAdded`` (whoever appended it: a scenario, the kube adapter, the node
controller) until its ``NodeRemoved``; requests change nothing here.

A pod is *on* a node from its ``PodBound`` (or ``PodStarted``) there until
it finishes, is evicted or deleted, fails to bind, or is asked to leave
(``PodEvictionRequested`` / ``PodDeletionRequested``): those are the pods a
drain still has to evict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from projections.dispatch import FoldTable
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.resources import Node


@dataclass
class NodeLifecycleRecord:
    """The node controller's record of one node: its manifest and the pods on it."""

    name: str
    manifest: Node
    pods: dict[str, str] = field(default_factory=dict)  # pod -> job, in the order they arrived


@dataclass
class NodesState:
    nodes: dict[str, NodeLifecycleRecord] = field(default_factory=dict)
    pod_node: dict[str, str] = field(default_factory=dict)  # pod -> the node it is on


def _upsert(state: NodesState, e: ev.NodeAdded | ev.NodeUpdated) -> None:
    node = state.nodes.get(e.node)
    if node is None:
        state.nodes[e.node] = NodeLifecycleRecord(e.node, e.manifest)
    else:
        node.manifest = e.manifest


def _removed(state: NodesState, e: ev.NodeRemoved) -> None:
    node = state.nodes.pop(e.node, None)
    if node is not None:
        for pod in node.pods:
            state.pod_node.pop(pod, None)


def _placed(state: NodesState, e: ev.PodBound | ev.PodStarted) -> None:
    node = state.nodes.get(e.node)
    if node is None or e.pod in state.pod_node:
        return  # a bind onto a node already gone, or a pod already placed
    state.pod_node[e.pod] = e.node
    node.pods[e.pod] = e.job


def _left(state: NodesState, e: ev.PodEvent | ev.PodDecision | ev.PodDeletionRequested) -> None:
    name = state.pod_node.pop(e.pod, None)
    if name is not None and (node := state.nodes.get(name)) is not None:
        node.pods.pop(e.pod, None)


_TABLE: FoldTable[NodesState, [], None] = FoldTable()
_TABLE.on(ev.NodeAdded, _upsert)
_TABLE.on(ev.NodeUpdated, _upsert)
_TABLE.on(ev.NodeRemoved, _removed)
_TABLE.on(ev.PodBound, _placed)
_TABLE.on(ev.PodStarted, _placed)
_TABLE.on(ev.PodSucceeded, _left)
_TABLE.on(ev.PodFailed, _left)
_TABLE.on(ev.PodEvicted, _left)
_TABLE.on(ev.PodDeleted, _left)
_TABLE.on(ev.PodBindFailed, _left)
_TABLE.on(ev.PodEvictionRequested, _left)
_TABLE.on(ev.PodDeletionRequested, _left)
FOLDS = _TABLE.folds


def fold(state: NodesState, envelope: Envelope) -> NodesState:
    apply = FOLDS.get(type(envelope.payload))
    if apply is not None:
        apply(state, envelope.payload)
    return state
