"""``/metrics`` of a running ``eventbatch serve --cluster sim``, scraped and parsed with
``prometheus_client``'s parser, agrees with the read models after a simulated workload:
a queue's allocated and deserved resources and its share as ``queue get`` shows them,
the pods a session could not place, every handler caught up with the log, and the
latency histograms counting the appends and sessions that happened."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventbatch.clock import SystemClock
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from schemas.events import JobSubmitRequested, QueueCreateRequested
from schemas.loaders import load_manifests
from schemas.quantity import to_resources
from tests.kube.conftest import eventually
from tests.support.serving import QUICK, ROOT, seed

RESEARCH = """
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: research}
spec: {weight: 2, deserved: {cpu: "4", memory: 8Gi}, capability: {cpu: "12"}}
"""
JOB = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {{name: {name}}}
spec:
  queue: research
  minAvailable: {replicas}
  tasks:
    - name: w
      replicas: {replicas}
      template:
        metadata: {{annotations: {{eventbatch.io/sim-duration: 600s}}}}
        spec: {{containers: [{{name: c, image: busybox, resources: {{requests: {{cpu: "{cpu}", memory: 1Gi}}}}}}]}}
"""

Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Scrape:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def cli(url: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def read_all(log):
    end = await log.end_position()
    if end:
        async for envelope in log.read(0):
            yield envelope
            if envelope.position + 1 >= end:
                break


def settled(metrics: Scrape) -> bool:
    lags = [v for (name, _), v in metrics.items() if name == "eventbatch_handler_lag_records"]
    return (
        metrics.get(("volcano_queue_allocated_milli_cpu", (("queue_name", "research"),))) == 2000
        and metrics.get(("volcano_unschedule_task_count", (("job_id", "default/huge"),))) == 1
        and bool(lags) and not any(lags)
    )


@pytest.mark.slow
async def test_metrics_of_a_running_serve_agree_with_the_read_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    await seed(url)  # the default queue, two nodes of 8 cpu and 16Gi
    output = tmp_path / "serve.out"
    env = {**os.environ, **QUICK, "EVENTBATCH_LOG_LEVEL": "INFO"}
    with output.open("wb") as sink:
        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventbatch", "--log", url, "serve", "--cluster", "sim", "--probe-port", "0",
            cwd=ROOT, env=env, stdout=sink, stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await eventually(lambda: re.search(r"probes listening port=(\d+)", output.read_text()) is not None, timeout=30)
        found = re.search(r"probes listening port=(\d+)", output.read_text())
        assert found is not None
        port = int(found[1])
        now = SystemClock().now()
        async with open_log(url) as log:
            await log.append(
                [Envelope.wrap(QueueCreateRequested(queue="research", manifest=load_manifests(RESEARCH)[0]), recorded_at=now)]
                + [
                    Envelope.wrap(
                        JobSubmitRequested(job=f"default/{name}", manifest=load_manifests(JOB.format(name=name, cpu=cpu, replicas=replicas))[0]),
                        recorded_at=now,
                    )
                    for name, cpu, replicas in (("small", "1", 2), ("huge", "9", 1))
                ]
            )
        last: list[Scrape] = [{}]

        async def started() -> bool:  # the simulated kubelet's last effects: then only waiting is left
            async with open_log(url) as log:
                types = [e.type async for e in read_all(log)]
            return types.count("PodStarted") == 2

        await eventually(started, timeout=60, what="the small job's two pods to start")

        async def caught_up() -> bool:
            last[0] = await scrape(port)
            async with open_log(url) as log:
                end = await log.end_position()
            return settled(last[0]) and last[0].get(("eventbatch_log_end_position", ())) == end

        await eventually(caught_up, timeout=60, what=f"serve to settle; output:\n{output.read_text()[-2000:]}")
        metrics = last[0]
        async with open_log(url) as log:
            end = await log.end_position()
    finally:
        serve.terminate()
        await serve.wait()

    research = (("queue_name", "research"),)
    status = json.loads(await cli(url, "queue", "get", "research", "-o", "json"))["status"]
    allocated, deserved = to_resources(status["allocated"]), to_resources(status["deserved"])
    assert allocated == {"cpu": 2000, "memory": 2 * 2**30}
    assert metrics[("volcano_queue_allocated_milli_cpu", research)] == allocated["cpu"]
    assert metrics[("volcano_queue_allocated_memory_bytes", research)] == allocated["memory"]
    assert metrics[("volcano_queue_deserved_milli_cpu", research)] == deserved["cpu"] == 4000
    assert metrics[("volcano_queue_deserved_memory_bytes", research)] == deserved["memory"] == 8 * 2**30
    assert metrics[("volcano_queue_capacity_milli_cpu", research)] == 12000
    assert metrics[("volcano_queue_share", research)] == status["share"] == 0.5
    assert metrics[("volcano_queue_weight", research)] == 2
    assert metrics[("volcano_queue_pod_group_running_count", research)] == status["running"] == 1
    assert metrics[("volcano_queue_allocated_milli_cpu", (("queue_name", "default"),))] == 0

    # the huge job's pod (9 cpu: no node has that many) waits; a session bound the small job's two
    assert metrics[("volcano_unschedule_task_count", (("job_id", "default/huge"),))] == 1
    assert metrics[("volcano_unschedule_job_count", ())] == 1
    assert metrics[("volcano_schedule_attempts_total", (("result", "scheduled"),))] == 2
    assert metrics[("volcano_schedule_attempts_total", (("result", "unschedulable"),))] >= 1

    # every handler read the whole log (nothing was appended after the scrape: serve settled)
    assert metrics[("eventbatch_log_end_position", ())] == end
    positions = {dict(labels)["handler"]: v for (name, labels), v in metrics.items() if name == "eventbatch_handler_position"}
    assert set(positions) >= {"queue-controller", "job-controller", "scheduler"}
    assert set(positions.values()) == {end}
    assert metrics[("eventbatch_log_records_quarantined_total", ())] == 0
    assert metrics[("eventbatch_handler_failures_total", (("handler", "scheduler"), ("step", "decide")))] == 0

    # the histograms counted what happened: appends (handlers' and the simulator's), sessions
    sessions = metrics[("volcano_e2e_scheduling_latency_milliseconds_count", ())]
    assert sessions >= 1
    assert metrics[("volcano_open_session_duration_milliseconds_count", ())] == sessions
    assert metrics[("volcano_action_scheduling_latency_milliseconds_count", (("action", "allocate"),))] == sessions
    appended = metrics[("eventbatch_log_appended_total", ())]
    assert 1 <= metrics[("eventbatch_log_append_duration_seconds_count", ())] <= appended
