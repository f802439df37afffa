"""The folds of node and priority-class events: NodeView's and PriorityClassView's rows.

Where it sits: one module of ``projections.views.folds``, called by
``projections.views.viewset.ViewSet`` for each event of these types. A node
keeps what it can hold (``NodeViewRecord.allocatable``, the cluster projection's
rule: allocatable, else capacity, and a pod count); what its pods use is
folded by ``projections.views.folds.pods``. Neither kind of event joins a
timeline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The handlers' projections' own names and rules, so the two folds cannot drift apart.
from projections.cluster_model import DEFAULT_NODE_PODS
from projections.views.folds.base import Table, resources
from projections.views.rows import PriorityClassRow
from projections.views.state import NodeViewRecord
from schemas import events as ev

if TYPE_CHECKING:
    from projections.views.viewset import ViewSet


def _node_upsert(v: ViewSet, e: ev.NodeAdded | ev.NodeUpdated, at: int, _: bool) -> tuple[str, str]:
    node = v.nodes.get(e.node)
    if node is None:
        node = v.nodes[e.node] = NodeViewRecord(e.node)
    status = e.manifest.status
    node.allocatable = resources(status.allocatable or status.capacity)
    node.allocatable.setdefault("pods", DEFAULT_NODE_PODS)
    node.unschedulable = e.manifest.spec.unschedulable
    v._dirty_nodes.add(e.node)
    return "", ""


def _node_removed(v: ViewSet, e: ev.NodeRemoved, at: int, _: bool) -> tuple[str, str]:
    v.nodes.pop(e.node, None)
    v._dirty_nodes.add(e.node)
    return "", ""


def _priority_added(v: ViewSet, e: ev.PriorityClassAdded, at: int, _: bool) -> tuple[str, str]:
    v.priority_classes[e.name] = PriorityClassRow(e.name, e.value, e.global_default)
    v._dirty_priority.add(e.name)
    return "", ""


def _priority_removed(v: ViewSet, e: ev.PriorityClassRemoved, at: int, _: bool) -> tuple[str, str]:
    v.priority_classes.pop(e.name, None)
    v._dirty_priority.add(e.name)
    return "", ""


TABLE: Table = Table()
TABLE.on(ev.NodeAdded, _node_upsert)
TABLE.on(ev.NodeUpdated, _node_upsert)
TABLE.on(ev.NodeRemoved, _node_removed)
TABLE.on(ev.PriorityClassAdded, _priority_added)
TABLE.on(ev.PriorityClassRemoved, _priority_removed)
