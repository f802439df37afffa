"""Node observations: nodes joining, changing and leaving the cluster.

Where it sits: appended by a cluster adapter; folded into the cluster state
the scheduler takes its snapshot from.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.resources import Node


class NodeEvent(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "node"
    node: str


class NodeAdded(NodeEvent, frozen=True, kw_only=True):
    manifest: Node


class NodeUpdated(NodeEvent, frozen=True, kw_only=True):
    manifest: Node


class NodeRemoved(NodeEvent, frozen=True, kw_only=True):
    reason: str = ""


EVENTS: tuple[type[Event], ...] = (NodeAdded, NodeUpdated, NodeRemoved)
