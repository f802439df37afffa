"""Running ``eventbatch serve`` against a log from a test: the cluster it starts with, the
jobs it is given, and waiting for one to reach a phase.

Where it sits: test support for the modules that run ``serve`` as a real process
(``tests/e2e/test_serve.py``, ``test_two_serves.py``, ``tests/integration/test_broker_restart.py``).
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from pathlib import Path

from eventbatch.clock import SystemClock
from eventbatch.log.factory import open_log
from eventbatch.sim.inputs import nodes_of
from schemas.envelope import Envelope
from schemas.events import JobPhaseChanged, JobSubmitRequested, NodeAdded, QueueCreateRequested
from schemas.loaders import load_manifests
from schemas.scenario import NodeEntry
from tests.support.workloads import QUEUE

ROOT = Path(__file__).resolve().parents[2]
# serve with a quick simulated cluster: pods start 10 ms after their bind, sessions 5 ms after an event
QUICK = {"PYTHONPATH": str(ROOT), "EVENTBATCH_SIM_STARTUP_MS": "10", "EVENTBATCH_DEBOUNCE_MS": "5"}

_JOB = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {{name: {name}}}
spec:
  minAvailable: 2
  tasks:
    - name: w
      replicas: 2
      template:
        metadata: {{annotations: {{eventbatch.io/sim-duration: {duration}}}}}
        spec: {{containers: [{{name: c, image: busybox, resources: {{requests: {{cpu: 1}}}}}}]}}
"""


def job_request(name: str, duration: str = "200ms") -> JobSubmitRequested:
    """A two-pod gang job in the default namespace whose pods run ``duration`` in the simulator."""
    manifest = load_manifests(_JOB.format(name=name, duration=duration))[0]
    return JobSubmitRequested(job=f"default/{name}", manifest=manifest)


async def seed(url: str, *, nodes: int = 2) -> None:
    """The default queue and ``nodes`` nodes of 8 cpu."""
    now = SystemClock().now()
    added = nodes_of(NodeEntry(prefix="n", count=nodes, allocatable={"cpu": "8", "memory": "16Gi"}))
    async with open_log(url) as log:
        await log.append(
            [Envelope.wrap(QueueCreateRequested(queue="default", manifest=load_manifests(QUEUE)[0]), recorded_at=now)]
            + [Envelope.wrap(NodeAdded(node=n.metadata.name, manifest=n), recorded_at=now) for n in added]
        )


async def submit(url: str, names: list[str], duration: str = "200ms") -> None:
    now = SystemClock().now()
    async with open_log(url) as log:
        await log.append([Envelope.wrap(job_request(name, duration), recorded_at=now) for name in names])


async def submit_and_wait(url: str, name: str, phase: str = "Completed", *, seconds: float = 60) -> None:
    """Submit one job and wait (at most ``seconds``) for the log to show it in ``phase``."""
    async with open_log(url) as log:
        start = await log.end_position()
        await log.append([Envelope.wrap(job_request(name), recorded_at=SystemClock().now())])
        async with asyncio.timeout(seconds), aclosing(log.read(start, follow=True)) as events:
            async for envelope in events:
                e = envelope.payload
                if isinstance(e, JobPhaseChanged) and e.job == f"default/{name}" and e.phase == phase:
                    return
