"""The probe and metrics endpoint the Deployment's liveness/readiness probes and Prometheus use."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventbatch.kube.probes import ProbeServer
from eventbatch.metrics import Metrics


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


async def test_metrics_are_prometheus_text_with_exact_large_values_and_escaped_label_values() -> None:
    # a large count keeps every digit (not 1.23457e+06, which reads back as 1234570) and a label value with a quote,
    # a backslash and a newline is escaped, so Prometheus' parser reads back what was meant
    odd = 'say "hi"\\there\nnext'
    samples = [
        ("eventbatch_leader", {}, 1.0),
        ("eventbatch_actuator_actions_total", {"decision": "PodRequested"}, 1234567.0),
        ("eventbatch_actuator_actions_total", {"decision": odd}, 4.0),
    ]
    server = ProbeServer(port=0, host="127.0.0.1", metrics=Metrics(lambda: None, extra=lambda: samples))
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{server.port}/metrics") as response:
                assert response.headers["Content-Type"].startswith("text/plain; version=")
                text = await response.text()
    finally:
        await server.stop()
    assert "1.23457e+06" not in text, text
    read = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("eventbatch_leader", "eventbatch_actuator_actions_total")
    }
    assert read == {
        ("eventbatch_leader", ()): 1.0,
        ("eventbatch_actuator_actions_total", (("decision", "PodRequested"),)): 1234567.0,
        ("eventbatch_actuator_actions_total", (("decision", odd),)): 4.0,
    }
