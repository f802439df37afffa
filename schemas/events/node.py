"""Node events: requests about nodes, and nodes joining, changing and leaving the cluster.

Where it sits: the facts (``NodeAdded``, ``NodeUpdated``, ``NodeRemoved``)
are appended by whatever owns the nodes: the kube adapter (what the API
server reports), a scenario's cluster, or, on ``serve --cluster sim``, the
node controller (``handlers.node``) answering a request. They are folded
into the cluster state the scheduler takes its snapshot from.

The requests (``NodeAddRequested``, ``NodeCordonRequested``,
``NodeDrainRequested``, ``NodeRemoveRequested``) are appended at the edge
(``eventbatch node ...``, ``apply -f`` of a v1 Node) and change nothing by
themselves; the node controller answers each with facts or with
``NodeRequestRefused``, which changes nothing either.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.resources import Node


class NodeEvent(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "node"
    node: str


# --- requests: appended at the edge, answered by the node controller ---------------


class NodeAddRequested(NodeEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True
    manifest: Node


class NodeCordonRequested(NodeEvent, frozen=True, kw_only=True):
    """Cordon (``unschedulable: true``) or uncordon (``false``) a node."""

    REQUEST: ClassVar[bool] = True
    unschedulable: bool


class NodeDrainRequested(NodeEvent, frozen=True, kw_only=True):
    """Cordon a node and evict every pod on it, as ``kubectl drain`` does."""

    REQUEST: ClassVar[bool] = True


class NodeRemoveRequested(NodeEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True


# --- facts --------------------------------------------------------------------------


class NodeAdded(NodeEvent, frozen=True, kw_only=True):
    manifest: Node


class NodeUpdated(NodeEvent, frozen=True, kw_only=True):
    manifest: Node


class NodeRemoved(NodeEvent, frozen=True, kw_only=True):
    reason: str = ""


class NodeRequestRefused(NodeEvent, frozen=True, kw_only=True):
    """A node request that cannot be carried out; ``action``: add, cordon, uncordon, drain, remove."""

    action: str
    reason: str


EVENTS: tuple[type[Event], ...] = (
    NodeAddRequested,
    NodeCordonRequested,
    NodeDrainRequested,
    NodeRemoveRequested,
    NodeAdded,
    NodeUpdated,
    NodeRemoved,
    NodeRequestRefused,
)
