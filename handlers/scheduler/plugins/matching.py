"""Kubernetes matching rules: node selector terms, taints and tolerations.

Where it sits: shared by the ``predicates`` plugin (filtering) and the
``nodeorder`` plugin (preferred affinity, PreferNoSchedule taints). Pure
functions over one node's labels or taints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from schemas.resources import NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration

UNSCHEDULABLE_TAINT = Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def requirement_matches(req: NodeSelectorRequirement, labels: Mapping[str, str]) -> bool:
    op = req.operator
    present = req.key in labels
    if op == "In":
        return present and labels[req.key] in req.values
    if op == "NotIn":
        return not present or labels[req.key] not in req.values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(req.values) != 1:
            return False
        have, want = _as_int(labels[req.key]), _as_int(req.values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False


def term_matches(term: NodeSelectorTerm, labels: Mapping[str, str], node_name: str) -> bool:
    """A term matches when all its expressions and fields do; an empty term matches nothing."""
    if not term.match_expressions and not term.match_fields:
        return False
    for req in term.match_expressions:
        if not requirement_matches(req, labels):
            return False
    for req in term.match_fields:
        if req.key != "metadata.name" or not requirement_matches(
            NodeSelectorRequirement(key="metadata.name", operator=req.operator, values=req.values),
            {"metadata.name": node_name},
        ):
            return False
    return True


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    for key, value in selector.items():
        if labels.get(key) != value:
            return False
    return True


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    if not toleration.key:  # an empty key only makes sense with Exists
        return False
    return toleration.value == taint.value


def untolerated(taints: Iterable[Taint], tolerations: tuple[Toleration, ...], effects: frozenset[str]) -> Taint | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    for taint in taints:
        if taint.effect in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def taint_text(taint: Taint) -> str:
    return f"{{{taint.key}: {taint.value}}}" if taint.value else f"{{{taint.key}}}"
