"""Round trip through ``eventbatch serve``, in wall-clock time, on SQLite and on Kafka.

Where it sits: a benchmark of the whole live pipeline with the settings a
user gets. It starts a real ``eventbatch serve --cluster sim`` process on a
log with the shipped defaults (nothing set: the debounce, the simulated
startup latency, the log's wake-ups and poll intervals are what ``serve``
runs with), adds nodes and a queue, then submits jobs one at a time (a 2-pod
gang each, appended from this process as ``eventbatch job submit`` would)
and follows the log from another handle: from the append of
``JobSubmitRequested`` to the last ``PodBound`` of the job (submit -> bound),
and to the job's ``JobPhaseChanged`` to Running. The next job is submitted
once the last one is bound; Running comes a simulated pod start later (1 s
by default, a cluster pulling an image, not the pipeline's work), so it is
printed but is not the figure.

Each figure is printed next to the limit measured in the same run on the
same log: one hop, the time from an append until a follower on another
handle sees it (the wake-up on SQLite, a fetch on Kafka). A submit -> bound
round trip is several hops (this process to the job controller, the
scheduling trigger, two sessions with pod creation between them, back to
this process), most of them inside ``serve``, plus the trigger's window
before each session (eight times the latest session's time, 2 to 50 ms). The cost per job does not grow with history: every
job meets the same live cluster.

    python bench/roundtrip.py [--jobs N] [--backend sqlite,kafka] [--kafka HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from contextlib import aclosing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eventbatch.clock import SystemClock  # noqa: E402
from eventbatch.log.factory import open_log  # noqa: E402
from eventbatch.log.port import EventLog  # noqa: E402
from eventbatch.settings import Settings  # noqa: E402
from eventbatch.sim.inputs import nodes_of  # noqa: E402
from eventbatch.sim.report import percentile  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402
from schemas.events import JobPhaseChanged, JobSubmitRequested, NodeAdded, PodBound, QueueCreateRequested  # noqa: E402
from schemas.loaders import load_manifests  # noqa: E402
from schemas.scenario import NodeEntry  # noqa: E402
from tests.support.broker import TansuBroker  # noqa: E402

JOB = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {{name: rt-{i}, namespace: bench}}
spec:
  minAvailable: 2
  tasks:
    - name: worker
      replicas: 2
      template:
        metadata: {{annotations: {{eventbatch.io/sim-duration: 1h}}}}
        spec:
          containers: [{{name: w, image: busybox, resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}}}]
"""
QUEUE = """
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: default}
spec: {weight: 1}
"""


def now() -> int:
    return SystemClock().now()


async def hop_latency(log: EventLog, url: str, samples: int) -> list[float]:
    """Append one event, time until a follower on another handle reads it (ms)."""
    out: list[float] = []
    start = await log.end_position()
    async with open_log(url) as other, aclosing(other.read(start, follow=True)) as events:
        for i in range(samples):
            t0 = time.perf_counter()
            [position] = await log.append([Envelope.wrap(NodeAdded(node=f"ping-{i}", manifest=nodes_of(NodeEntry(name=f"ping-{i}", allocatable={"cpu": "0"}, unschedulable=True))[0]), recorded_at=now())])
            async for envelope in events:
                if envelope.position == position:
                    break
            out.append((time.perf_counter() - t0) * 1000)
    return out


async def round_trips(url: str, jobs: int) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBATCH_")}  # the shipped defaults
    env["PYTHONPATH"] = str(ROOT)
    async with open_log(url) as log:
        queue = load_manifests(QUEUE)[0]
        await log.append([Envelope.wrap(QueueCreateRequested(queue="default", manifest=queue), recorded_at=now())])
        nodes = nodes_of(NodeEntry(prefix="node-", count=20, allocatable={"cpu": "64", "memory": "256Gi"}))
        await log.append([Envelope.wrap(NodeAdded(node=n.metadata.name, manifest=n), recorded_at=now()) for n in nodes])
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "eventbatch", "--log", url, "--log-level", "WARNING", "serve", "--cluster", "sim",
            cwd=ROOT, env=env,
        )
        try:
            hop = await hop_latency(log, url, 50)
            bound: list[float] = []
            running: list[float] = []
            submitted: dict[str, float] = {}
            position = await log.end_position()
            async with aclosing(log.read(position, follow=True)) as events:

                def saw(envelope: Envelope) -> None:
                    e = envelope.payload
                    if isinstance(e, JobPhaseChanged) and e.phase == "Running" and e.job in submitted:
                        running.append((time.perf_counter() - submitted[e.job]) * 1000)

                for i in range(jobs):
                    job = load_manifests(JOB.format(i=i))[0]
                    key = f"bench/rt-{i}"
                    submitted[key] = t0 = time.perf_counter()
                    await log.append([Envelope.wrap(JobSubmitRequested(job=key, manifest=job), recorded_at=now())])
                    binds = 0
                    async for envelope in events:
                        e = envelope.payload
                        if isinstance(e, PodBound) and e.job == key:
                            binds += 1
                            if binds == 2:
                                bound.append((time.perf_counter() - t0) * 1000)
                                break
                        else:
                            saw(envelope)
                async with asyncio.timeout(60):  # the last jobs' simulated pod starts
                    async for envelope in events:
                        saw(envelope)
                        if len(running) == jobs:
                            break
        finally:
            server.terminate()
            await server.wait()
    return {"hop": hop, "bound": bound, "running": running}


def report(name: str, figures: dict[str, list[float]]) -> None:
    defaults = Settings()
    hop50 = percentile(figures["hop"], 50)
    print(f"{name}: one log hop p50 {hop50:.1f} ms, p99 {percentile(figures['hop'], 99):.1f} ms (the limit)")
    for what in ("bound", "running"):
        values = figures[what]
        p50, p99 = percentile(values, 50), percentile(values, 99)
        note = f"includes the simulated pod start, {defaults.sim_startup_ms} ms" if what == "running" else "the figure"
        print(
            f"{name}: submit -> {what:<7} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
            f"= {p50 / hop50 if hop50 else 0:.1f} x one hop  ({len(values)} jobs; {note})"
        )
    print(
        f"{name}: shipped defaults: a session's window {defaults.min_debounce_ms}-{defaults.debounce_ms} ms "
        "(eight times the latest session's time)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--kafka", help="bootstrap HOST:PORT (default: start a local tansu)")
    parser.add_argument("--backend", default="sqlite,kafka", help="sqlite, kafka or both (comma separated)")
    args = parser.parse_args()
    backends = args.backend.split(",")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            report("sqlite", await round_trips(f"sqlite:///{tmp}/events.db", args.jobs))
    if "kafka" in backends:
        topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
        if args.kafka:
            report("kafka", await round_trips(f"kafka://{args.kafka}/{topic}", args.jobs))
        else:
            with TansuBroker() as broker:
                report("kafka", await round_trips(f"kafka://{broker.bootstrap}/{topic}", args.jobs))


if __name__ == "__main__":
    asyncio.run(main())
