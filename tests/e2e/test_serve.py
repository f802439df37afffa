"""``eventbatch serve`` as a long-running process: jobs run through it; ``compact``
removes the log below its snapshots; a restart from them answers nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from contextlib import aclosing
from pathlib import Path

import aiosqlite

from eventbatch.clock import SystemClock
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.sim.inputs import nodes_of
from schemas.envelope import Envelope
from schemas.events import JobPhaseChanged, JobSubmitRequested, NodeAdded, QueueCreateRequested
from schemas.loaders import load_manifests
from schemas.scenario import NodeEntry

ROOT = Path(__file__).resolve().parents[2]
JOB = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {{name: {name}}}
spec:
  minAvailable: 2
  tasks:
    - name: w
      replicas: 2
      template:
        metadata: {{annotations: {{eventbatch.io/sim-duration: 200ms}}}}
        spec: {{containers: [{{name: c, image: busybox, resources: {{requests: {{cpu: 1}}}}}}]}}
"""
QUEUE = "apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {name: default}\nspec: {weight: 1}\n"


async def start_serve(url: str, snapshots: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EVENTBATCH_SNAPSHOTS": str(snapshots),
        "EVENTBATCH_SNAPSHOT_EVERY": "5",
        "EVENTBATCH_SIM_STARTUP_MS": "10",
        "EVENTBATCH_DEBOUNCE_MS": "5",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, "--log-level", "WARNING", "serve", "--cluster", "sim",
        cwd=ROOT, env=env,
    )


async def cli(url: str, snapshots: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVENTBATCH_SNAPSHOTS": str(snapshots)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def submit_and_wait(url: str, name: str, phase: str = "Completed") -> None:
    async with open_log(url) as log:
        start = await log.end_position()
        now = SystemClock().now()
        await log.append([Envelope.wrap(JobSubmitRequested(job=f"default/{name}", manifest=load_manifests(JOB.format(name=name))[0]), recorded_at=now)])
        async with asyncio.timeout(60), aclosing(log.read(start, follow=True)) as events:
            async for envelope in events:
                e = envelope.payload
                if isinstance(e, JobPhaseChanged) and e.job == f"default/{name}" and e.phase == phase:
                    return


async def test_serve_runs_jobs_and_restarts_from_its_snapshots(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    snapshots = tmp_path / "snapshots.db"
    async with open_log(url) as log:
        now = SystemClock().now()
        nodes = nodes_of(NodeEntry(prefix="n", count=2, allocatable={"cpu": "8", "memory": "16Gi"}))
        await log.append(
            [Envelope.wrap(QueueCreateRequested(queue="default", manifest=load_manifests(QUEUE)[0]), recorded_at=now)]
            + [Envelope.wrap(NodeAdded(node=n.metadata.name, manifest=n), recorded_at=now) for n in nodes]
        )
    first = await start_serve(url, snapshots)
    try:
        await submit_and_wait(url, "one")
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    async with aiosqlite.connect(snapshots) as db:
        saved = dict(await db.execute_fetchall("SELECT name, position FROM snapshots"))
    assert set(saved) == {
        "queue-controller", "job-controller", "node-controller", "scheduler", "timers", "sim", "scheduling-trigger",
    }
    assert all(position > 0 for position in saved.values())

    # Retention: the log below every snapshot goes; the finished job keeps its history.
    compacted = await cli(url, snapshots, "compact")
    assert compacted.startswith("removed #0..#"), compacted
    async with open_log(url) as log:
        start, end = await log.start_position(), await log.end_position()
    assert start == min(*saved.values(), end - 1) > 0  # the last record always stays
    history = await cli(url, snapshots, "audit", "job", "one")
    assert "JobPhaseChanged(Completed)" in history

    second = await start_serve(url, snapshots)
    try:
        await submit_and_wait(url, "two")
    finally:
        second.send_signal(signal.SIGKILL)
        await second.wait()

    async with open_log(url) as log:
        events: list[Envelope] = []
        await read_to_tail(log, start, events.append)
    answers = Counter((e.causation.handler, e.causation.position, e.causation.index) for e in events if e.causation)
    assert max(answers.values()) == 1, "a decision was appended twice across the restart"
    phases = [(e.payload.job, e.payload.phase) for e in events if isinstance(e.payload, JobPhaseChanged)]
    assert ("default/two", "Completed") in phases
    assert phases.count(("default/one", "Completed")) <= 1  # once, unless it is below the horizon
