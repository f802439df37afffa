"""HyperNode events: requests to apply or delete a HyperNode, and the facts that answer them.

Where it sits: the requests are appended at the edge (``apply -f`` of a
HyperNode, a scenario workload step);
the hypernode controller (``handlers.hypernode``) answers each with a fact
(``HyperNodeAdded``, ``HyperNodeUpdated``, ``HyperNodeRemoved``) or with
``HyperNodeRequestRefused``. Only the facts are folded: into the cluster
state (``projections.cluster_hypernodes``), where the scheduler's
network-topology plugin builds the tree of network domains from them.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.hypernode import HyperNode


class HyperNodeEvent(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "hypernode"
    hypernode: str


# --- requests: appended at the edge, answered by the hypernode controller ------------


class HyperNodeApplyRequested(HyperNodeEvent, frozen=True, kw_only=True):
    """Create the HyperNode, or replace its spec when it exists."""

    REQUEST: ClassVar[bool] = True
    manifest: HyperNode


class HyperNodeDeleteRequested(HyperNodeEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True


# --- facts --------------------------------------------------------------------------


class HyperNodeAdded(HyperNodeEvent, frozen=True, kw_only=True):
    manifest: HyperNode


class HyperNodeUpdated(HyperNodeEvent, frozen=True, kw_only=True):
    manifest: HyperNode


class HyperNodeRemoved(HyperNodeEvent, frozen=True, kw_only=True):
    pass


class HyperNodeRequestRefused(HyperNodeEvent, frozen=True, kw_only=True):
    """A HyperNode request that cannot be carried out; ``action``: apply or delete."""

    action: str
    reason: str


EVENTS: tuple[type[Event], ...] = (
    HyperNodeApplyRequested,
    HyperNodeDeleteRequested,
    HyperNodeAdded,
    HyperNodeUpdated,
    HyperNodeRemoved,
    HyperNodeRequestRefused,
)
