"""End to end: a CronJob created in the API server runs its Jobs there, as Volcano's controller does.

A real ``eventbatch serve --cluster kube`` and a real ``eventbatch
kubelet-sim`` run against the API-server fake. The CronJob (``@every 2s``,
robfig/cron's interval form, so a run comes within seconds of wall clock)
is created as a user would with kubectl. Its run's Job must appear in the
API server as a Job object owned by the CronJob, be submitted to the log
exactly once (the watch adapter recognises the object the actuator created
as the Job already on the log), run to Completed with its status written,
and the CronJob's status must show the run (``lastScheduleTime``,
``lastSuccessfulTime``). Deleting the CronJob deletes its Job objects.
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


def cronjob_manifest(name: str = "tick") -> dict[str, Any]:
    job = job_manifest(replicas=1, duration="1s", queue="q1")
    return {
        "apiVersion": api_version("CronJob"),
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "schedule": "@every 2s",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"metadata": {"labels": {"app": name}}, "spec": job["spec"]},
        },
    }


async def cron_jobs(kube: Kube, name: str) -> list[dict[str, Any]]:
    listed = await kube.call(kube.custom.list_namespaced_custom_object, *GROUPS["Job"], "default", "jobs")
    return [j for j in listed["items"] if any(o.get("kind") == "CronJob" and o.get("name") == name
                                             for o in j["metadata"].get("ownerReferences") or [])]


async def test_a_cronjob_creates_its_jobs_in_the_api_server_once_and_writes_its_status(
    apiserver: ApiServer, crds: Kube, tmp_path: Path
) -> None:
    kube = crds
    await kube.call(kube.core.create_node, node_manifest("n1"))
    await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["Queue"], "queues", queue_manifest())
    url = f"sqlite:///{tmp_path / 'events.db'}"
    async with serving(apiserver=apiserver, workdir=tmp_path, log_url=url) as (eb, sim):
        cron = await kube.call(
            kube.custom.create_namespaced_custom_object, *GROUPS["CronJob"], "default", "cronjobs", cronjob_manifest()
        )

        async def a_job() -> bool:
            return bool(await cron_jobs(kube, "tick"))

        await eventually(a_job, timeout=30, what="the CronJob's first Job object")
        first = (await cron_jobs(kube, "tick"))[0]
        (owner,) = first["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": api_version("CronJob"), "kind": "CronJob", "name": "tick", "uid": cron["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True,
        }
        assert first["metadata"]["labels"]["app"] == "tick"
        assert first["metadata"]["annotations"]["volcano.sh/cronjob-scheduled-timestamp"]
        name = first["metadata"]["name"]

        async def job_completed() -> bool:
            obj = await kube.call(kube.custom.get_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", name)
            return ((obj.get("status") or {}).get("state") or {}).get("phase") == "Completed"

        await eventually(job_completed, timeout=40, what=f"Job {name} Completed in its status")

        async def cron_status() -> dict[str, Any]:
            obj = await kube.call(kube.custom.get_namespaced_custom_object, *GROUPS["CronJob"], "default", "cronjobs", "tick")
            return obj.get("status") or {}

        async def succeeded() -> bool:
            return "lastSuccessfulTime" in await cron_status()

        await eventually(succeeded, timeout=20, what="the CronJob's lastSuccessfulTime")
        status = await cron_status()
        assert status["lastScheduleTime"].endswith("Z")

        await kube.call(kube.custom.delete_namespaced_custom_object, *GROUPS["CronJob"], "default", "cronjobs", "tick")

        async def jobs_gone() -> bool:
            return not await cron_jobs(kube, "tick")

        await eventually(jobs_gone, timeout=20, what="the CronJob's Jobs deleted with it")

    events = await read_log(url)
    submits = collections.Counter(e.payload.job for e in events if e.type == "JobSubmitRequested")
    assert submits[f"default/{name}"] == 1, "a CronJob's Job is submitted once: its object is not a second Job"
    assert all(count == 1 for count in submits.values()), submits
    created = collections.Counter(c.name for c in apiserver.audit if c.resource == "jobs" and c.verb == "create" and c.code == 201)
    assert created[name] == 1 and all(c.user == "eventbatch" for c in apiserver.audit
                                       if c.resource == "jobs" and c.verb == "create" and c.code == 201)
    assert [e.type for e in events if e.type.startswith("CronJob") and e.type.endswith("Requested")][:1] == ["CronJobSubmitRequested"]
    assert "CronJobDeleteRequested" in {e.type for e in events}
    calls = [c for c in apiserver.audit if (c.code < 400 or c.code in (404, 409)) and c.user == "eventbatch"]
    assert ungranted(calls, grants(rename={"eventbatch-system": "default"})) == set(), "calls the RBAC does not grant"
