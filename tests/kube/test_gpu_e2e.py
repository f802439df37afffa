"""End to end: a Volcano Job of vGPU pods is bound per device, and the device annotation reaches the pods.

A real ``eventbatch serve --cluster kube`` runs against the API-server fake
with one node of two GPUs (``nvidia.com/gpu: 2``, and the vGPU resources
Volcano's device plugin registers). Two pods of 60% of a device each cannot
share one device: each goes to a device of its own, and each pod carries the
device index (``volcano.sh/gpu-index``) where the device plugin reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventbatch.kube.client import Kube
from eventbatch.kube.crds import groups
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import ROOT, apply_crds, eventually
from tests.kube.processes import FAST, start
from tests.kube.support import node_manifest
from tests.kube.test_volcano_e2e import fixture

pytestmark = pytest.mark.slow

VGPU = {"volcano.sh/vgpu-number": "1", "volcano.sh/vgpu-cores": "60"}


def gpu_node(name: str) -> dict[str, Any]:
    node = node_manifest(name)
    extra = {"nvidia.com/gpu": "2", "volcano.sh/vgpu-number": "20", "volcano.sh/vgpu-cores": "200"}
    for key in ("capacity", "allocatable"):
        node["status"][key] = {**node["status"][key], **extra}
    return node


def vgpu_job() -> dict[str, Any]:
    container = {"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "1", **VGPU}, "limits": VGPU}}
    return {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "metadata": {"name": "vgpu", "namespace": "default"},
        "spec": {
            "minAvailable": 2,
            "schedulerName": "volcano",
            "queue": "default",
            "tasks": [{"name": "w", "replicas": 2, "template": {"spec": {"containers": [container]}}}],
        },
    }


async def test_a_vgpu_pod_is_bound_and_its_device_annotation_reaches_the_pod(
    apiserver: ApiServer, kube: Kube, tmp_path: Path
) -> None:
    await apply_crds(kube, "volcano")
    await kube.call(kube.core.create_node, gpu_node("g1"))
    queue_group, job_group = groups("volcano")["Queue"], groups("volcano")["Job"]
    default_queue = fixture(ROOT / "deploy" / "overlays" / "volcano" / "default-queue.yaml")
    await kube.call(kube.custom.create_cluster_custom_object, *queue_group, "queues", default_queue)
    serve = await start(
        "serve",
        ["--log", f"sqlite:///{tmp_path / 'events.db'}", "serve", "--cluster=kube", "--api-groups=volcano", *FAST,
         "--leader-elect-identity=eventbatch"],
        apiserver=apiserver, workdir=tmp_path, user="eventbatch",
    )
    try:
        await kube.call(kube.custom.create_namespaced_custom_object, *job_group, "default", "jobs", vgpu_job())

        async def bound() -> list[dict[str, Any]] | None:
            listed = (await kube.call(kube.core.list_namespaced_pod, "default"))["items"]
            done = [p for p in listed if (p.get("spec") or {}).get("nodeName")]
            return done if len(done) == 2 else None

        await eventually(bound, timeout=40, what="two bound vGPU pods")
        listed = await bound()
        assert listed is not None
        indices = sorted((p["metadata"].get("annotations") or {}).get("volcano.sh/gpu-index") for p in listed)
        assert indices == ["0", "1"]  # 0.6 + 0.6 of one device would not fit: one device each
        assert {(p["metadata"].get("annotations") or {}).get("volcano.sh/vgpu-node") for p in listed} == {"g1"}
    except BaseException:
        print(serve.log_text()[-4000:])
        raise
    finally:
        await serve.stop()
