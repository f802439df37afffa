"""CustomResourceDefinitions generated from the resource types in ``schemas``.

Where it sits: ``eventbatch crds`` prints these and ``deploy/crds/*.yaml`` are
their committed copy (a test fails when the two differ), so the CRD schemas
the API server validates with and the types the loaders decode into cannot
drift. ``msgspec.json.schema`` of each resource type is turned into the
structural-schema subset Kubernetes accepts: every ``$ref`` inlined,
optionals as ``nullable``, defaults dropped (the loaders apply Volcano's
defaults), pod templates and free-form maps as
``x-kubernetes-preserve-unknown-fields``, quantities as ``int-or-string``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import yaml

from schemas.resources import Command, Job, PodGroup, Queue

GROUPS = {
    "Job": ("batch.eventbatch.io", "v1alpha1"),
    "Queue": ("scheduling.eventbatch.io", "v1beta1"),
    "PodGroup": ("scheduling.eventbatch.io", "v1beta1"),
    "Command": ("bus.eventbatch.io", "v1alpha1"),
}
TYPES: dict[str, type[msgspec.Struct]] = {"Job": Job, "Queue": Queue, "PodGroup": PodGroup, "Command": Command}

# Property names whose value is a map of resource name to quantity.
_QUANTITY_MAPS = {"requests", "limits", "capability", "deserved", "resource", "minResources", "allocated", "capacity", "allocatable"}
# Property names kept as written: whole pod templates and open maps.
_PRESERVED = {"template"}

_PRESERVE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_QUANTITY = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}

_NAMES: dict[str, dict[str, str | list[str]]] = {
    "Job": {"plural": "jobs", "singular": "job", "shortNames": ["ebjob", "ebj"]},
    "Queue": {"plural": "queues", "singular": "queue", "shortNames": ["ebq"]},
    "PodGroup": {"plural": "podgroups", "singular": "podgroup", "shortNames": ["ebpg"]},
    "Command": {"plural": "commands", "singular": "command"},
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
        {"name": "Target", "type": "string", "jsonPath": ".targetObject.name"},
        _AGE,
    ],
}


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
        if len(options) == 1:
            chosen = _structural(options[0], defs, name)
            if len(options) < len(node["anyOf"]):
                chosen["nullable"] = True
            return chosen
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


def open_api_schema(kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of one resource kind."""
    (ref,), defs = msgspec.json.schema_components([TYPES[kind]])
    schema = _structural(ref, defs)
    props = schema["properties"]
    props["metadata"] = {"type": "object"}
    for key in ("apiVersion", "kind"):
        props[key] = {"type": "string"}
    if "status" in props:
        props["status"].pop("nullable", None)
    return schema


def crd(kind: str) -> dict[str, Any]:
    group, version = GROUPS[kind]
    names = {"kind": kind, "listKind": f"{kind}List", **_NAMES[kind], "categories": ["eventbatch"]}
    served: dict[str, Any] = {
        "name": version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": open_api_schema(kind)},
        "additionalPrinterColumns": COLUMNS[kind],
    }
    if "status" in open_api_schema(kind)["properties"]:
        served["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names['plural']}.{group}"},
        "spec": {
            "group": group,
            "names": names,
            "scope": "Cluster" if kind == "Queue" else "Namespaced",
            "versions": [served],
        },
    }


def all_crds() -> dict[str, dict[str, Any]]:
    """File name (``deploy/crds/<file>``) -> CRD manifest."""
    return {f"{crd(kind)['metadata']['name']}.yaml": crd(kind) for kind in ("Job", "Queue", "PodGroup", "Command")}


def render(manifest: dict[str, Any]) -> str:
    header = "# Generated by `eventbatch crds` from schemas/resources.py; do not edit by hand.\n"
    return header + yaml.safe_dump(manifest, sort_keys=False, width=120)
