"""End to end: what ``kubectl`` shows of a gang that waits for room, then runs.

A real ``eventbatch serve --cluster kube`` and a real ``eventbatch
kubelet-sim`` against the API-server fake. A Job of 3 pods (1 cpu each,
minAvailable 3) is created on a cluster of two 1.5-cpu nodes (room enough in all for its
queue to admit it, but one pod per node): its PodGroup's
status gets the ``Unschedulable`` condition with the message ``eventbatch
why`` prints, and its pods ``PodScheduled=False`` (reason ``Unschedulable``).
A third node is added: the PodGroup gets ``Scheduled``, the pods
``PodScheduled=True``, each pod a ``Scheduled`` Event naming its node, and the
Job's status on the API server equals ``eventbatch job view -o json``'s,
field for field.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from eventbatch.kube.client import Kube
from eventbatch.kube.crds import GROUPS
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import ROOT, eventually
from tests.kube.processes import serving
from tests.kube.support import job_manifest, node_manifest, queue_manifest

pytestmark = pytest.mark.slow


async def cli(log_url: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", log_url, *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


async def test_a_gang_that_waits_then_runs_shows_its_conditions_events_and_job_status(
    apiserver: ApiServer, crds: Kube, tmp_path: Path
) -> None:
    kube = crds
    url = f"sqlite:///{tmp_path / 'events.db'}"
    for name in ("n1", "n2"):  # 3 cpus in all, room for the gang in its queue, but one pod per node
        await kube.call(kube.core.create_node, node_manifest(name, cpu="1500m"))
    await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["Queue"], "queues", queue_manifest())
    async with serving(apiserver=apiserver, workdir=tmp_path, log_url=url) as (eb, sim):
        await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs",
                        job_manifest(replicas=3, duration="600s"))

        async def podgroup() -> dict[str, Any]:
            listed = await kube.call(kube.custom.list_namespaced_custom_object, *GROUPS["PodGroup"], "default", "podgroups")
            return listed["items"][0] if listed["items"] else {}

        async def pods() -> list[dict[str, Any]]:
            return (await kube.call(kube.core.list_namespaced_pod, "default"))["items"]

        async def waiting() -> bool:
            # The gang waits for room: its pods exist, and the podgroup's condition says what they
            # say (an earlier one, from before the queue was known, is rewritten at most every 200 ms).
            waits = [condition(p, "PodScheduled") for p in await pods()]
            unschedulable = condition(await podgroup(), "Unschedulable")
            return unschedulable is not None and len(waits) == 3 and all(
                c is not None and c["status"] == "False" and c["message"] == unschedulable["message"] for c in waits)

        await eventually(waiting, timeout=30, what="the gang's Unschedulable condition on its podgroup and pods")
        unschedulable = condition(await podgroup(), "Unschedulable")
        assert unschedulable is not None and unschedulable["status"] == "True" and unschedulable["message"]
        assert condition(await podgroup(), "Scheduled") is None
        why = await cli(url, "why", "demo")
        assert f"why: {unschedulable['reason']}: {unschedulable['message']}" in why, why
        for pod in await pods():
            scheduled = condition(pod, "PodScheduled")
            assert scheduled is not None
            assert (scheduled["reason"], scheduled["message"]) == ("Unschedulable", unschedulable["message"])
            assert not pod["spec"].get("nodeName")

        await kube.call(kube.core.create_node, node_manifest("n3", cpu="2"))

        async def running() -> bool:
            listed = await pods()
            return (condition(await podgroup(), "Scheduled") is not None and len(listed) == 3
                    and all((p.get("status") or {}).get("phase") == "Running" for p in listed))

        await eventually(running, timeout=30, what="the gang to run")
        scheduled = condition(await podgroup(), "Scheduled")
        assert scheduled is not None and scheduled["status"] == "True"
        assert scheduled["reason"] == "tasks in gang are ready to be scheduled"
        nodes = {}
        for pod in await pods():
            cond = condition(pod, "PodScheduled")
            assert cond is not None and cond["status"] == "True"
            nodes[pod["metadata"]["name"]] = pod["spec"]["nodeName"]

        async def scheduled_events() -> dict[str, str]:
            listed = (await kube.call(kube.core.list_namespaced_event, "default"))["items"]
            return {e["involvedObject"]["name"]: e["message"] for e in listed
                    if e["reason"] == "Scheduled" and e["involvedObject"]["kind"] == "Pod"}

        async def all_scheduled_events() -> bool:
            return len(await scheduled_events()) == 3

        await eventually(all_scheduled_events, timeout=20, what="a Scheduled event per pod")
        assert await scheduled_events() == {name: f"Successfully assigned default/{name} to {node}"
                                            for name, node in nodes.items()}
        listed = (await kube.call(kube.core.list_namespaced_event, "default"))["items"]
        by_pod = {e["involvedObject"]["name"]: e["involvedObject"]["uid"] for e in listed if e["reason"] == "Scheduled"
                  and e["involvedObject"]["kind"] == "Pod"}
        assert by_pod == {p["metadata"]["name"]: p["metadata"]["uid"] for p in await pods()}  # kubectl describe finds them
        assert any(e["reason"] == "Unschedulable" and e["type"] == "Warning" and e["involvedObject"]["kind"] == "PodGroup"
                   and unschedulable["message"] in e["message"] for e in listed)

        async def job_status() -> dict[str, Any]:
            obj = await kube.call(kube.custom.get_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", "demo")
            return obj.get("status") or {}

        async def job_running() -> bool:
            status = await job_status()
            return status.get("state", {}).get("phase") == "Running" and status.get("running") == 3

        await eventually(job_running, timeout=20, what="the Job's status: Running, 3 running")
        view = json.loads(await cli(url, "job", "view", "demo", "-o", "json"))
        listed = (await kube.call(kube.core.list_namespaced_event, "default"))["items"]
        assert sorted(e["message"] for e in listed if e["involvedObject"]["kind"] == "Job") == [
            "Pending -> Running: MinAvailableReached (3 pods started, minAvailable is 3)",
            "Pending: Submitted (waiting for the queue to admit the PodGroup)",
        ]
        assert await job_status() == view["status"]
        assert [c["status"] for c in view["status"]["conditions"]][-1] == "Running"
        assert {"runningDuration", "minAvailable", "taskStatusCount"} <= set(view["status"])
        from tests.kube.test_rbac import grants, ungranted

        calls = [c for c in apiserver.audit if (c.code < 400 or c.code in (404, 409)) and c.user == "eventbatch"]
        assert {(c.resource, c.verb) for c in calls} >= {("pods/status", "patch"), ("events", "create")}
        assert ungranted(calls, grants(rename={"eventbatch-system": "default"})) == set(), "calls the RBAC does not grant"
