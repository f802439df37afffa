"""``eventbatch node ...`` against a real ``serve --cluster sim``: a cluster that starts empty.

``serve`` runs as a subprocess on a SQLite log with no nodes; everything else
is the CLI as a user types it. A submitted job waits (``why`` says the
cluster has no nodes, the log holds no HandlerFailed), runs once ``node add``
gives it a node, and ``node drain`` evicts its pods and leaves the node
SchedulingDisabled. Commands the CLI must refuse exit 2 with one line and
append nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from tests.support.workloads import JOB, QUEUE

ROOT = Path(__file__).resolve().parents[2]
# A job without resource requests: the case that used to fail every session on an empty cluster.
BEST_EFFORT = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: notes}
spec:
  minAvailable: 1
  tasks:
    - name: w
      replicas: 1
      template:
        spec: {containers: [{name: c, image: busybox}]}
"""
DEADLINE_S = 60


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "EVENTBATCH_SIM_STARTUP_MS": "10", "EVENTBATCH_DEBOUNCE_MS": "5"}


async def cli(url: str, *args: str, status: int = 0) -> tuple[str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, *args, cwd=ROOT, env=environment(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == status, (args, out.decode(), err.decode())
    return out.decode(), err.decode()


async def events_of(url: str) -> list[Envelope]:
    async with open_log(url) as log:
        out: list[Envelope] = []
        await read_to_tail(log, 0, out.append)
        return out


async def wait_for(url: str, done: Callable[[list[Envelope]], bool], what: str) -> list[Envelope]:
    """Poll the log until ``done`` holds, for at most ``DEADLINE_S`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE_S
    while True:
        events = await events_of(url)
        if done(events):
            return events
        if loop.time() > end:
            raise AssertionError(f"no {what} within {DEADLINE_S}s; the log ends {[e.type for e in events[-8:]]}")
        await asyncio.sleep(0.05)


def of(events: list[Envelope], tag: str) -> list:
    return [e.payload for e in events if e.type == tag]


@pytest.fixture
async def served(tmp_path: Path):
    """A ``serve --cluster sim`` on an empty SQLite log; yields the log URL."""
    url = f"sqlite:///{tmp_path}/events.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, "--log-level", "WARNING", "serve", "--cluster", "sim",
        cwd=ROOT, env=environment(),
    )
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE_S
        while not (tmp_path / "events.db").exists():
            assert process.returncode is None, "serve exited"
            assert loop.time() < end, "serve created no log"
            await asyncio.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_a_job_waits_for_nodes_runs_on_an_added_one_and_a_drain_evicts_it(served: str, tmp_path: Path) -> None:
    url = served
    (tmp_path / "queue.yaml").write_text(QUEUE)
    (tmp_path / "job.yaml").write_text(JOB)
    (tmp_path / "notes.yaml").write_text(BEST_EFFORT)
    await cli(url, "queue", "create", "-f", str(tmp_path / "queue.yaml"))
    await cli(url, "job", "submit", "-f", str(tmp_path / "job.yaml"))
    await cli(url, "job", "submit", "-f", str(tmp_path / "notes.yaml"))

    # No nodes: sessions run, decide nothing, and say why.
    events = await wait_for(url, lambda ev: len({e.job for e in of(ev, "PodGroupUnschedulable")}) == 2,
                            "verdicts on both waiting jobs")
    assert of(events, "HandlerFailed") == []
    assert {e.type for e in events if e.causation and e.causation.handler == "scheduler"} == {"PodGroupUnschedulable"}
    for job in ("train", "notes"):
        why, _ = await cli(url, "why", job)
        assert "the cluster has no nodes" in why, why

    out, _ = await cli(url, "node", "add", "--name", "n1", "--cpu", "4", "--memory", "8Gi")
    assert out.startswith("NodeAddRequested n1 at #"), out
    events = await wait_for(url, lambda ev: len(of(ev, "PodStarted")) == 3, "pods started on the new node")
    assert {e.node for e in of(events, "PodStarted")} == {"n1"}
    await wait_for(url, lambda ev: any(e.job == "default/train" and e.phase == "Running"
                                       for e in of(ev, "JobPhaseChanged")), "job Running")

    out, _ = await cli(url, "node", "drain", "n1")
    assert out.startswith("drain of node n1 requested at #"), out
    events = await wait_for(url, lambda ev: len(of(ev, "PodEvicted")) == 3, "every pod evicted")
    assert sorted(e.pod for e in of(events, "PodEvicted")) == [
        "default/notes-w-0", "default/train-w-0", "default/train-w-1"]
    assert {e.reason for e in of(events, "PodEvicted")} == {"node n1 drained"}
    listed, _ = await cli(url, "node", "list", "-o", "json")
    [n1] = json.loads(listed)
    assert (n1["name"], n1["status"], n1["unschedulable"]) == ("n1", "Ready,SchedulingDisabled", True)
    text, _ = await cli(url, "node", "list")
    assert "SchedulingDisabled" in text.splitlines()[1]
    # The job controller asked for its pods again; they stay off the cordoned node.
    events = await wait_for(url, lambda ev: of(ev, "PodGroupUnschedulable")[-1].message.endswith(
        "node(s) were unschedulable"), "verdict on the replacement pods")
    assert len(of(events, "PodBound")) == 3
    assert of(events, "HandlerFailed") == []


async def test_refused_commands_exit_2_with_one_line_and_append_nothing(served: str, tmp_path: Path) -> None:
    url = served
    await cli(url, "node", "add", "--name", "n1")
    await wait_for(url, lambda ev: of(ev, "NodeAdded"), "the node added")
    # serve may still append its own records (a scheduling request for the new
    # node); what the refused commands must not append is a request.
    def requests(events: list[Envelope]) -> int:
        return sum(1 for e in events if e.payload.REQUEST)

    before = requests(await events_of(url))
    refusals = [
        (("node", "drain", "ghost"), "node ghost not found (--force to ask anyway)"),
        (("node", "add", "--name", "n1"), "node n1 already exists (--force to ask anyway)"),
        (("node", "cordon", "n1", "--cluster", "kube"), "use kubectl (kubectl cordon n1)"),
        (("node", "add", "--name", "n2", "--cpu", "lots"), "status.capacity.cpu"),
    ]
    for args, message in refusals:
        _, err = await cli(url, *args, status=2)
        assert err.count("\n") == 1 and err.startswith("eventbatch: error: ") and message in err, (args, err)
    assert requests(await events_of(url)) == before

    # --force appends the request anyway; the node controller refuses it on the log.
    await cli(url, "node", "remove", "ghost", "--force")
    events = await wait_for(url, lambda ev: of(ev, "NodeRequestRefused"), "the refusal")
    [refused] = of(events, "NodeRequestRefused")
    assert (refused.node, refused.action, refused.reason) == ("ghost", "remove", "node ghost not found")
