"""The resources the fake API server serves: built-ins, and CRDs once created.

Where it sits: the router of the fake API server looks a request's
``(group, version, plural)`` up here. Built-in core/v1, coordination.k8s.io,
scheduling.k8s.io and node.k8s.io resources are always served; a custom resource is
served once its CustomResourceDefinition has been created through the API,
with the scope, kind, status subresource and openAPIV3Schema the CRD declares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    status: bool = False  # a status subresource
    custom: bool = False
    schema: dict[str, Any] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gr(self) -> str:
        """``plural.group`` as error messages and RBAC name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


BUILTIN = [
    ResourceType("", "v1", "pods", "Pod", True, status=True),
    ResourceType("", "v1", "nodes", "Node", False, status=True),
    ResourceType("", "v1", "namespaces", "Namespace", False, status=True),
    ResourceType("", "v1", "services", "Service", True, status=True),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True),
    ResourceType("", "v1", "events", "Event", True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False),
    ResourceType("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False),
]


def from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The served versions of a CRD manifest."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                status="status" in (version.get("subresources") or {}),
                custom=True,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            )
        )
    return out
