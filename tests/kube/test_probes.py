"""The probe and metrics endpoint the Deployment's liveness/readiness probes and Prometheus use."""

from __future__ import annotations

import aiohttp
import pytest

from eventbatch.kube.probes import ProbeServer, render


@pytest.mark.parametrize(
    "path, ready, status",
    [("/healthz", False, 200), ("/readyz", False, 503), ("/readyz", True, 200)],
    ids=["alive", "not-ready", "ready"],
)
async def test_probes(path: str, ready: bool, status: int) -> None:
    server = ProbeServer(port=0, host="127.0.0.1", ready=lambda: ready)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{server.port}{path}") as response:
                assert response.status == status
    finally:
        await server.stop()


async def test_metrics_are_prometheus_text() -> None:
    samples = [
        ("eventbatch_leader", {}, 1.0),
        ("eventbatch_actuator_actions_total", {"decision": "PodRequested"}, 4.0),
        ("eventbatch_actuator_actions_total", {"decision": "PodBound"}, 4.0),
    ]
    server = ProbeServer(port=0, host="127.0.0.1", samples=lambda: samples)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{server.port}/metrics") as response:
                text = await response.text()
    finally:
        await server.stop()
    assert text == render(samples)
    assert text.splitlines() == [
        "# TYPE eventbatch_leader gauge",
        "eventbatch_leader 1",
        "# TYPE eventbatch_actuator_actions_total counter",
        'eventbatch_actuator_actions_total{decision="PodRequested"} 4',
        'eventbatch_actuator_actions_total{decision="PodBound"} 4',
    ]
