"""End to end: HyperNodes created in the API server decide where a hard network-topology job goes.

A real ``eventbatch serve --cluster kube`` (its scheduler conf with
``network-topology-aware``) and a real ``eventbatch kubelet-sim`` run
against the API-server fake. Two switches are HyperNode objects of tier 1,
each taking two nodes that are not next to each other by name (s-a: n1, n3
by exact name; s-b: n2, n4 by a regex), so a placement that ignored them
would spread the job over both. The job (``networkTopology: {mode: hard,
highestTierAllowed: 1}``, four 2-cpu workers on 4-cpu nodes) must land on
the two nodes of one switch.
"""

from __future__ import annotations

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

pytestmark = pytest.mark.slow

CONF = """\
actions: "enqueue, allocate, backfill"
tiers:
- plugins: [{name: priority}, {name: gang}, {name: conformance}]
- plugins: [{name: drf}, {name: predicates}, {name: proportion}, {name: nodeorder}, {name: network-topology-aware}]
"""


def hypernode(name: str, selectors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": api_version("HyperNode"),
        "kind": "HyperNode",
        "metadata": {"name": name},
        "spec": {"tier": 1, "members": [{"type": "Node", "selector": s} for s in selectors]},
    }


async def test_hypernodes_in_the_api_server_keep_a_hard_job_in_one_switch(
    apiserver: ApiServer, crds: Kube, tmp_path: Path
) -> None:
    kube = crds
    for name in ("n1", "n2", "n3", "n4"):
        await kube.call(kube.core.create_node, node_manifest(name, cpu="4"))
    await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["Queue"], "queues", queue_manifest())
    switches = {"s-a": {"n1", "n3"}, "s-b": {"n2", "n4"}}
    for hn in (
        hypernode("s-a", [{"exactMatch": {"name": "n1"}}, {"exactMatch": {"name": "n3"}}]),
        hypernode("s-b", [{"regexMatch": {"pattern": "^n[24]$"}}]),
    ):
        await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["HyperNode"], "hypernodes", hn)
    conf = tmp_path / "scheduler.yaml"
    conf.write_text(CONF)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    async with serving(apiserver=apiserver, workdir=tmp_path, log_url=url, args=[f"--scheduler-conf={conf}"]) as (eb, sim):
        job = job_manifest("allreduce", replicas=4, duration="1h", networkTopology={"mode": "hard", "highestTierAllowed": 1})
        for task in job["spec"]["tasks"]:
            task["template"]["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "2", "memory": "1Gi"}
        await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", job)

        async def placed() -> set[str] | None:
            pods = (await kube.call(kube.core.list_namespaced_pod, "default"))["items"]
            nodes = [(p.get("spec") or {}).get("nodeName") for p in pods]
            return set(nodes) if len(nodes) == 4 and all(nodes) else None

        async def all_placed() -> bool:
            return await placed() is not None

        await eventually(all_placed, timeout=40, what="four placed pods")
        assert await placed() in switches.values(), "a hard job stays inside one tier-1 HyperNode"
    events = await read_log(url)
    assert sorted(e.payload.hypernode for e in events if e.type == "HyperNodeAdded") == ["s-a", "s-b"]
    assert sorted(e.payload.hypernode for e in events if e.type == "HyperNodeApplyRequested") == ["s-a", "s-b"]
