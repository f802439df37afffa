"""``/metrics`` of a running ``eventbatch serve --cluster kube``, scraped and parsed with
``prometheus_client``'s parser, agrees with the read models after a workload in the cluster.

A real ``serve --cluster kube --probe-port 0`` and a real ``kubelet-sim`` run
against the API-server fake holding Volcano's CRDs. Two nodes of 8 cpu, a
Queue ``research`` (weight 2, deserved 4 cpu / 8Gi, capability 12 cpu), a Job
``small`` of two 1-cpu pods that run, and a Job ``huge`` of one 9-cpu pod no
node fits are created as kubectl would. Once serve has settled, the scrape
must show what ``queue get research -o json`` and ``job list -o json`` on the
same log show: the queue's allocated, deserved and share, the huge job's one
unschedulable task, every handler at the log's end, sessions counted by the
latency histograms, and the kube adapter's own metrics (the leader, the
informers' watch counters, the actuator's actions and the status writes).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventbatch.kube.client import Kube
from eventbatch.kube.crds import GROUPS
from eventbatch.log.factory import open_log
from schemas.quantity import to_resources
from tests.kube.apiserver import ApiServer
from tests.kube.conftest import ROOT, eventually
from tests.kube.processes import Process, serving
from tests.kube.support import job_manifest, node_manifest, queue_manifest
from tests.kube.test_e2e import read_log

pytestmark = pytest.mark.slow

Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]
RESEARCH = (("queue_name", "research"),)
HUGE = (("job_id", "default/huge"),)


async def scrape(process: Process) -> Scrape:
    """Every sample of the serve process's /metrics, by name and sorted labels, at the port it logged."""
    found = re.search(r"probes listening port=(\d+)", process.log_text())
    assert found, "the probe port is logged"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{found[1]}/metrics") as response:
            assert response.status == 200
            text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def by_label(metrics: Scrape, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for (n, labels), v in metrics.items() if n == name}


def settled(metrics: Scrape) -> bool:
    positions = by_label(metrics, "eventbatch_handler_position", "handler")
    end = metrics.get(("eventbatch_log_end_position", ()))
    return (
        metrics.get(("volcano_queue_allocated_milli_cpu", RESEARCH)) == 2000
        and metrics.get(("volcano_unschedule_task_count", HUGE)) == 1
        and metrics.get(("volcano_queue_pod_group_running_count", RESEARCH)) == 1
        and bool(positions) and set(positions.values()) == {end}
    )


def job(name: str, *, cpu: str, replicas: int) -> dict[str, Any]:
    manifest = job_manifest(name, replicas=replicas, duration="600s", queue="research")
    manifest["spec"]["tasks"][0]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = cpu
    return manifest


async def log_end(url: str) -> int:
    async with open_log(url) as log:
        return await log.end_position()


