"""Test support: the field paths a CustomResourceDefinition's schema accepts, as a set of strings.

Where it sits: tests only. It reads a CRD as YAML text (Volcano's own, kept
under ``tests/fixtures/volcano/crds/``, or one that ``eventbatch.kube.crds``
generates into ``deploy/crds/``) and lists every property path of its
``openAPIV3Schema``, so a test can compare what Volcano's CRD accepts with
what ours does and name every path one of them drops.

The path syntax:

- ``spec.queue``: a property (the object's ``apiVersion``, ``kind`` and
  ``metadata`` are left out: every CRD has them);
- ``spec.tasks[]``: an array property, ``spec.tasks[].name`` a property of
  its items (an array of arrays gives ``[][]``);
- ``spec.plugins{}``: a map (``additionalProperties``),
  ``status.conditions{}.x`` a property of its values;
- a property named ``template`` (an embedded ``PodTemplateSpec``) and any
  object with ``x-kubernetes-preserve-unknown-fields`` are one opaque path:
  nothing below them is listed.

Every version in the CRD is read; the result is the union of their paths
(``field_paths_by_version`` keeps them apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

# Top-level properties every Kubernetes object has; not part of the CRD's own schema.
STANDARD = frozenset({"apiVersion", "kind", "metadata"})

# Property names whose schema is an embedded Kubernetes object listed as one path.
OPAQUE = frozenset({"template"})


def _walk(schema: Mapping[str, Any], prefix: str, out: set[str], opaque: set[str] | None = None) -> None:
    """Add the paths below ``prefix`` (a path already in ``out``, or "" for the root).

    ``opaque`` (when given) collects the paths below which anything is accepted unlisted.
    """
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        if opaque is not None and prefix:
            opaque.add(prefix)
        if not schema.get("properties"):
            return
    for name, child in sorted((schema.get("properties") or {}).items()):
        if not prefix and name in STANDARD:
            continue
        path = f"{prefix}.{name}" if prefix else name
        _property(child or {}, path, stop=name in OPAQUE, out=out, opaque=opaque)


def _property(schema: Mapping[str, Any], path: str, *, stop: bool, out: set[str], opaque: set[str] | None) -> None:
    while schema.get("type") == "array" or "items" in schema:
        path += "[]"
        schema = schema.get("items") or {}
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping) and not schema.get("properties"):
        path += "{}"
        out.add(path)
        if not stop:
            _property_values(additional, path, out, opaque)
        return
    out.add(path)
    if stop:
        if opaque is not None:
            opaque.add(path)
        return
    _walk(schema, path, out, opaque)


def _property_values(schema: Mapping[str, Any], path: str, out: set[str], opaque: set[str] | None) -> None:
    """The values of a map: arrays and nested maps extend the path, objects list their properties."""
    while schema.get("type") == "array" or "items" in schema:
        path += "[]"
        out.add(path)
        schema = schema.get("items") or {}
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping) and not schema.get("properties"):
        path += "{}"
        out.add(path)
        _property_values(additional, path, out, opaque)
        return
    _walk(schema, path, out, opaque)


def _crds(text: str) -> Iterable[Mapping[str, Any]]:
    for document in yaml.safe_load_all(text):
        if isinstance(document, Mapping) and document.get("kind") == "CustomResourceDefinition":
            yield document


def _schemas(crd_yaml_text: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    documents = list(_crds(crd_yaml_text))
    if not documents:
        raise ValueError("no CustomResourceDefinition in the text")
    for crd in documents:
        spec = crd.get("spec") or {}
        group = spec.get("group", "")
        kind = (spec.get("names") or {}).get("kind", "")
        for version in spec.get("versions") or []:
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
            key = f"{group}/{version.get('name', '')}"
            if len(documents) > 1:
                key += f" {kind}"
            yield key, schema


def field_paths_by_version(crd_yaml_text: str) -> dict[str, set[str]]:
    """Every version's field paths, keyed ``group/version`` (``kind`` added when the text holds several CRDs)."""
    result: dict[str, set[str]] = {}
    for key, schema in _schemas(crd_yaml_text):
        paths: set[str] = set()
        _walk(schema, "", paths)
        result[key] = paths
    return result


def field_paths(crd_yaml_text: str) -> set[str]:
    """Every field path the CRD's schema accepts (all its versions together)."""
    paths: set[str] = set()
    for version_paths in field_paths_by_version(crd_yaml_text).values():
        paths |= version_paths
    return paths


def opaque_paths(crd_yaml_text: str) -> set[str]:
    """The listed paths below which the schema accepts anything (a ``template`` or
    ``x-kubernetes-preserve-unknown-fields``): a path of another CRD under one of
    these is accepted, though ``field_paths`` does not list it."""
    opaque: set[str] = set()
    for _, schema in _schemas(crd_yaml_text):
        _walk(schema, "", set(), opaque)
    return opaque


def accepted_under(path: str, opaque: set[str]) -> bool:
    """Whether ``path`` lies below (or is) one of the ``opaque`` paths."""
    return any(
        path == o or path.startswith(o + ".") or path.startswith(o + "[") or path.startswith(o + "{") for o in opaque
    )
