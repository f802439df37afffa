"""predicates: which nodes a pod may go to at all (resources aside).

Where it sits: a scheduler plugin (see ``plugins.base``); registers one
predicate, evaluated once per distinct set of placement constraints per
session (pods of the same task share it). Checks, in order, each giving the
reason kube-scheduler would print:

- the node is unschedulable (cordoned) unless the pod tolerates
  ``node.kubernetes.io/unschedulable``;
- ``runtimeClassName`` names a RuntimeClass the cluster has
  (``RuntimeClassAdded`` on the log, folded into the cluster state) or this
  scheduler is given (argument ``runtimeClasses``: name -> ``{nodeSelector,
  tolerations}``, as a RuntimeClass's ``scheduling`` field; a class on the
  log wins over an argument of the same name); its nodeSelector must match
  and its tolerations add to the pod's (its overhead is already in the pod's
  requests: ``projections.cluster_runtime``);
- ``nodeSelector`` matches the node's labels;
- required node affinity: one term matches (In, NotIn, Exists,
  DoesNotExist, Gt, Lt; ``metadata.name`` fields);
- every NoSchedule / NoExecute taint is tolerated (PreferNoSchedule is a
  score, see ``nodeorder``);
- required inter-pod affinity and anti-affinity (``podAffinity``,
  ``podAntiAffinity``), the pod's own terms and placed pods' anti-affinity
  terms that match it, with the pods the session placed before it counted:
  ``predicates_pods``, asked when the session looks for a node, not cached
  with the checks above.

Resource fit, including extended resources and the node's pod count, is the
allocate action's own check against idle and releasing resources.
Arguments: ``predicate.NodeAffinityEnable``,
``predicate.TaintTolerationEnable`` and ``predicate.PodAffinityEnable`` (all
true), ``runtimeClasses``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import numpy as np

from handlers.scheduler.api import NodeArrays, TaskInfo
from handlers.scheduler.conf import ConfError, PluginOption, flag
from handlers.scheduler.hooks import Refusal
from handlers.scheduler.plugins.base import Plugin
from handlers.scheduler.plugins.matching import (
    UNSCHEDULABLE_TAINT,
    selector_matches,
    taint_text,
    term_matches,
    tolerates,
    untolerated,
)
from handlers.scheduler.plugins.predicates_pods import open_rules
from schemas.resources import Toleration

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

BLOCKING = frozenset({"NoSchedule", "NoExecute"})


class RuntimeClass(msgspec.Struct, frozen=True, rename="camel"):
    node_selector: dict[str, str] = {}
    tolerations: list[Toleration] = []


def _runtime_classes(raw: object) -> dict[str, RuntimeClass]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfError("runtimeClasses must map a RuntimeClass name to {nodeSelector, tolerations}")
    out = {}
    for name, spec in raw.items():
        try:
            out[str(name)] = msgspec.convert(spec or {}, RuntimeClass)
        except msgspec.ValidationError as exc:
            raise ConfError(f"runtimeClasses.{name}: {exc}") from None
    return out


class Predicates(Plugin):
    name = "predicates"

    def __init__(self, option: PluginOption, tier: int) -> None:
        super().__init__(option, tier)
        self.affinity_on = flag(self.arguments, "predicate.NodeAffinityEnable", True)
        self.taints_on = flag(self.arguments, "predicate.TaintTolerationEnable", True)
        self.pods_on = flag(self.arguments, "predicate.PodAffinityEnable", True)
        self.runtime_classes = _runtime_classes(self.arguments.get("runtimeClasses"))
        self.classes = self.runtime_classes  # and the cluster's, from each session's state (``open``)

    def open(self, ssn: Session) -> None:
        self.classes = dict(self.runtime_classes)
        for name, known in ssn.state.runtime_classes.items():
            self.classes[name] = RuntimeClass(node_selector=known.node_selector, tolerations=known.tolerations)
        self.register(ssn.hooks.predicate, self.filter)
        if self.pods_on and ssn.state.pod_affinity_pods and self.option.switches.get("predicate", True):
            rules, made = open_rules(ssn)
            rules.required = True
            if made:  # the rules count what the session places: one listener for them
                self.on_allocate, self.on_deallocate = rules.allocated, rules.deallocated

    def filter(self, task: TaskInfo, nodes: NodeArrays) -> list[Refusal]:
        record = task.record
        n = len(nodes)
        fails: list[Refusal] = []
        tolerations = tuple(record.tolerations)
        runtime = None
        if record.runtime_class:
            runtime = self.classes.get(record.runtime_class)
            if runtime is None:
                fails.append((f'runtime class "{record.runtime_class}" not found', np.ones(n, dtype=bool)))
                return fails
            tolerations += tuple(runtime.tolerations)

        if nodes.unschedulable.any() and not any(tolerates(t, UNSCHEDULABLE_TAINT) for t in tolerations):
            fails.append(("node(s) were unschedulable", nodes.unschedulable.copy()))

        if runtime is not None and runtime.node_selector:
            mask = np.array([not selector_matches(runtime.node_selector, nodes.labels[i]) for i in range(n)], dtype=bool)
            fails.append((f'node(s) didn\'t match runtime class "{record.runtime_class}"', mask))

        if self.affinity_on and record.node_selector:
            mask = np.array([not selector_matches(record.node_selector, nodes.labels[i]) for i in range(n)], dtype=bool)
            fails.append(("node(s) didn't match node selector", mask))

        required = None
        if self.affinity_on and record.affinity and record.affinity.node_affinity:
            required = record.affinity.node_affinity.required_during_scheduling_ignored_during_execution
        if required is not None:
            terms = required.node_selector_terms
            mask = np.array(
                [not any(term_matches(t, nodes.labels[i], nodes.names[i]) for t in terms) for i in range(n)],
                dtype=bool,
            )
            fails.append(("node(s) didn't match node affinity", mask))

        if self.taints_on:
            by_taint: dict[str, np.ndarray] = {}
            for i in range(n):
                taints = nodes.taints[i]
                if not taints:
                    continue
                taint = untolerated(taints, tolerations, BLOCKING)
                if taint is not None:
                    reason = f"node(s) had untolerated taint {taint_text(taint)}"
                    refused = by_taint.get(reason)
                    if refused is None:
                        refused = by_taint[reason] = np.zeros(n, dtype=bool)
                    refused[i] = True
            fails.extend(sorted(by_taint.items()))
        return fails