async def cli(url: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_metrics_of_a_running_kube_serve_agree_with_the_read_models(
    apiserver: ApiServer, crds: Kube, tmp_path: Path
) -> None:
    kube = crds
    for name in ("n1", "n2"):
        await kube.call(kube.core.create_node, node_manifest(name, cpu="8", memory="32Gi"))
    research = queue_manifest("research", weight=2)
    research["spec"].update(deserved={"cpu": "4", "memory": "8Gi"}, capability={"cpu": "12"})
    await kube.call(kube.custom.create_cluster_custom_object, *GROUPS["Queue"], "queues", research)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    async with serving(apiserver=apiserver, workdir=tmp_path, log_url=url) as (eb, sim):
        await eventually(lambda: "probes listening port=" in eb.log_text(), timeout=30, what="the probe port in the log")
        for manifest in (job("small", cpu="1", replicas=2), job("huge", cpu="9", replicas=1)):
            await kube.call(kube.custom.create_namespaced_custom_object, *GROUPS["Job"], "default", "jobs", manifest)

        async def small_running() -> bool:  # the kubelet started both pods and serve put that on the log
            return [e.type for e in await read_log(url) if e.key.startswith("default/small-")].count("PodStarted") == 2

        await eventually(small_running, timeout=60, what="the small job's two pods started, on the log")
        last: list[Scrape] = [{}]

        async def caught_up() -> bool:
            last[0] = await scrape(eb)
            return settled(last[0])

        await eventually(caught_up, timeout=60, what="serve to settle")
        metrics = last[0]
        end = await log_end(url)

    status = json.loads(await cli(url, "queue", "get", "research", "-o", "json"))["status"]
    allocated, deserved = to_resources(status["allocated"]), to_resources(status["deserved"])
    assert allocated == {"cpu": 2000, "memory": 2 * 2**30}
    assert metrics[("volcano_queue_allocated_milli_cpu", RESEARCH)] == allocated["cpu"]
    assert metrics[("volcano_queue_allocated_memory_bytes", RESEARCH)] == allocated["memory"]
    assert metrics[("volcano_queue_deserved_milli_cpu", RESEARCH)] == deserved["cpu"] == 4000
    assert metrics[("volcano_queue_deserved_memory_bytes", RESEARCH)] == deserved["memory"] == 8 * 2**30
    assert metrics[("volcano_queue_capacity_milli_cpu", RESEARCH)] == 12000
    assert metrics[("volcano_queue_share", RESEARCH)] == status["share"] == 0.5
    assert metrics[("volcano_queue_weight", RESEARCH)] == 2
    assert metrics[("volcano_queue_pod_group_running_count", RESEARCH)] == status["running"] == 1
    assert metrics[("volcano_queue_pod_group_inqueue_count", RESEARCH)] == status["inqueue"]
    assert metrics[("volcano_queue_pod_group_pending_count", RESEARCH)] == status["pending"]
    queues = {q["queue"] for q in json.loads(await cli(url, "queue", "list", "-o", "json"))}
    assert set(by_label(metrics, "volcano_queue_weight", "queue_name")) == queues

    # the huge job's pod (9 cpu: no node has that many) waits; a session bound the small job's two
    jobs = {j["job"]: j for j in json.loads(await cli(url, "job", "list", "-o", "json"))}
    assert metrics[("volcano_unschedule_task_count", HUGE)] == jobs["default/huge"]["status"]["pending"] == 1
    assert by_label(metrics, "volcano_unschedule_task_count", "job_id") == {"default/huge": 1}
    assert metrics[("volcano_unschedule_job_count", ())] == 1
    assert jobs["default/small"]["status"]["running"] == 2
    assert jobs["default/small"]["status"]["state"]["phase"] == "Running"
    assert metrics[("volcano_schedule_attempts_total", (("result", "scheduled"),))] == 2
    assert metrics[("volcano_schedule_attempts_total", (("result", "unschedulable"),))] >= 1

    # every handler had read the log to its end when scraped (nothing was appended after: serve settled)
    assert metrics[("eventbatch_log_end_position", ())] == end
    positions = by_label(metrics, "eventbatch_handler_position", "handler")
    assert set(positions) >= {"queue-controller", "job-controller", "scheduler"}
    assert set(positions.values()) == {end}
    assert set(by_label(metrics, "eventbatch_handler_lag_records", "handler").values()) == {0}
    assert metrics[("eventbatch_log_records_quarantined_total", ())] == 0
    assert metrics[("eventbatch_handler_failures_total", (("handler", "scheduler"), ("step", "decide")))] == 0

    # the histograms counted the sessions and appends that happened
    sessions = metrics[("volcano_e2e_scheduling_latency_milliseconds_count", ())]
    assert sessions >= 1
    assert metrics[("volcano_open_session_duration_milliseconds_count", ())] == sessions
    assert metrics[("volcano_action_scheduling_latency_milliseconds_count", (("action", "allocate"),))] == sessions
    appended = metrics[("eventbatch_log_appended_total", ())]
    assert 1 <= metrics[("eventbatch_log_append_duration_seconds_count", ())] <= appended

    # kube mode's own: this replica leads; every watch of every reactor listed once and counted
    # the watch events it folded (the two jobs and their three pods, written to since)
    assert metrics[("eventbatch_leader", ())] == 1
    watches = {
        name: {(dict(labels)["reactor"], dict(labels)["resource"]): v for (n, labels), v in metrics.items() if n == name}
        for name in ("eventbatch_watch_events_total", "eventbatch_watch_relists_total", "eventbatch_watch_reconnects_total")
    }
    events = watches["eventbatch_watch_events_total"]
    assert set(watches["eventbatch_watch_relists_total"]) == set(watches["eventbatch_watch_reconnects_total"]) == set(events)
    assert set(events) >= {
        ("kube-observer", "nodes"), ("kube-observer", "queues"), ("kube-observer", "jobs"), ("kube-observer", "pods:volcano"),
        ("kube-operators", "podgroups"), ("kube-operators", "pods:volcano"), ("kube-flows", "jobflows"), ("kube-flows", "jobtemplates"),
    }
    assert set(watches["eventbatch_watch_relists_total"].values()) == {1}
    assert events[("kube-observer", "jobs")] >= 2 and events[("kube-observer", "pods:volcano")] >= 3
    assert events[("kube-operators", "pods:volcano")] >= 3 and events[("kube-operators", "podgroups")] >= 2
    # the actuator made what the log asked for: two podgroups, three pods, two bindings
    actions = by_label(metrics, "eventbatch_actuator_actions_total", "decision")
    assert actions == {"PodGroupCreated": 2, "PodRequested": 3, "PodBound": 2}
    assert metrics[("eventbatch_actuator_pending", ())] == 0
    assert metrics[("eventbatch_status_writes_total", ())] > 0
    assert metrics[("eventbatch_reactor_appended_total", (("reactor", "kube-observer"),))] > 0
