"""Kubernetes ``node.k8s.io/v1`` RuntimeClass objects, and the fact a cluster has one.

Where it sits: at the edge. A scenario's ``runtimeClasses`` list and the
kube adapter's RuntimeClass watch decode objects with ``load_runtime_class``
and append ``RuntimeClassAdded`` (``runtime_class_added``) or
``RuntimeClassRemoved``; the scheduler's cluster state folds them
(``projections.cluster_runtime``): a pod naming the class gets its
``overhead.podFixed`` added to its requests and its ``scheduling``
(nodeSelector, tolerations) added to its placement constraints, as the
Kubernetes RuntimeClass admission plugin and kube-scheduler do.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.events.runtimeclass import RuntimeClassAdded
from schemas.quantity import QuantityError, to_resources
from schemas.resources import ObjectMeta, Toleration

API_VERSION = "node.k8s.io/v1"
KIND = "RuntimeClass"


class _Base(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel", forbid_unknown_fields=True):
    pass


class Overhead(_Base, frozen=True):
    pod_fixed: dict[str, str | int | float] = {}


class Scheduling(_Base, frozen=True):
    node_selector: dict[str, str] = {}
    tolerations: list[Toleration] = []


class RuntimeClass(_Base, frozen=True):
    api_version: str
    kind: str
    metadata: ObjectMeta
    handler: str
    overhead: Overhead | None = None
    scheduling: Scheduling | None = None


class RuntimeClassError(ValueError):
    """An object that is not a valid RuntimeClass; ``str()`` names the field."""


def load_runtime_class(raw: Any) -> RuntimeClass:
    """Decode and check one RuntimeClass object (a mapping, as YAML or the API server gives it)."""
    if not isinstance(raw, dict) or raw.get("kind") != KIND or raw.get("apiVersion") != API_VERSION:
        raise RuntimeClassError(f"expected apiVersion {API_VERSION}, kind {KIND}")
    try:
        rc = msgspec.convert(raw, RuntimeClass, strict=False)
    except msgspec.ValidationError as exc:
        raise RuntimeClassError(str(exc)) from None
    if not rc.metadata.name:
        raise RuntimeClassError("metadata.name: required field is missing")
    if not rc.handler:
        raise RuntimeClassError("handler: required field is missing")
    if rc.overhead is not None:
        try:
            to_resources(rc.overhead.pod_fixed)
        except QuantityError as exc:
            raise RuntimeClassError(f"overhead.podFixed.{exc}") from None
    return rc


def runtime_class_added(rc: RuntimeClass) -> RuntimeClassAdded:
    scheduling = rc.scheduling or Scheduling()
    return RuntimeClassAdded(
        name=rc.metadata.name,
        handler=rc.handler,
        overhead=to_resources(rc.overhead.pod_fixed) if rc.overhead is not None else {},
        node_selector=dict(scheduling.node_selector),
        tolerations=list(scheduling.tolerations),
    )
