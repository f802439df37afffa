"""CustomResourceDefinitions generated from the resource types in ``schemas``.

Where it sits: ``eventbatch crds`` prints these and ``deploy/crds/<groups>/``
holds their committed copy for each choice of API groups (a test fails when
the two differ), so the CRD schemas the API server validates with and the
types the loaders decode into cannot drift. ``msgspec.json.schema`` of each
resource type is turned into the structural-schema subset Kubernetes
accepts: every ``$ref`` inlined, optionals as plain fields (a ``null`` is
pruned by the API server, as for Volcano's own CRDs), defaults dropped (the
loaders apply Volcano's defaults), pod templates and free-form maps as
``x-kubernetes-preserve-unknown-fields``, quantities as ``int-or-string``.

The API groups are a deployment choice (``Settings.api_groups``): Volcano's
own (``batch.volcano.sh``, ``scheduling.volcano.sh``, ``bus.volcano.sh``,
``flow.volcano.sh``, ``topology.volcano.sh``),
where eventbatch replaces Volcano, or the project's (``*.eventbatch.io``), to
run beside an installed Volcano. ``groups()`` is the one table every part
that names a group reads: this generator, the watch adapter's informers, the
actuator's owner references and the status writer.

Volcano's admission rules that CEL can say are ``x-kubernetes-validations``
(``RULES``), so the API server refuses such an object before it reaches the
log; the rest stay in ``schemas.admission`` (docs/kubernetes.md says which
and why).
"""

from __future__ import annotations

from typing import Any

import msgspec
import yaml

from eventbatch.settings import API_GROUPS, DEFAULT_API_GROUPS
from schemas.admission_rules import JOB_ACTIONS, QUEUE_ACTIONS
from schemas.hypernode import HyperNode
from schemas.resources import Command, CronJob, Job, JobFlow, JobTemplate, PodGroup, Queue

KINDS = ("Job", "Queue", "PodGroup", "Command", "JobFlow", "JobTemplate", "CronJob", "HyperNode")
_VERSIONS = {"Job": "v1alpha1", "Queue": "v1beta1", "PodGroup": "v1beta1", "Command": "v1alpha1",
             "JobFlow": "v1alpha1", "JobTemplate": "v1alpha1", "CronJob": "v1alpha1", "HyperNode": "v1alpha1"}
_PREFIXES = {"Job": "batch", "Queue": "scheduling", "PodGroup": "scheduling", "Command": "bus",
             "JobFlow": "flow", "JobTemplate": "flow", "CronJob": "batch", "HyperNode": "topology"}
_SUFFIXES = {"volcano": "volcano.sh", "eventbatch": "eventbatch.io"}

Groups = dict[str, tuple[str, str]]


def groups(api_groups: str = DEFAULT_API_GROUPS) -> Groups:
    """Kind -> ``(group, version)`` for a choice of ``API_GROUPS`` (``volcano`` or ``eventbatch``)."""
    if api_groups not in API_GROUPS:
        raise ValueError(f"unknown API groups {api_groups!r} (expected one of {', '.join(API_GROUPS)})")
    return {kind: (f"{_PREFIXES[kind]}.{_SUFFIXES[api_groups]}", _VERSIONS[kind]) for kind in KINDS}


# The groups of the default choice; a component that runs in a deployment takes its own.
GROUPS = groups()
TYPES: dict[str, type[msgspec.Struct]] = {
    "Job": Job, "Queue": Queue, "PodGroup": PodGroup, "Command": Command, "JobFlow": JobFlow, "JobTemplate": JobTemplate,
    "CronJob": CronJob, "HyperNode": HyperNode,
}

# Property names whose value is a map of resource name to quantity.
_QUANTITY_MAPS = {"requests", "limits", "capability", "deserved", "resource", "minResources", "allocated", "capacity", "allocatable"}
# Property names kept as written: whole pod templates and open maps.
_PRESERVED = {"template"}

_PRESERVE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_QUANTITY = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}

