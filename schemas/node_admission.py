"""Kubernetes' validation basics for a v1 Node manifest.

Where it sits: registered with ``schemas.admission.validate`` and used by
``schemas.loaders`` when ``apply -f`` or ``eventbatch node add -f`` reads a
``v1`` ``Node`` (``serve --cluster sim`` only: a kube cluster's nodes come
from its API server). The rules are the API server's own basics: the name is
a DNS subdomain, labels and annotations follow Kubernetes' rules, capacity and allocatable are quantities that parse and are
not negative, a node offers some capacity, and taints have a key and one of
Kubernetes' three effects.
"""

from __future__ import annotations

from schemas.admission import validate
from schemas.admission_rules import (
    Checker,
    Violation,
    check_label_key,
    check_label_value,
    check_metadata,
    check_name,
    check_quantities,
)
from schemas.resources import Node

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@validate.register
def validate_node(node: Node) -> list[Violation]:
    c = Checker()
    check_name(c, ("metadata", "name"), node.metadata.name, subdomain=True)
    check_metadata(c, node.metadata)
    status = node.status
    capacity = check_quantities(c, ("status", "capacity"), status.capacity)
    allocatable = check_quantities(c, ("status", "allocatable"), status.allocatable)
    if not status.capacity and not status.allocatable:
        c.add(("status",), "a node needs capacity or allocatable resources (e.g. cpu, memory)")
    for name, amount in allocatable.items():
        if name in capacity and amount > capacity[name]:
            c.add(("status", "allocatable", name), f"must not be more than capacity ({status.capacity[name]})")
    for i, taint in enumerate(node.spec.taints):
        if not taint.key:
            c.add(("spec", "taints", i, "key"), "required field is missing")
        else:
            check_label_key(c, ("spec", "taints", i, "key"), taint.key, what="taint key")
        check_label_value(c, ("spec", "taints", i, "value"), taint.value)
        if taint.effect not in TAINT_EFFECTS:
            c.add(("spec", "taints", i, "effect"), f"must be one of {', '.join(TAINT_EFFECTS)}, got {taint.effect!r}")
    return c.violations
