"""End to end: a JobFlow created in the API server runs its steps' Jobs there, in dependency order.

A real ``eventbatch serve --cluster kube`` and a real ``eventbatch
kubelet-sim`` run against the API-server fake holding the CRDs of Volcano's
groups. JobTemplates ``a``, ``b``, ``c`` and the JobFlow ``flow`` (``b`` after
``a``, ``c`` after ``a`` and ``b``) are created as a user would with kubectl.
Each step's Job must appear in the API server as a ``batch.volcano.sh`` Job
named ``flow-<step>``, owned by the JobFlow and marked as Volcano's controller
marks it, only once the Jobs it depends on are done (their pods have exited
in the API server, which the kubelet writes before eventbatch can see it),
be submitted to the log exactly once (the watch adapter recognises the
object the actuator created), run to Completed with its status written, and
the JobFlow's status must reach ``Succeed`` with every Job in
``completedJobs``. Deleting the JobFlow deletes its Jobs.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from eventbatch.kube.client import Kube
from eventbatch.kube.crds import GROUPS
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import eventually
from tests.kube.processes import serving
from tests.kube.support import api_version, job_manifest, node_manifest, queue_manifest
from tests.kube.test_e2e import read_log
from tests.kube.test_rbac import grants, ungranted

pytestmark = pytest.mark.slow

STEPS = {"a": [], "b": ["a"], "c": ["a", "b"]}


def template(name: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version("JobTemplate"), "kind": "JobTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": job_manifest(name, replicas=1, duration="1s")["spec"],
    }


def jobflow() -> dict[str, Any]:
    flows = [{"name": step, **({"dependsOn": {"targets": after}} if after else {})} for step, after in STEPS.items()]
    return {"apiVersion": api_version("JobFlow"), "kind": "JobFlow", "metadata": {"name": "flow", "namespace": "default"},
            "spec": {"flows": flows}}


async def flow_jobs(kube: Kube) -> dict[str, dict[str, Any]]:
    listed = await kube.call(kube.custom.list_namespaced_custom_object, *GROUPS["Job"], "default", "jobs")
    return {j["metadata"]["name"]: j for j in listed["items"]}


async def exited(kube: Kube) -> set[str]:
    """The Jobs (by name) whose every pod the kubelet has written as Succeeded."""
    pods = (await kube.call(kube.core.list_namespaced_pod, "default"))["items"]
    by_job: dict[str, list[str]] = collections.defaultdict(list)
    for pod in pods:  # a Job's pod is named <job>-<task>-<index>
        by_job[pod["metadata"]["name"].rsplit("-", 2)[0]].append((pod.get("status") or {}).get("phase", ""))
    return {job for job, phases in by_job.items() if all(p == "Succeeded" for p in phases)}


def phase(job: dict[str, Any]) -> str:
    return ((job.get("status") or {}).get("state") or {}).get("phase", "")


async def test_a_jobflow_runs_its_steps_jobs_in_the_api_server_in_order_and_succeeds(
    apiserver: ApiServer, crds: Kube, tmp_path: Path
) -> None:
    kube = crds
    await kube.call(kube.core.create_node, node_manifest("n1"))
    await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["Queue"], "queues", queue_manifest())
    url = f"sqlite:///{tmp_path / 'events.db'}"
    flow: dict[str, Any] = {}
    appeared: list[str] = []  # step Jobs in the order they appeared
    async with serving(apiserver=apiserver, workdir=tmp_path, log_url=url) as (eb, sim):
        for name in STEPS:
            await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["JobTemplate"], "default", "jobtemplates",
                            template(name))
        flow = await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["JobFlow"], "default", "jobflows",
                               jobflow())

        async def all_completed() -> bool:
            jobs = await flow_jobs(kube)
            done = await exited(kube)  # read after the Jobs: anything done then was done when they were listed
            for step, after in STEPS.items():
                name = f"flow-{step}"
                if name in jobs and name not in appeared:
                    appeared.append(name)
                    missing = [f"flow-{t}" for t in after if f"flow-{t}" not in done]
                    assert not missing, f"{name} created before {missing} were done"
            return len(jobs) == len(STEPS) and all(phase(j) == "Completed" for j in jobs.values())

        await eventually(all_completed, timeout=60, what="the three step Jobs Completed in their status")
        jobs = await flow_jobs(kube)
        for step in STEPS:
            meta = jobs[f"flow-{step}"]["metadata"]
            (owner,) = meta["ownerReferences"]
            assert owner == {"apiVersion": api_version("JobFlow"), "kind": "JobFlow", "name": "flow",
                             "uid": flow["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
            marks = {"volcano.sh/createdByJobTemplate": f"default.{step}", "volcano.sh/createdByJobFlow": "default.flow"}
            assert marks.items() <= meta["labels"].items() and marks.items() <= meta["annotations"].items()
            assert jobs[f"flow-{step}"]["apiVersion"] == api_version("Job")

        async def flow_status() -> dict[str, Any]:
            obj = await kube.call(kube.custom.get_namespaced_custom_object, *GROUPS["JobFlow"], "default", "jobflows", "flow")
            return obj.get("status") or {}

        async def succeeded() -> bool:
            return (await flow_status()).get("state") == {"phase": "Succeed"}

        await eventually(succeeded, timeout=20, what="the JobFlow's status Succeed")
        status = await flow_status()
        assert status["completedJobs"] == ["flow-a", "flow-b", "flow-c"]
        assert status["jobStatusList"] == [{"name": f"flow-{s}", "state": "Completed"} for s in STEPS]

        await kube.call(kube.custom.delete_namespaced_custom_object, *GROUPS["JobFlow"], "default", "jobflows", "flow")

        async def jobs_gone() -> bool:
            return not await flow_jobs(kube)

        await eventually(jobs_gone, timeout=20, what="the JobFlow's Jobs deleted with it")

    assert appeared == ["flow-a", "flow-b", "flow-c"]
    events = await read_log(url)
    submits = collections.Counter(e.payload.job for e in events if e.type == "JobSubmitRequested")
    assert submits == {f"default/flow-{s}": 1 for s in STEPS}, "a step's Job is submitted once: its object is not a second Job"
    created = [c for c in apiserver.audit if c.resource == "jobs" and c.verb == "create" and c.code == 201]
    assert [c.name for c in created] == ["flow-a", "flow-b", "flow-c"] and {c.user for c in created} == {"eventbatch"}
    order = [e.payload.job for e in events if e.type == "JobFlowStepSubmitted"]
    assert order == ["default/flow-a", "default/flow-b", "default/flow-c"]
    calls = [c for c in apiserver.audit if (c.code < 400 or c.code in (404, 409)) and c.user == "eventbatch"]
    assert ungranted(calls, grants(rename={"eventbatch-system": "default"})) == set(), "calls the RBAC does not grant"
