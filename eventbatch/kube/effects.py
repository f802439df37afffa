"""One side effect per decision, idempotent, against the API server.

Where it sits: the actuator (``eventbatch.kube.actuator``) calls
``Effects.perform`` for the next pending action of an object and appends the
observations it returns. "Already exists", "already bound to that node" and
"not found" on a delete count as done; an object still in the way (an older
pod of the same name that is terminating) raises ``Retry``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import TYPE_CHECKING, Any

from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.client import MERGE, Kube
from eventbatch.kube.crds import Groups, groups
from eventbatch.kube.cronjobs import job_object
from eventbatch.kube.events import post_event
from eventbatch.kube.sshkeys import rsa_key_pair
from eventbatch.kube.translate import REQUESTED_AT
from schemas.decode import to_manifest
from schemas.events import (
    ConfigMapDeletionRequested,
    ConfigMapRequested,
    JobCreated,
    JobRemoved,
    PodBindFailed,
    PodBound,
    PodCreated,
    PodDeleted,
    PodDeletionRequested,
    PodEvicted,
    PodEvictionRequested,
    PodGroupCreated,
    PodGroupDeleted,
    PodGroupUpdated,
    PodRequested,
    SecretDeletionRequested,
    SecretRequested,
    ServiceDeletionRequested,
    ServiceRequested,
)
from schemas.events.base import Event

if TYPE_CHECKING:
    from eventbatch.kube.actuator import Action, KubeActuator

log = logging.getLogger(__name__)
MANAGED_BY = {"app.kubernetes.io/managed-by": "eventbatch"}


# Pod annotations Volcano's deviceshare writes for the device plugin (``volcano.sh/gpu-index``:
# the device indices on the node; the vGPU node and bind phase HAMi's plugin checks).
GPU_INDEX = "volcano.sh/gpu-index"
VGPU_NODE = "volcano.sh/vgpu-node"
BIND_PHASE = "volcano.sh/bind-phase"


class Retry(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


def _split(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return (namespace, name) if name else ("default", namespace)


class Effects:
    def __init__(self, kube: Kube, api_groups: Groups | None = None) -> None:
        self.kube = kube
        self.api_groups = api_groups or groups()

    async def perform(self, action: Action, actuator: KubeActuator) -> list[Event]:
        method = getattr(self, "_" + type(action.event).__name__)
        return await method(action, action.event, actuator)

    # -- owner references ---------------------------------------------------------

    @staticmethod
    def _owned(meta: dict[str, Any], job: str, actuator: KubeActuator) -> dict[str, Any]:
        """``meta`` owned by the Job object it belongs to (references without a uid are dropped)."""
        owner = actuator.owner(job)
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") and r.get("kind") != "Job"]
        if owner is not None:
            refs.append(owner)
        out = {**meta}
        if refs:
            out["ownerReferences"] = refs
        else:
            out.pop("ownerReferences", None)
        return out

    # -- pods ---------------------------------------------------------------------

    async def _PodRequested(self, action: Action, e: PodRequested, actuator: KubeActuator) -> list[Event]:
        namespace, name = _split(e.pod)
        body = to_manifest(e.manifest)
        meta = self._owned(body.get("metadata") or {}, e.job, actuator)
        meta["annotations"] = {**(meta.get("annotations") or {}), REQUESTED_AT: str(action.position)}
        meta.update(name=name, namespace=namespace)
        body["metadata"] = meta
        body.pop("status", None)
        # The Priority admission plugin derives spec.priority from priorityClassName (or the
        # global default) and refuses a pod whose own value differs: leave it to the server.
        (body.get("spec") or {}).pop("priority", None)
        try:
            created = await self.kube.call(self.kube.core.create_namespaced_pod, namespace, body)
            return [PodCreated(pod=e.pod, job=e.job, uid=created["metadata"]["uid"])]
        except ApiException as exc:
            if exc.status == 409:
                existing = await self.kube.call(self.kube.core.read_namespaced_pod, name, namespace)
                xmeta = existing["metadata"]
                mine = (xmeta.get("annotations") or {}).get(REQUESTED_AT) == str(action.position)
                if mine:
                    return [PodCreated(pod=e.pod, job=e.job, uid=xmeta["uid"])]
                raise Retry("an older pod of this name is still terminating", 0.5) from None
            if exc.status in (400, 422):
                await self._report(e.job, "FailedCreatePod", f"pod {e.pod}: {getattr(exc, 'body', '')}")
                return []
            raise

    async def _PodBound(self, action: Action, e: PodBound, actuator: KubeActuator) -> list[Event]:
        namespace, name = _split(e.pod)
        if e.devices:
            # The GPU devices chosen, where Volcano's deviceshare device plugins read them,
            # before the bind (as Volcano's deviceshare writes them in its PreBind).
            annotations = {
                GPU_INDEX: ",".join(str(d) for d in e.devices),
                VGPU_NODE: e.node,
                BIND_PHASE: "allocating",
            }
            try:
                await self.kube.call(
                    self.kube.core.patch_namespaced_pod,
                    name,
                    namespace,
                    {"metadata": {"annotations": annotations}},
                    _content_type=MERGE,
                )
            except ApiException as exc:
                if exc.status == 404:
                    return [PodBindFailed(pod=e.pod, job=e.job, node=e.node, reason="NotFound")]
                raise
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": e.node},
        }
        try:
            # The reply is a Status the generated client cannot deserialize: read raw.
            await self.kube.call(self.kube.core.create_namespaced_pod_binding, name, namespace, body)
            return []
        except ApiException as exc:
            if exc.status == 404:
                return [PodBindFailed(pod=e.pod, job=e.job, node=e.node, reason="NotFound")]
            if exc.status != 409:
                raise
        pod = await self.kube.call(self.kube.core.read_namespaced_pod, name, namespace)
        node = (pod.get("spec") or {}).get("nodeName") or ""
        if node == e.node:
            return []  # already bound there: done
        reason = f"already bound to {node}" if node else "the pod is being deleted"
        return [PodBindFailed(pod=e.pod, job=e.job, node=e.node, reason=reason)]

    async def _delete_pod(self, key: str, actuator: KubeActuator) -> bool:
        """True when a pod was deleted (or is terminating); False when there was none."""
        namespace, name = _split(key)
        pod = actuator.pods.get(key)
        body: dict[str, Any] = {}
        if pod is not None and pod.uid:
            body["preconditions"] = {"uid": pod.uid}
        try:
            await self.kube.call(self.kube.core.delete_namespaced_pod, name, namespace, body=body)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status == 409:  # a newer pod of that name: ours is gone
                return False
            raise

    async def _PodDeletionRequested(self, action: Action, e: PodDeletionRequested, actuator: KubeActuator) -> list[Event]:
        existed = await self._delete_pod(e.pod, actuator)
        pod = actuator.pods.get(e.pod)
        if pod is not None and pod.uid:
            return []  # the watch reports PodDeleted once the pod is gone
        if existed:  # created, but not recorded before a restart: the watch cannot tell it is ours
            raise Retry("waiting for the pod to be gone", 0.5)
        return [PodDeleted(pod=e.pod, job=e.job, reason=e.reason or "NeverCreated")]

    async def _PodEvictionRequested(self, action: Action, e: PodEvictionRequested, actuator: KubeActuator) -> list[Event]:
        existed = await self._delete_pod(e.pod, actuator)
        pod = actuator.pods.get(e.pod)
        if pod is not None and pod.uid:
            return [PodEvicted(pod=e.pod, job=e.job, reason=e.reason)]
        if existed:
            raise Retry("waiting for the pod to be gone", 0.5)
        return [PodEvicted(pod=e.pod, job=e.job, reason=e.reason), PodDeleted(pod=e.pod, job=e.job, reason=e.reason)]

    # -- podgroups ----------------------------------------------------------------

    async def _podgroup(self, e: PodGroupCreated | PodGroupUpdated, actuator: KubeActuator) -> list[Event]:
        group, version = self.api_groups["PodGroup"]
        namespace, name = _split(e.podgroup)
        body = to_manifest(e.manifest)
        body["apiVersion"] = f"{group}/{version}"
        meta = self._owned(body.get("metadata") or {}, e.job, actuator)
        meta.update(name=name, namespace=namespace)
        body["metadata"] = meta
        body.pop("status", None)
        custom = self.kube.custom
        try:
            await self.kube.call(custom.create_namespaced_custom_object, group, version, namespace, "podgroups", body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            await self.kube.call(
                custom.patch_namespaced_custom_object,
                group, version, namespace, "podgroups", name, {"spec": body.get("spec") or {}},
                _content_type=MERGE,
            )
        return []

    async def _PodGroupCreated(self, action: Action, e: PodGroupCreated, actuator: KubeActuator) -> list[Event]:
        return await self._podgroup(e, actuator)

    async def _PodGroupUpdated(self, action: Action, e: PodGroupUpdated, actuator: KubeActuator) -> list[Event]:
        return await self._podgroup(e, actuator)

    async def _PodGroupDeleted(self, action: Action, e: PodGroupDeleted, actuator: KubeActuator) -> list[Event]:
        group, version = self.api_groups["PodGroup"]
        namespace, name = _split(e.podgroup)
        await self._delete(self.kube.custom.delete_namespaced_custom_object, group, version, namespace, "podgroups", name)
        return []

    async def _JobCreated(self, action: Action, e: JobCreated, actuator: KubeActuator) -> list[Event]:
        """A CronJob's run: its Job object, owned by the CronJob (already there: done)."""
        group, version = self.api_groups["Job"]
        namespace, _ = _split(e.job)
        body = job_object(e.manifest, group, version)
        await self._create(self.kube.custom.create_namespaced_custom_object, group, version, namespace, "jobs", body)
        return []

    async def _JobRemoved(self, action: Action, e: JobRemoved, actuator: KubeActuator) -> list[Event]:
        group, version = self.api_groups["Job"]
        namespace, name = _split(e.job)
        await self._delete(self.kube.custom.delete_namespaced_custom_object, group, version, namespace, "jobs", name)
        return []

    # -- services, config maps, secrets ---------------------------------------------

    async def _ServiceRequested(self, action: Action, e: ServiceRequested, actuator: KubeActuator) -> list[Event]:
        namespace, name = _split(e.name)
        body = {**e.manifest, "apiVersion": "v1", "kind": "Service"}
        meta = self._owned(dict(body.get("metadata") or {}), e.job, actuator)
        meta.update(name=name, namespace=namespace)
        body["metadata"] = meta
        await self._create(self.kube.core.create_namespaced_service, namespace, body)
        return []

    async def _ServiceDeletionRequested(self, action: Action, e: ServiceDeletionRequested, actuator: KubeActuator) -> list[Event]:
        namespace, name = _split(e.name)
        await self._delete(self.kube.core.delete_namespaced_service, name, namespace)
        return []

    async def _ConfigMapRequested(self, action: Action, e: ConfigMapRequested, actuator: KubeActuator) -> list[Event]:
        namespace, name = _split(e.name)
        meta = self._owned({"name": name, "namespace": namespace, "labels": {**e.labels, **MANAGED_BY}}, e.job, actuator)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(e.data)}
        if await self._create(self.kube.core.create_namespaced_config_map, namespace, body):
            return []
        current = await self.kube.call(self.kube.core.read_namespaced_config_map, name, namespace)
        if (current.get("data") or {}) != e.data:
            current["data"] = dict(e.data)
            await self.kube.call(self.kube.core.replace_namespaced_config_map, name, namespace, current)
        return []

    async def _ConfigMapDeletionRequested(self, action: Action, e: ConfigMapDeletionRequested, actuator: KubeActuator) -> list[Event]:
        namespace, name = _split(e.name)
        await self._delete(self.kube.core.delete_namespaced_config_map, name, namespace)
        return []

    async def _SecretRequested(self, action: Action, e: SecretRequested, actuator: KubeActuator) -> list[Event]:
        namespace, name = _split(e.name)
        try:
            await self.kube.call(self.kube.core.read_namespaced_secret, name, namespace)
            return []  # an existing key pair is kept
        except ApiException as exc:
            if exc.status != 404:
                raise
        private, public = await asyncio.to_thread(rsa_key_pair, e.key_bits, name)
        data = {"id_rsa": private, "id_rsa.pub": public, "authorized_keys": public, "config": e.config}
        meta = self._owned({"name": name, "namespace": namespace, "labels": {**e.labels, **MANAGED_BY}}, e.job, actuator)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": meta,
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        await self._create(self.kube.core.create_namespaced_secret, namespace, body)
        return []

    async def _SecretDeletionRequested(self, action: Action, e: SecretDeletionRequested, actuator: KubeActuator) -> list[Event]:
        namespace, name = _split(e.name)
        await self._delete(self.kube.core.delete_namespaced_secret, name, namespace)
        return []

    # -- helpers ----------------------------------------------------------------

    async def _create(self, method, *args: Any) -> bool:
        """True when created, False when it already existed."""
        try:
            await self.kube.call(method, *args)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise

    async def _delete(self, method, *args: Any) -> None:
        try:
            await self.kube.call(method, *args)
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def _report(self, job: str, reason: str, message: str) -> None:
        group, version = self.api_groups["Job"]
        namespace, name = _split(job)
        obj = {"apiVersion": f"{group}/{version}", "kind": "Job", "metadata": {"name": name, "namespace": namespace}}
        log.warning("side effect refused", extra={"job": job, "reason": reason, "message": message[:300]})
        await post_event(self.kube, obj, reason=reason, message=message, kind="Warning")
