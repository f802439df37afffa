"""The hypernode controller: answers requests to apply or delete a HyperNode.

Where it sits: a pure handler, run by the ``HandlerRunner`` next to the queue
and job controllers on every cluster (the composition root,
``eventbatch.app.cluster_handlers``). Requests come from ``apply -f`` and a
scenario's workload (HyperNode objects of a Kubernetes API server are not
watched yet). Each gets facts or
``HyperNodeRequestRefused``, which changes nothing; the scheduler folds the
facts into its state (``projections.cluster_hypernodes``).

- apply: ``HyperNodeAdded`` for a new name, ``HyperNodeUpdated`` when the
  spec, labels or annotations differ, nothing when they do not. Refused when
  the manifest breaks an admission rule (``schemas.hypernode``), or when it
  would not leave a tree (the rules Volcano's scheduler needs to build one):
  a HyperNode member already belonging to another HyperNode (a HyperNode has
  one parent), a member that contains this HyperNode (a cycle), a member of
  a tier not below this one's, or a parent of a tier not above it.
- delete: ``HyperNodeRemoved``; refused for a HyperNode that does not exist.
  A parent that named it keeps its other members.
"""

from __future__ import annotations

from handlers.base import Handler, reads
from projections.cluster_hypernodes import HyperNodesState
from projections.dispatch import FoldTable
from schemas.admission import validate
from schemas.envelope import Envelope
from schemas.events import (
    HyperNodeAdded,
    HyperNodeApplyRequested,
    HyperNodeDeleteRequested,
    HyperNodeRemoved,
    HyperNodeRequestRefused,
    HyperNodeUpdated,
)
from schemas.events.base import Event
from schemas.hypernode import HyperNode

HANDLER = "hypernode-controller"


def children(hypernode: HyperNode) -> list[str]:
    """The HyperNodes ``hypernode`` names as members (by exact name), in spec order."""
    return [
        m.selector.exact_match.name
        for m in hypernode.spec.members
        if m.type == "HyperNode" and m.selector.exact_match is not None
    ]


def tree_problem(hypernodes: dict[str, HyperNode], name: str, manifest: HyperNode) -> str:
    """Why applying ``manifest`` as ``name`` would not leave a tree of tiers, or ""."""
    tier = manifest.spec.tier
    for child in children(manifest):
        for other in sorted(hypernodes):
            if other != name and child in children(hypernodes[other]):
                return f"hypernode {child} already belongs to hypernode {other}"
        known = hypernodes.get(child)
        if known is not None and known.spec.tier >= tier:
            return f"member hypernode {child} is of tier {known.spec.tier}, not below this one's tier {tier}"
        if _reaches(hypernodes, child, name):
            return f"member hypernode {child} contains hypernode {name}: a cycle"
    for other in sorted(hypernodes):
        parent = hypernodes[other]
        if other != name and name in children(parent) and parent.spec.tier <= tier:
            return f"its parent hypernode {other} is of tier {parent.spec.tier}, not above this one's tier {tier}"
    return ""


def _reaches(hypernodes: dict[str, HyperNode], start: str, target: str) -> bool:
    seen: set[str] = set()
    todo = [start]
    while todo:
        current = todo.pop()
        if current == target:
            return True
        if current in seen or current not in hypernodes:
            continue
        seen.add(current)
        todo.extend(children(hypernodes[current]))
    return False


def _upsert(state: HyperNodesState, event: HyperNodeAdded | HyperNodeUpdated) -> None:
    state.hypernodes[event.hypernode] = event.manifest


def _removed(state: HyperNodesState, event: HyperNodeRemoved) -> None:
    state.hypernodes.pop(event.hypernode, None)


# The facts it folds: each HyperNode as last added or updated. The state changes only with
# these facts, so every other event is skipped (``HyperNodesState.position`` is read by no
# decision and stays -1).
_FOLDS: FoldTable[HyperNodesState, [], None] = FoldTable()
_FOLDS.on(HyperNodeAdded, _upsert)
_FOLDS.on(HyperNodeUpdated, _upsert)
_FOLDS.on(HyperNodeRemoved, _removed)
FOLDS = _FOLDS.folds


def _on_delete(state: HyperNodesState, event: HyperNodeDeleteRequested) -> list[Event]:
    if event.hypernode not in state.hypernodes:
        return [_refused(event.hypernode, "delete", f"hypernode {event.hypernode} not found")]
    return [HyperNodeRemoved(hypernode=event.hypernode)]


def _on_apply(state: HyperNodesState, event: HyperNodeApplyRequested) -> list[Event]:
    name, manifest = event.hypernode, event.manifest
    if name != manifest.metadata.name:
        return [_refused(name, "apply", f"the request names {name} but the manifest {manifest.metadata.name!r}")]
    violations = validate(manifest)
    if violations:
        first = violations[0]
        return [_refused(name, "apply", f"{first.path}: {first.reason}" if first.path else first.reason)]
    if problem := tree_problem(state.hypernodes, name, manifest):
        return [_refused(name, "apply", problem)]
    known = state.hypernodes.get(name)
    if known is None:
        return [HyperNodeAdded(hypernode=name, manifest=manifest)]
    same = (
        known.spec == manifest.spec
        and known.metadata.labels == manifest.metadata.labels
        and known.metadata.annotations == manifest.metadata.annotations
    )
    return [] if same else [HyperNodeUpdated(hypernode=name, manifest=manifest)]


# The requests it answers, each with its function.
_REQUESTS: FoldTable[HyperNodesState, [], list[Event]] = FoldTable()
_REQUESTS.on(HyperNodeApplyRequested, _on_apply)
_REQUESTS.on(HyperNodeDeleteRequested, _on_delete)
_answers = _REQUESTS.folds


class HyperNodeHandler(Handler[HyperNodesState]):
    name = HANDLER
    interests = reads(FOLDS, _answers)  # the facts it folds and the requests it answers

    def initial(self) -> HyperNodesState:
        return HyperNodesState()

    def fold(self, state: HyperNodesState, envelope: Envelope) -> HyperNodesState:
        step = FOLDS.get(type(envelope.payload))
        if step is not None:
            step(state, envelope.payload)
        return state

    def decide(self, state: HyperNodesState, envelope: Envelope) -> list[Event]:
        answer = _answers.get(type(envelope.payload))
        return answer(state, envelope.payload) if answer is not None else []


def _refused(name: str, action: str, reason: str) -> HyperNodeRequestRefused:
    return HyperNodeRequestRefused(hypernode=name, action=action, reason=reason)
