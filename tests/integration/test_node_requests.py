"""Node requests through the real pipeline on a SQLite log: answered once, across restarts and snapshots.

The composition root's handlers (the node controller among them), the
simulated kubelet, timers and the scheduling trigger step over one SQLite
file on a virtual clock. A job waits in a cluster with no nodes, runs once a
node is added, and is evicted by a drain; a pipeline rebuilt over the same
log (from nothing, or from its snapshots) answers nothing twice.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from eventbatch.app import Pipeline, build_pipeline, default_handlers, scheduling_relevance
from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.snapshots import SnapshotStore
from schemas.envelope import Envelope
from schemas.events import (
    JobSubmitRequested,
    NodeAddRequested,
    NodeDrainRequested,
    NodeRemoveRequested,
    QueueCreateRequested,
)
from schemas.loaders import load_manifests
from schemas.resources import Node, NodeStatus, ObjectMeta
from tests.support.workloads import JOB, QUEUE

SETTINGS = Settings(cluster="sim", sim_startup_ms=10, debounce_ms=5)
NO_NODES = "0/0 nodes are available: the cluster has no nodes"


def node(name: str) -> Node:
    allocatable = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    return Node(metadata=ObjectMeta(name=name), status=NodeStatus(capacity=allocatable, allocatable=allocatable))


def pipeline(log, clock: VirtualClock, snapshots: SnapshotStore | None = None) -> Pipeline:
    return build_pipeline(
        log=log, clock=clock, handlers=default_handlers(SETTINGS), settings=SETTINGS,
        is_relevant=scheduling_relevance(), cluster="sim", snapshots=snapshots, snapshot_every=3 if snapshots else None,
    )


async def run(p: Pipeline, clock: VirtualClock, *, for_ms: int = 5_000) -> None:
    """Settle, then follow the clock to each deadline within ``for_ms``."""
    limit = clock.now() + for_ms
    await p.settle()
    while (deadline := p.next_deadline()) is not None and deadline <= limit:
        clock.advance_to(max(deadline, clock.now()))
        await p.settle()


async def append(log, clock: VirtualClock, *events) -> None:
    await log.append([Envelope.wrap(e, recorded_at=clock.now()) for e in events])


async def everything(log) -> list[Envelope]:
    out: list[Envelope] = []
    await read_to_tail(log, 0, out.append)
    return out


def of(events: list[Envelope], tag: str) -> list:
    return [e.payload for e in events if e.type == tag]


async def test_a_job_waits_without_nodes_runs_on_an_added_node_and_is_evicted_by_a_drain(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log:
        p = pipeline(log, clock)
        await append(log, clock, QueueCreateRequested(queue="default", manifest=load_manifests(QUEUE)[0]),
                     JobSubmitRequested(job="default/train", manifest=load_manifests(JOB)[0]))
        await run(p, clock)
        events = await everything(log)
        assert of(events, "HandlerFailed") == []
        assert of(events, "PodBound") == []
        [verdict, *_] = of(events, "PodGroupUnschedulable")
        assert verdict.message == NO_NODES

        await append(log, clock, NodeAddRequested(node="n1", manifest=node("n1")))
        await run(p, clock)
        events = await everything(log)
        assert [e.node for e in of(events, "NodeAdded")] == ["n1"]
        assert sorted(e.pod for e in of(events, "PodStarted")) == ["default/train-w-0", "default/train-w-1"]

        await append(log, clock, NodeDrainRequested(node="n1"))
        await run(p, clock)
        events = await everything(log)
        [cordon] = of(events, "NodeUpdated")
        assert cordon.manifest.spec.unschedulable
        evicted = of(events, "PodEvicted")
        assert sorted(e.pod for e in evicted) == ["default/train-w-0", "default/train-w-1"]
        assert {e.reason for e in evicted} == {"node n1 drained"}
        assert of(events, "HandlerFailed") == []
        # The job controller answered the evictions (its pods are asked for again) and the
        # replacements stay off the cordoned node, which the scheduler says.
        assert len(of(events, "PodRequested")) == 4
        assert len(of(events, "PodBound")) == 2
        assert of(events, "PodGroupUnschedulable")[-1].message.endswith("1 node(s) were unschedulable")


async def test_answers_are_not_repeated_by_a_restart_from_the_log_or_from_snapshots(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log, SnapshotStore(tmp_path / "snap.db") as store:
        first = pipeline(log, clock, store)
        await append(log, clock, QueueCreateRequested(queue="default", manifest=load_manifests(QUEUE)[0]),
                     NodeAddRequested(node="n1", manifest=node("n1")),
                     NodeAddRequested(node="n2", manifest=node("n2")),
                     NodeAddRequested(node="n1", manifest=node("n1")),  # refused: exists
                     JobSubmitRequested(job="default/train", manifest=load_manifests(JOB)[0]))
        await run(first, clock)
        await append(log, clock, NodeDrainRequested(node="n1"), NodeRemoveRequested(node="n2"),
                     NodeRemoveRequested(node="ghost"))
        await run(first, clock)
        await first.checkpoint()
        before = await log.end_position()

        # A new process over the same log: from its snapshots, then from nothing at all.
        for snapshots in (store, None):
            again = pipeline(log, clock, snapshots)
            await run(again, clock)
            assert await log.end_position() == before

        events = await everything(log)
        answers = Counter((e.causation.position, e.causation.handler, e.causation.index)
                          for e in events if e.causation is not None)
        assert max(answers.values()) == 1
        assert [(e.node, e.action) for e in of(events, "NodeRequestRefused")] == [("n1", "add"), ("ghost", "remove")]
        assert [e.node for e in of(events, "NodeAdded")] == ["n1", "n2"]
        assert [e.node for e in of(events, "NodeRemoved")] == ["n2"]
        assert of(events, "HandlerFailed") == []
