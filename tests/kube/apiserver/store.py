"""The fake API server's storage: objects, one global resourceVersion, history.

Where it sits: below the HTTP layer of the fake API server. Every write
(create, update, status update, delete) bumps the one global resourceVersion,
stamps it on the object and appends a change to the history that watches
replay from. ``compact()`` forgets the history, so a watch from an older
resourceVersion gets 410 Expired, as after etcd compaction.

Deletion follows Kubernetes: an object with finalizers, or a pod bound to a
node deleted with a grace period, only gets ``deletionTimestamp``; it is
removed once its finalizers are gone (or the pod is deleted again with grace
period 0).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from tests.kube.apiserver import errors
from tests.kube.apiserver.resources import ResourceType

Key = tuple[str, str, str]  # (group/plural, namespace, name)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Change:
    rv: int
    resource: str  # ResourceType.gr
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]
    prev: dict[str, Any] | None


class Store:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.rv = 1
        self.history: list[Change] = []
        self.epoch = 0  # bumped by every compaction
        self.compacted = 0  # watches from a resourceVersion below this get 410
        self.changed = asyncio.Condition()

    # -- reads ---------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.objects.get((rt.gr, namespace, name))
        if obj is None:
            raise errors.not_found(rt.gr, name)
        return copy.deepcopy(obj)

    def list(self, rt: ResourceType, namespace: str | None) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(obj)
            for (gr, ns, _), obj in sorted(self.objects.items())
            if gr == rt.gr and (namespace is None or ns == namespace)
        ]

    # -- writes --------------------------------------------------------------

    async def _record(self, rt: ResourceType, kind: str, obj: dict[str, Any], prev: dict[str, Any] | None) -> None:
        self.history.append(Change(self.rv, rt.gr, kind, copy.deepcopy(obj), prev))
        async with self.changed:
            self.changed.notify_all()

    def _bump(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    async def create(self, rt: ResourceType, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise errors.invalid(rt.kind, "", "metadata.name: Required value: name or generateName is required")
        key = (rt.gr, namespace, name)
        if key in self.objects:
            raise errors.already_exists(rt.gr, name)
        if rt.namespaced:
            if ("namespaces", "", namespace) not in self.objects:
                raise errors.not_found("namespaces", namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta.pop("deletionTimestamp", None)
        if rt.custom:
            meta["generation"] = 1
        self._bump(obj)
        self.objects[key] = obj
        await self._record(rt, "ADDED", obj, None)
        return copy.deepcopy(obj)

    async def replace(
        self, rt: ResourceType, namespace: str, name: str, obj: dict[str, Any], *, subresource: str = ""
    ) -> dict[str, Any]:
        """Write ``obj`` over the stored object (PUT or a patch result)."""
        key = (rt.gr, namespace, name)
        old = self.objects.get(key)
        if old is None:
            raise errors.not_found(rt.gr, name)
        meta = obj.setdefault("metadata", {})
        wanted = meta.get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise errors.conflict(
                rt.gr, name, "the object has been modified; please apply your changes to the latest version and try again"
            )
        if meta.get("name", name) != name:
            raise errors.invalid(rt.kind, name, "metadata.name: the name of the object does not match")
        new = copy.deepcopy(old)
        if subresource == "status":
            new["status"] = copy.deepcopy(obj.get("status"))
        else:
            for field, value in obj.items():
                if field in ("metadata", "apiVersion", "kind"):
                    continue
                if field == "status" and rt.status:
                    continue  # the status subresource owns it
                new[field] = copy.deepcopy(value)
            for field in [f for f in new if f not in obj and f not in ("metadata", "apiVersion", "kind")]:
                if not (field == "status" and rt.status):
                    del new[field]
            for field in ("labels", "annotations", "finalizers", "ownerReferences"):
                if field in meta:
                    new["metadata"][field] = copy.deepcopy(meta[field])
                else:
                    new["metadata"].pop(field, None)
            # a custom object's generation counts changes of everything but metadata and,
            # where the CRD has a status subresource, status
            if rt.custom and any(
                new.get(f) != old.get(f) for f in {*new, *old} - {"metadata", "apiVersion", "kind"} if f != "status" or not rt.status
            ):
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if new == old:
            return copy.deepcopy(old)
        self._bump(new)
        deleting = new["metadata"].get("deletionTimestamp")
        if deleting and not new["metadata"].get("finalizers") and not self._graceful_pod(rt, new):
            del self.objects[key]
            await self._record(rt, "DELETED", new, old)
            return copy.deepcopy(new)
        self.objects[key] = new
        await self._record(rt, "MODIFIED", new, old)
        return copy.deepcopy(new)

    @staticmethod
    def _graceful_pod(rt: ResourceType, obj: dict[str, Any]) -> bool:
        return rt.gr == "pods" and bool(obj["metadata"].get("deletionGracePeriodSeconds"))

    async def delete(
        self, rt: ResourceType, namespace: str, name: str, options: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """``(object, gone)``: gone is False when deletion waits on finalizers or a grace period."""
        key = (rt.gr, namespace, name)
        old = self.objects.get(key)
        if old is None:
            raise errors.not_found(rt.gr, name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise errors.conflict(rt.gr, name, "Precondition failed: UID in precondition does not match")
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.gr, name, "Precondition failed: ResourceVersion in precondition does not match")
        grace = options.get("gracePeriodSeconds")
        if rt.gr == "pods":
            if grace is None:
                grace = (old.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            if not (old.get("spec") or {}).get("nodeName"):
                grace = 0  # a pod that never ran is removed at once
        new = copy.deepcopy(old)
        meta = new["metadata"]
        if (rt.gr == "pods" and grace) or meta.get("finalizers"):
            meta.setdefault("deletionTimestamp", now_rfc3339())
            meta["deletionGracePeriodSeconds"] = grace if rt.gr == "pods" else 0
            if new != old:
                self._bump(new)
                self.objects[key] = new
                await self._record(rt, "MODIFIED", new, old)
            return copy.deepcopy(new), False
        meta.setdefault("deletionTimestamp", now_rfc3339())
        meta["deletionGracePeriodSeconds"] = 0
        self._bump(new)
        del self.objects[key]
        await self._record(rt, "DELETED", new, old)
        return copy.deepcopy(new), True

    def compact(self) -> None:
        """Forget the history up to now: older watches get 410 Expired."""
        self.compacted = self.rv
        self.history = []
        self.epoch += 1
