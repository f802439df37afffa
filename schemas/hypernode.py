"""HyperNode (``topology.volcano.sh/v1alpha1``): a network domain of nodes, and its admission.

Where it sits: a manifest kind read at the edge (``schemas.loaders``: ``apply
-f``, scenario workloads). An admitted HyperNode becomes a
``HyperNodeApplyRequested`` (``schemas.events.hypernode``); the hypernode
controller (``handlers.hypernode``) answers it with ``HyperNodeAdded`` /
``HyperNodeUpdated`` or a refusal, and the scheduler's network-topology plugin
places jobs inside the tree the HyperNodes form (``docs/scheduler.md``).

A HyperNode has a ``tier`` (1 is the closest, e.g. a switch; higher tiers
hold lower ones, e.g. a spine) and ``members``: either nodes, selected by
exact name (``exactMatch``), by a regular expression searched in the node's
name (``regexMatch``, as Go's ``MatchString``) or by labels (``labelMatch``),
or other HyperNodes, selected by exact name. Admission follows Volcano's CRD
and its validating policy, and refuses two things Volcano's webhook lets
through but its scheduler ignores: a ``regexMatch`` or ``labelMatch`` on a
HyperNode member (Volcano builds the tree from exact names only), and members
of both types in one HyperNode (Volcano's tree keeps nodes at the leaves).
"""

from __future__ import annotations

import re
from typing import Any

from schemas.admission import validate
from schemas.admission_rules import (
    Checker,
    Violation,
    check_label_key,
    check_label_value,
    check_metadata,
    check_name,
)
from schemas.resources import Base, ObjectMeta

MEMBER_TYPES = ("Node", "HyperNode")
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
# Volcano's CRD: tierName at most 253 characters.
MAX_TIER_NAME = 253


class ExactMatch(Base, frozen=True):
    name: str = ""


class RegexMatch(Base, frozen=True):
    pattern: str = ""


class LabelSelectorRequirement(Base, frozen=True):
    key: str = ""
    operator: str = ""
    values: list[str] = []


class LabelSelector(Base, frozen=True):
    match_labels: dict[str, str] = {}
    match_expressions: list[LabelSelectorRequirement] = []


class MemberSelector(Base, frozen=True):
    exact_match: ExactMatch | None = None
    regex_match: RegexMatch | None = None
    label_match: LabelSelector | None = None


class MemberSpec(Base, frozen=True):
    type: str = ""
    selector: MemberSelector = MemberSelector()


class HyperNodeSpec(Base, frozen=True):
    tier: int = 0
    tier_name: str = ""
    members: list[MemberSpec] = []


class HyperNodeStatus(Base, frozen=True):
    conditions: list[dict[str, Any]] = []
    node_count: int = 0


class HyperNode(Base, frozen=True):
    api_version: str = "topology.volcano.sh/v1alpha1"
    kind: str = "HyperNode"
    metadata: ObjectMeta = ObjectMeta()
    spec: HyperNodeSpec = HyperNodeSpec()
    status: HyperNodeStatus | None = None


def selector_count(selector: MemberSelector) -> int:
    return sum(s is not None for s in (selector.exact_match, selector.regex_match, selector.label_match))


def regex_problem(pattern: str) -> str:
    """Why ``pattern`` is no regular expression, or ""."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"invalid regular expression {pattern!r}: {exc}"
    return ""


@validate.register
def validate_hypernode(hypernode: HyperNode) -> list[Violation]:
    c = Checker()
    check_name(c, ("metadata", "name"), hypernode.metadata.name, subdomain=True)
    if hypernode.metadata.namespace:
        c.add(("metadata", "namespace"), "a HyperNode is cluster-scoped: it has no namespace")
    check_metadata(c, hypernode.metadata)
    spec = hypernode.spec
    c.at_least(("spec", "tier"), spec.tier, 1)
    if len(spec.tier_name) > MAX_TIER_NAME:
        c.add(("spec", "tierName"), f"{len(spec.tier_name)} characters, more than the {MAX_TIER_NAME} allowed")
    if not spec.members:
        c.add(("spec", "members"), "a HyperNode needs at least one member")
    types = {member.type for member in spec.members if member.type in MEMBER_TYPES}
    if len(types) > 1:
        c.add(("spec", "members"), "members are either all Node or all HyperNode, not both")
    for i, member in enumerate(spec.members):
        _check_member(c, ("spec", "members", i), member, hypernode.metadata.name)
    return c.violations


def _check_member(c: Checker, at: tuple[str | int, ...], member: MemberSpec, own: str) -> None:
    if member.type not in MEMBER_TYPES:
        c.add((*at, "type"), f"must be one of {', '.join(MEMBER_TYPES)}, got {member.type!r}")
    selector = member.selector
    sel = (*at, "selector")
    count = selector_count(selector)
    if count == 0:
        c.add(sel, "one of exactMatch, regexMatch or labelMatch is required")
    elif count > 1:
        c.add(sel, "only one of exactMatch, regexMatch or labelMatch may be given")
    if selector.exact_match is not None:
        name = selector.exact_match.name
        if check_name(c, (*sel, "exactMatch", "name"), name, subdomain=True) and member.type == "HyperNode" and name == own:
            c.add((*sel, "exactMatch", "name"), "a HyperNode cannot be its own member")
    if selector.regex_match is not None:
        pattern = selector.regex_match.pattern
        if not pattern:
            c.add((*sel, "regexMatch", "pattern"), "required field is missing")
        elif problem := regex_problem(pattern):
            c.add((*sel, "regexMatch", "pattern"), problem)
    if selector.label_match is not None:
        _check_label_selector(c, (*sel, "labelMatch"), selector.label_match)
    if member.type == "HyperNode" and (selector.regex_match is not None or selector.label_match is not None):
        c.add(sel, "a HyperNode member is selected by exactMatch only (Volcano's scheduler ignores the others)")


def _check_label_selector(c: Checker, at: tuple[str | int, ...], selector: LabelSelector) -> None:
    if not selector.match_labels and not selector.match_expressions:
        c.add(at, "an empty labelMatch selects nothing: give matchLabels or matchExpressions")
    for key, value in selector.match_labels.items():
        if check_label_key(c, (*at, "matchLabels", key), key):
            check_label_value(c, (*at, "matchLabels", key), value)
    for i, req in enumerate(selector.match_expressions):
        where = (*at, "matchExpressions", i)
        if not req.key:
            c.add((*where, "key"), "required field is missing")
        else:
            check_label_key(c, (*where, "key"), req.key)
        if req.operator not in SELECTOR_OPERATORS:
            c.add((*where, "operator"), f"must be one of {', '.join(SELECTOR_OPERATORS)}, got {req.operator!r}")
        elif req.operator in ("In", "NotIn") and not req.values:
            c.add((*where, "values"), f"{req.operator} needs at least one value")
        elif req.operator in ("Exists", "DoesNotExist") and req.values:
            c.add((*where, "values"), f"{req.operator} takes no values")
        for j, value in enumerate(req.values):
            check_label_value(c, (*where, "values", j), value)


def label_selector_matches(selector: LabelSelector, labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy ``selector`` (Kubernetes' LabelSelector; every requirement ANDed)."""
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator == "In" and not (present and labels[req.key] in req.values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in req.values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True