# Short names as Volcano's CRDs have them, and the project's own for its groups
# (Volcano's would clash with an installed Volcano's).
_NAMES: dict[str, dict[str, str | list[str]]] = {
    "Job": {"plural": "jobs", "singular": "job"},
    "Queue": {"plural": "queues", "singular": "queue"},
    "PodGroup": {"plural": "podgroups", "singular": "podgroup"},
    "Command": {"plural": "commands", "singular": "command"},
    "JobFlow": {"plural": "jobflows", "singular": "jobflow"},
    "JobTemplate": {"plural": "jobtemplates", "singular": "jobtemplate"},
    "CronJob": {"plural": "cronjobs", "singular": "cronjob"},
    "HyperNode": {"plural": "hypernodes", "singular": "hypernode"},
}
_SHORT_NAMES: dict[str, dict[str, list[str]]] = {
    "volcano": {"Job": ["vcjob", "vj"], "Queue": ["q", "queue-v1beta1"], "PodGroup": ["pg", "podgroup-v1beta1"],
                "JobFlow": ["jf"], "JobTemplate": ["jt"], "CronJob": ["cronvcjob", "cronvj"], "HyperNode": ["hn"]},
    "eventbatch": {"Job": ["ebjob", "ebj"], "Queue": ["ebq"], "PodGroup": ["ebpg"], "JobFlow": ["ebjf"], "JobTemplate": ["ebjt"],
                   "CronJob": ["ebcronjob"], "HyperNode": ["ebhn"]},
}
# Kinds with a status subresource, as in Volcano's CRDs: a PodGroup has none (its
# status is written with the object itself), a Command has no status.
STATUS_SUBRESOURCE = {"Job", "Queue", "JobFlow", "JobTemplate", "CronJob", "HyperNode"}
# Kinds without a namespace, as in Volcano's CRDs.
CLUSTER_SCOPED = {"Queue", "HyperNode"}

# Fields Volcano's CRDs have that the resource types do not decode yet, added to
# the schema so that an object written for Volcano keeps them: {kind: {path: {name: schema}}}.
_EXTRA_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "Job": {"spec.networkTopology": {"highestTierName": {"type": "string"}}},
    "PodGroup": {
        "spec.networkTopology": {"highestTierName": {"type": "string"}},
        "status.conditions[]": {"transitionID": {"type": "string"}},
    },
    "JobTemplate": {"spec.networkTopology": {"highestTierName": {"type": "string"}}},
    "JobFlow": {"spec.flows[].patch.jobSpec.networkTopology": {"highestTierName": {"type": "string"}}},
    "CronJob": {"spec.jobTemplate.spec.networkTopology": {"highestTierName": {"type": "string"}}},
}

