"""The node controller: answers node requests for a cluster whose nodes live on the log.

Where it sits: a pure handler, run by the ``HandlerRunner`` next to the queue
and job controllers wherever the nodes live on the log: the composition root
(``eventbatch.app.build_pipeline``) adds it for the ``sim`` and ``none``
clusters (``serve``, ``simulate``, ``demo``), not for ``kube``, whose nodes
are the API server's. It owns nodes there: each request
(``schemas.events.node``) gets facts or ``NodeRequestRefused``; the
scheduler, the simulated kubelet and the read models fold the facts.

- add: ``NodeAdded`` with the manifest; refused if the node exists.
- cordon / uncordon: ``NodeUpdated`` with ``spec.unschedulable`` set; a node
  already in that state records nothing.
- drain: as ``kubectl drain``: cordon (``NodeUpdated``), then a
  ``PodEvictionRequested`` (rule ``node.drain``) for every pod still on the
  node, by name. The kubelet answers each with ``PodEvicted`` + ``PodDeleted``,
  so the job controller's policies for evicted pods apply.
- remove: ``NodeRemoved``; the kubelet then fails the pods left on it
  (``NodeLost``), as for a node that disappears.
- cordon, drain or remove of a node that does not exist: refused.
"""

from __future__ import annotations

from typing import get_args

import msgspec

from handlers.base import Handler, reads
from projections import nodes as projection
from projections.nodes import NodesState
from schemas.envelope import Envelope
from schemas.events import (
    NodeAdded,
    NodeAddRequested,
    NodeCordonRequested,
    NodeDrainRequested,
    NodeRemoved,
    NodeRemoveRequested,
    NodeRequestRefused,
    NodeUpdated,
    PodEvictionRequested,
)
from schemas.events.base import Event

DRAIN_RULE = "node.drain"

# The requests the controller answers.
NodeRequest = NodeAddRequested | NodeCordonRequested | NodeDrainRequested | NodeRemoveRequested


def action_of(event: NodeRequest) -> str:
    """The request's verb, as ``NodeRequestRefused.action`` and the CLI name it."""
    match event:
        case NodeCordonRequested():
            return "cordon" if event.unschedulable else "uncordon"
        case NodeAddRequested():
            return "add"
        case NodeDrainRequested():
            return "drain"
        case NodeRemoveRequested():
            return "remove"


class NodeHandler(Handler[NodesState]):
    name = "node-controller"
    position_free_decisions = True  # its fold reads no position
    interests = reads(projection.FOLDS, get_args(NodeRequest))  # what it folds, and the requests it answers

    def initial(self) -> NodesState:
        return NodesState()

    def fold(self, state: NodesState, envelope: Envelope) -> NodesState:
        return projection.fold(state, envelope)

    def decide(self, state: NodesState, envelope: Envelope) -> list[Event]:
        event = envelope.payload
        if not isinstance(event, NodeRequest):
            return []
        if isinstance(event, NodeAddRequested):
            if event.node in state.nodes:
                return [_refused(event, f"node {event.node} already exists")]
            return [NodeAdded(node=event.node, manifest=event.manifest)]
        node = state.nodes.get(event.node)
        if node is None:
            return [_refused(event, f"node {event.node} not found")]
        if isinstance(event, NodeRemoveRequested):
            return [NodeRemoved(node=event.node, reason="removed on request")]
        unschedulable = event.unschedulable if isinstance(event, NodeCordonRequested) else True
        decisions: list[Event] = []
        if node.manifest.spec.unschedulable != unschedulable:
            spec = msgspec.structs.replace(node.manifest.spec, unschedulable=unschedulable)
            decisions.append(NodeUpdated(node=event.node, manifest=msgspec.structs.replace(node.manifest, spec=spec)))
        if isinstance(event, NodeDrainRequested):
            reason = f"node {event.node} drained"
            decisions += [
                PodEvictionRequested(pod=pod, job=node.pods[pod], rule=DRAIN_RULE, reason=reason)
                for pod in sorted(node.pods)
            ]
        return decisions


def _refused(event: NodeRequest, reason: str) -> NodeRequestRefused:
    return NodeRequestRefused(node=event.node, action=action_of(event), reason=reason)
