"""End to end in either API groups: Volcano's Job and Queue examples, applied unchanged, run to Completed.

A real ``eventbatch serve --cluster kube --api-groups=<groups>`` and a real
``eventbatch kubelet-sim`` run against the API-server fake holding the CRDs
of those groups (``deploy/crds/<groups>``). With Volcano's groups, Volcano's
``example/job.yaml`` (6 nginx replicas, ssh/env/svc plugins, queue
``default``) and ``example/deployment/queue.yaml`` (Queue ``test``) are
created exactly as kept in ``tests/fixtures/volcano/examples``, next to the
default queue of ``deploy/overlays/volcano``; with the project's groups, the
same objects with only their apiVersion changed. nginx never exits, so the
test plays the kubelet's part of a container exiting 0 once every pod runs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventbatch.kube.client import MERGE, Kube
from eventbatch.kube.crds import groups
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import ROOT, apply_crds, eventually
from tests.kube.processes import FAST, kubelet_sim, start
from tests.kube.support import node_manifest

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "tests" / "fixtures" / "volcano" / "examples"


def fixture(path: Path) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return doc


def in_groups(obj: dict[str, Any], api_groups: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "/".join(groups(api_groups)[obj["kind"]])
    return out


async def pods(kube: Kube) -> list[dict[str, Any]]:
    return (await kube.call(kube.core.list_namespaced_pod, "default"))["items"]


def exited(pod: dict[str, Any]) -> dict[str, Any]:
    """The status a kubelet writes when the pod's containers exit 0."""
    return {
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {**c, "ready": False, "started": False, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
                for c in pod["status"].get("containerStatuses") or []
            ],
        }
    }


@pytest.mark.parametrize("api_groups", ["volcano", "eventbatch"])
async def test_volcanos_job_and_queue_examples_run_to_completed(
    apiserver: ApiServer, kube: Kube, tmp_path: Path, api_groups: str
) -> None:
    await apply_crds(kube, api_groups)
    job, queue = fixture(EXAMPLES / "job.yaml"), fixture(EXAMPLES / "deployment" / "queue.yaml")
    default_queue = fixture(ROOT / "deploy" / "overlays" / api_groups / "default-queue.yaml")
    if api_groups == "volcano":
        assert job["apiVersion"] == "batch.volcano.sh/v1alpha1" and queue["apiVersion"] == "scheduling.volcano.sh/v1beta1"
    job, queue = in_groups(job, api_groups), in_groups(queue, api_groups)  # unchanged in Volcano's groups
    job_group, queue_group = groups(api_groups)["Job"], groups(api_groups)["Queue"]
    for name in ("n1", "n2"):
        await kube.call(kube.core.create_node, node_manifest(name))
    for q in (default_queue, queue):
        await kube.call(kube.custom.create_cluster_custom_object, *queue_group, "queues", q)
    sim = await kubelet_sim(apiserver=apiserver, workdir=tmp_path)
    serve = await start(
        "serve",
        ["--log", f"sqlite:///{tmp_path / 'events.db'}", "serve", "--cluster=kube", f"--api-groups={api_groups}", *FAST,
         "--leader-elect-identity=eventbatch"],
        apiserver=apiserver, workdir=tmp_path, user="eventbatch",
    )
    try:
        await kube.call(kube.custom.create_namespaced_custom_object, *job_group, "default", "jobs", job)
        replicas = job["spec"]["tasks"][0]["replicas"]

        async def all_running() -> bool:
            listed = await pods(kube)
            return len(listed) == replicas and all((p.get("status") or {}).get("phase") == "Running" for p in listed)

        await eventually(all_running, timeout=40, what=f"{replicas} running pods")
        for pod in await pods(kube):
            assert pod["metadata"]["ownerReferences"][0]["apiVersion"] == "/".join(job_group)
            await kube.call(
                kube.core.patch_namespaced_pod_status, pod["metadata"]["name"], "default", exited(pod), _content_type=MERGE
            )

        async def phase(name: str) -> str:
            obj = await kube.call(kube.custom.get_namespaced_custom_object, *job_group, "default", "jobs", name)
            return ((obj.get("status") or {}).get("state") or {}).get("phase", "")

        async def completed() -> bool:
            return await phase(job["metadata"]["name"]) == "Completed"

        await eventually(completed, timeout=40, what="the job to complete")

        async def queue_open() -> bool:
            obj = await kube.call(kube.custom.get_cluster_custom_object, *queue_group, "queues", "test")
            return (obj.get("status") or {}).get("state") == "Open"

        await eventually(queue_open, timeout=20, what="the example queue's status")
        group = groups(api_groups)["PodGroup"]
        listed = await kube.call(kube.custom.list_namespaced_custom_object, *group, "default", "podgroups")
        assert [pg["spec"]["minMember"] for pg in listed["items"]] == [job["spec"]["minAvailable"]]
    except BaseException:
        print(serve.log_text()[-4000:], sim.log_text()[-2000:])
        raise
    finally:
        await serve.stop()
        await sim.stop()