_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
COLUMNS: dict[str, list[dict[str, str]]] = {
    "Job": [
        {"name": "Status", "type": "string", "jsonPath": ".status.state.phase"},
        {"name": "Queue", "type": "string", "jsonPath": ".spec.queue"},
        {"name": "MinAvailable", "type": "integer", "jsonPath": ".spec.minAvailable"},
        {"name": "Running", "type": "integer", "jsonPath": ".status.running"},
        _AGE,
    ],
    "Queue": [
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Weight", "type": "integer", "jsonPath": ".spec.weight"},
        {"name": "Parent", "type": "string", "jsonPath": ".spec.parent"},
        {"name": "Running", "type": "integer", "jsonPath": ".status.running"},
        _AGE,
    ],
    "PodGroup": [
        {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Queue", "type": "string", "jsonPath": ".spec.queue"},
        {"name": "MinMember", "type": "integer", "jsonPath": ".spec.minMember"},
        {"name": "Running", "type": "integer", "jsonPath": ".status.running"},
        _AGE,
    ],
    "Command": [
        {"name": "Action", "type": "string", "jsonPath": ".action"},
        {"name": "Target", "type": "string", "jsonPath": ".target.name"},
        _AGE,
    ],
    # as Volcano's CRDs print them
    "JobFlow": [{"name": "Status", "type": "string", "jsonPath": ".status.state.phase"}, _AGE],
    "JobTemplate": [_AGE],
    "CronJob": [],  # Volcano's CRD declares none: kubectl prints name and age
    "HyperNode": [
        {"name": "Tier", "type": "string", "jsonPath": ".spec.tier"},
        {"name": "TierName", "type": "string", "jsonPath": ".spec.tierName"},
        {"name": "NodeCount", "type": "integer", "jsonPath": ".status.nodeCount"},
        _AGE,
    ],
}


# -- CEL validations ------------------------------------------------------------------------
# Volcano's admission rules (``schemas.admission``) that CEL can say, by kind and
# schema path (``spec.tasks[]``: each task; ``spec.minAvailable``: the field,
# checked only when it is set). Each is (rule, message); the message is what
# ``kubectl apply`` prints. Lists that a rule walks pairwise are bounded
# (``_BOUNDS``) so the API server's cost estimate of the rule stays in budget.


def _cel_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


Rule = tuple[str, str]
_TOPOLOGY: dict[str, list[Rule]] = {
    "spec.networkTopology.mode": [("self in ['hard', 'soft']", "networkTopology.mode must be one of hard, soft")],
    "spec.networkTopology.highestTierAllowed": [("self >= 1", "networkTopology.highestTierAllowed must be >= 1")],
}
_POLICY: list[Rule] = [
    (
        "!(((has(self.event) && self.event != '') || (has(self.events) && size(self.events) > 0)) && has(self.exitCode))",
        "a policy sets either event/events or exitCode, not both",
    ),
    (
        "(has(self.event) && self.event != '') || (has(self.events) && size(self.events) > 0) || has(self.exitCode)",
        "a policy needs event, events or exitCode",
    ),
]
_TOTAL_REPLICAS = "(has(self.tasks) ? self.tasks.map(t, has(t.replicas) ? t.replicas : 0).sum() : 0)"
RULES: dict[str, dict[str, list[Rule]]] = {
    "Job": {
        "spec": [
            ("has(self.tasks) && size(self.tasks) > 0", "a job needs at least one task"),
            (
                f"!has(self.minAvailable) || !has(self.tasks) || self.minAvailable <= {_TOTAL_REPLICAS}",
                "minAvailable must not exceed the total replicas of all tasks",
            ),
            (
                f"!has(self.minSuccess) || !has(self.tasks) || self.minSuccess <= {_TOTAL_REPLICAS}",
                "minSuccess must not exceed the total replicas of all tasks",
            ),
        ],
        "spec.minAvailable": [("self >= 0", "minAvailable must be >= 0")],
        "spec.maxRetry": [("self >= 0", "maxRetry must be >= 0")],
        "spec.ttlSecondsAfterFinished": [("self >= 0", "ttlSecondsAfterFinished must be >= 0")],
        "spec.minSuccess": [("self >= 1", "minSuccess must be >= 1")],
        "spec.tasks": [
            (
                "self.all(t, !has(t.name) || self.exists_one(u, has(u.name) && u.name == t.name))",
                "task names must be unique",
            )
        ],
        "spec.tasks[]": [
            (
                "!has(self.minAvailable) || self.minAvailable <= (has(self.replicas) ? self.replicas : 0)",
                "a task's minAvailable must not exceed its replicas",
            )
        ],
        "spec.tasks[].replicas": [("self >= 0", "replicas must be >= 0")],
        "spec.tasks[].minAvailable": [("self >= 0", "a task's minAvailable must be >= 0")],
        "spec.tasks[].maxRetry": [("self >= 0", "a task's maxRetry must be >= 0")],
        "spec.policies[]": _POLICY,
        "spec.policies[].exitCode": [("self != 0", "a policy's exitCode must not be 0: exit code 0 means success")],
        "spec.tasks[].policies[]": _POLICY,
        "spec.tasks[].policies[].exitCode": [("self != 0", "a policy's exitCode must not be 0: exit code 0 means success")],
        **_TOPOLOGY,
    },
    "Queue": {
        "": [
            (
                "!has(self.spec) || !has(self.spec.parent) || self.spec.parent != self.metadata.name",
                "a queue cannot be its own parent",
            )
        ],
        # 0 is Volcano's unset weight (its webhook, and schemas.defaults, make it 1)
        "spec.weight": [("self >= 0", "weight must be a positive integer (0 means the default, 1)")],
    },
    "PodGroup": {
        "spec.minMember": [("self >= 0", "minMember must be >= 0")],
        "spec.minTaskMember": [("self.all(task, self[task] >= 0)", "minTaskMember values must be >= 0")],
        **_TOPOLOGY,
    },
    "Command": {
        "": [
            ("has(self.target)", "target is required"),
            ("has(self.action) && self.action != ''", "action is required"),
            (
                f"!has(self.target) || !has(self.action) || self.action == '' || "
                f"(self.target.kind == 'Queue' ? self.action in {_cel_list(QUEUE_ACTIONS)} "
                f": self.action in {_cel_list(JOB_ACTIONS)})",
                "unknown action for the target's kind",
            ),
        ],
        "target.kind": [("self in ['Job', 'Queue']", "target.kind must be Job or Queue")],
    },
}
# Bounds that keep the pairwise rules' estimated cost inside the API server's budget.
_BOUNDS: dict[str, dict[str, dict[str, int]]] = {
    "Job": {"spec.tasks": {"maxItems": 100}, "spec.tasks[].name": {"maxLength": 63}},
}
# A JobTemplate's spec is a Job's spec: the same rules and bounds.
RULES["JobTemplate"] = {path: rules for path, rules in RULES["Job"].items() if path.startswith("spec")}
_BOUNDS["JobTemplate"] = _BOUNDS["Job"]


def _structural(node: Any, defs: dict[str, Any], name: str = "") -> dict[str, Any]:
    """One JSON-schema node as a structural schema node."""
    if "$ref" in node:
        return _structural(defs[node["$ref"].rsplit("/", 1)[1]], defs, name)
    if name in _QUANTITY_MAPS and node.get("type") == "object":
        return {"type": "object", "additionalProperties": dict(_QUANTITY)}
    if name in _PRESERVED:
        return dict(_PRESERVE)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:  # an optional field: a null is pruned, as by Volcano's CRDs
            return _structural(options[0], defs, name)
        return dict(_PRESERVE)
    kind = node.get("type")
    if kind is None:  # typing.Any
        return {"x-kubernetes-preserve-unknown-fields": True}
    if kind == "object":
        props = node.get("properties")
        if props is not None:
            out: dict[str, Any] = {"type": "object", "properties": {}}
            for key in sorted(props):
                if key == "extra":  # unknown fields kept by the decoder: preserved here
                    out["x-kubernetes-preserve-unknown-fields"] = True
                    continue
                out["properties"][key] = _structural(props[key], defs, key)
            if node.get("required"):
                out["required"] = sorted(node["required"])
            return out
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("type") in ("string", "integer", "boolean", "number"):
            return {"type": "object", "additionalProperties": {"type": extra["type"]}}
        if isinstance(extra, dict) and extra:
            return {"type": "object", "additionalProperties": _structural(extra, defs)}
        return dict(_PRESERVE)
    if kind == "array":
        items = node.get("items") or {}
        return {"type": "array", "items": _structural(items, defs) if items else dict(_PRESERVE)}
    scalar: dict[str, Any] = {"type": kind}
    if "enum" in node:
        scalar["enum"] = list(node["enum"])
    return scalar


def _node(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema node at ``path`` (``spec.tasks[].name``; "" is the root)."""
    node = schema
    for part in [p for p in path.split(".") if p]:
        name, _, rest = part.partition("[")
        node = node["properties"][name]
        for _ in range(rest.count("]")):
            node = node["items"]
    return node


def open_api_schema(kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of one resource kind, with its CEL validations."""
    (ref,), defs = msgspec.json.schema_components([TYPES[kind]])
    schema = _structural(ref, defs)
    props = schema["properties"]
    props["metadata"] = {"type": "object"}
    for key in ("apiVersion", "kind"):
        props[key] = {"type": "string"}
    for path, fields in _EXTRA_FIELDS.get(kind, {}).items():
        node_props = _node(schema, path).setdefault("properties", {})
        for field, field_schema in fields.items():
            node_props.setdefault(field, dict(field_schema))
    for path, bounds in _BOUNDS.get(kind, {}).items():
        _node(schema, path).update(bounds)
    for path, rules in RULES.get(kind, {}).items():
        _node(schema, path)["x-kubernetes-validations"] = [{"rule": rule, "message": message} for rule, message in rules]
    return schema


def crd(kind: str, api_groups: str = DEFAULT_API_GROUPS) -> dict[str, Any]:
    group, version = groups(api_groups)[kind]
    short = _SHORT_NAMES[api_groups].get(kind)
    names = {"kind": kind, "listKind": f"{kind}List", **_NAMES[kind], **({"shortNames": short} if short else {})}
    names["categories"] = ["eventbatch"]
    schema = open_api_schema(kind)
    served: dict[str, Any] = {
        "name": version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
    }
    if COLUMNS[kind]:
        served["additionalPrinterColumns"] = COLUMNS[kind]
    if kind in STATUS_SUBRESOURCE:
        served["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names['plural']}.{group}"},
        "spec": {
            "group": group,
            "names": names,
            "scope": "Cluster" if kind in CLUSTER_SCOPED else "Namespaced",
            "versions": [served],
        },
    }


def all_crds(api_groups: str = DEFAULT_API_GROUPS) -> dict[str, dict[str, Any]]:
    """File name (``deploy/crds/<api_groups>/<file>``) -> CRD manifest."""
    out = {}
    for kind in KINDS:
        manifest = crd(kind, api_groups)
        out[f"{manifest['metadata']['name']}.yaml"] = manifest
    return out


def render(manifest: dict[str, Any]) -> str:
    header = "# Generated by `eventbatch crds` from schemas/resources.py; do not edit by hand.\n"
    return header + yaml.safe_dump(manifest, sort_keys=False, width=120)
