"""The simulated kubelet answers decisions with the observations a cluster would make."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.sim.kubelet import SimKubelet
from schemas.envelope import Envelope
from schemas.events import (
    NodeRemoved,
    PodBound,
    PodDeletionRequested,
    PodEvictionRequested,
    PodRequested,
)
from schemas.resources import ObjectMeta, Pod


def requested(name: str, duration: str | None = None, code: int | None = None) -> PodRequested:
    annotations = {}
    if duration is not None:
        annotations["eventbatch.io/sim-duration"] = duration
    if code is not None:
        annotations["eventbatch.io/sim-exit-code"] = str(code)
    manifest = Pod(metadata=ObjectMeta(name=name, namespace="ml", annotations=annotations))
    return PodRequested(pod=f"ml/{name}", job="ml/j", podgroup="ml/j", task="w", index=0, manifest=manifest)


@pytest.fixture
async def log(tmp_path: Path):
    async with open_log(f"sqlite:///{tmp_path}/events.db") as event_log:
        yield event_log


async def observations(log) -> list[tuple[int, str, str]]:
    out: list[Envelope] = []
    await read_to_tail(log, 0, out.append)
    return [(e.recorded_at, e.type, e.key) for e in out if e.causation and e.causation.handler == "sim"]


async def step(sim: SimKubelet, clock: VirtualClock, until: int) -> None:
    await sim.catch_up()
    await sim.act()
    while (deadline := sim.next_deadline()) is not None and deadline <= until:
        clock.advance_to(deadline)
        await sim.act()
    clock.advance_to(max(until, clock.now()))


async def append(log, clock: VirtualClock, *events) -> None:
    await log.append([Envelope.wrap(e, recorded_at=clock.now()) for e in events])


async def test_a_bound_pod_starts_runs_its_duration_and_exits_with_its_code(log) -> None:
    clock = VirtualClock()
    sim = SimKubelet(log=log, clock=clock, startup_latency_ms=2_000)
    await append(log, clock, requested("ok", "90s"), requested("bad", "30s", code=3), requested("idle"))
    await step(sim, clock, 0)
    clock.advance_to(10_000)
    await append(log, clock, PodBound(pod="ml/ok", job="ml/j", node="n1"), PodBound(pod="ml/bad", job="ml/j", node="n2"))
    await step(sim, clock, 500_000)

    assert await observations(log) == [
        (0, "PodCreated", "ml/ok"),
        (0, "PodCreated", "ml/bad"),
        (0, "PodCreated", "ml/idle"),
        (12_000, "PodStarted", "ml/ok"),
        (12_000, "PodReady", "ml/ok"),
        (12_000, "PodStarted", "ml/bad"),
        (12_000, "PodReady", "ml/bad"),
        (42_000, "PodFailed", "ml/bad"),
        (102_000, "PodSucceeded", "ml/ok"),
    ]


async def test_deletion_eviction_and_node_loss(log) -> None:
    clock = VirtualClock()
    sim = SimKubelet(log=log, clock=clock, startup_latency_ms=0)
    await append(log, clock, *(requested(n) for n in ("a", "b", "c")))
    await append(log, clock, *(PodBound(pod=f"ml/{n}", job="ml/j", node="n1" if n != "c" else "n2") for n in ("a", "b", "c")))
    await step(sim, clock, 1_000)
    await append(log, clock, PodDeletionRequested(pod="ml/a", job="ml/j", reason="RestartJob"))
    await append(log, clock, PodEvictionRequested(pod="ml/b", job="ml/j", reason="preempted", preemptor="ml/x"))
    await append(log, clock, NodeRemoved(node="n2", reason="test"))
    await step(sim, clock, 2_000)
    kinds = [(t, k) for _, t, k in await observations(log) if t in ("PodDeleted", "PodEvicted", "PodFailed")]
    assert kinds == [
        ("PodDeleted", "ml/a"),
        ("PodEvicted", "ml/b"),
        ("PodDeleted", "ml/b"),
        ("PodFailed", "ml/c"),
        ("PodDeleted", "ml/c"),
    ]


async def test_a_restarted_simulator_repeats_nothing_and_forgets_nothing(log) -> None:
    clock = VirtualClock()
    first = SimKubelet(log=log, clock=clock, startup_latency_ms=1_000)
    await append(log, clock, requested("p", "60s"))
    await append(log, clock, PodBound(pod="ml/p", job="ml/j", node="n1"))
    await step(first, clock, 5_000)  # created and started, not finished

    second = SimKubelet(log=log, clock=clock, startup_latency_ms=1_000)
    await second.catch_up()
    assert await second.act() == 0
    assert second.next_deadline() == 61_000
    await step(second, clock, 100_000)
    assert [t for _, t, _ in await observations(log)] == ["PodCreated", "PodStarted", "PodReady", "PodSucceeded"]
