"""``eventbatch simulate`` as a user runs it: examples end to end, reports, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.yaml"))
TRACE = ROOT.parent / "shared" / "traces" / "alibaba-openb-2023"


def eventbatch(*args: str, log: Path | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    flags = ["--log", f"sqlite:///{log}"] if log is not None else []
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", *flags, *args],
        cwd=cwd, capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def simulate(tmp_path: Path, scenario: Path, *extra: str) -> dict:
    result = eventbatch("simulate", str(scenario), "--json", *extra, log=tmp_path / "sim.db")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_runs_to_its_end(tmp_path: Path, example: str) -> None:
    report = simulate(tmp_path, ROOT / "examples" / example)
    assert report["events"] > 0
    assert report["jobs"], "the example submitted no job"
    assert report["stopped"] in ("every job finished", "nothing left to happen", "until reached")


def test_spark_executors_start_only_after_the_driver_is_ready(tmp_path: Path) -> None:
    report = simulate(tmp_path, ROOT / "examples" / "spark.yaml")
    pods = {p["pod"]: p for p in report["pods"]}
    driver = pods["default/spark-pi-driver-0"]
    executors = [p for name, p in pods.items() if "executor" in name]
    assert len(executors) == 4
    assert all(e["bound"] >= driver["started"] for e in executors)
    [job] = report["jobs"]
    assert job["phases"][-1][1] == "Completed"


def test_best_effort_pods_are_backfilled_while_a_big_gang_waits(tmp_path: Path) -> None:
    report = simulate(tmp_path, ROOT / "examples" / "backfill.yaml")
    pods = {p["pod"]: p for p in report["pods"]}
    best_effort = [p for name, p in pods.items() if "besteffort" in name]
    assert len(best_effort) == 4 and all(p["started"] is not None for p in best_effort)
    gang_started = [p["started"] for name, p in pods.items() if "big-gang" in name and p["started"] is not None]
    long_finished = pods["default/long-main-0"]["finished"]
    # the gang needs the whole cluster: it starts only once the long job has finished
    assert not gang_started or min(gang_started) >= long_finished


def test_cycles_shows_what_one_session_decides(tmp_path: Path) -> None:
    scenario = tmp_path / "now.yaml"
    scenario.write_text(
        """
nodes: [{prefix: n-, count: 2, allocatable: {cpu: 4, memory: 8Gi}}]
queues: [{apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: default}, spec: {weight: 1}}]
running:
  - {job: default/old, node: n-0, requests: {cpu: 3}, count: 1}
podgroupPhases: {default/old: Running}
"""
    )
    report = simulate(tmp_path, scenario, "--cycles", "1")
    assert report["sessions"] == 1
    assert set(report) >= {"binds", "pipelined", "evictions", "podgroups", "unschedulable"}
    assert report["podgroups"]["default/old"] == "Running"


def test_a_bad_scenario_names_the_entry_and_field(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("nodes: [{name: a, allocatable: {cpu: lots}}]\n")
    result = eventbatch("simulate", str(scenario), log=tmp_path / "sim.db")
    assert result.returncode == 2
    assert "nodes[0].allocatable.cpu" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_text_report_has_every_section(tmp_path: Path) -> None:
    result = eventbatch("simulate", str(ROOT / "examples" / "fair-share.yaml"), log=tmp_path / "sim.db")
    assert result.returncode == 0, result.stderr[-3000:]
    for section in ("== jobs ==", "== pods", "== evictions ==", "== queues", "== wait until Running", "== utilisation", "makespan:"):
        assert section in result.stdout


@pytest.mark.skipif(not TRACE.exists(), reason="the shared trace folder is not beside the repository")
def test_an_imported_trace_runs_and_is_compared_with_what_the_trace_recorded(tmp_path: Path) -> None:
    out = tmp_path / "openb.json"
    imported = eventbatch("trace", "import", str(TRACE), "-o", str(out), "--limit", "300")
    assert imported.returncode == 0, imported.stderr
    assert "1,523 nodes, 300 jobs" in imported.stdout
    result = eventbatch("simulate", str(out), log=tmp_path / "sim.db")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "== simulated vs recorded in the trace ==" in result.stdout
    assert "GPU allocation, mean" in result.stdout and "pods that never ran" in result.stdout


def test_why_explains_an_unschedulable_gang(tmp_path: Path) -> None:
    scenario = tmp_path / "stuck.yaml"
    scenario.write_text(
        """
nodes: [{prefix: n-, count: 2, allocatable: {cpu: 4, memory: 8Gi}}]
queues: [{apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: default}, spec: {weight: 1}}]
workload:
  - at: 0s
    apply:
      apiVersion: batch.volcano.sh/v1alpha1
      kind: Job
      metadata: {name: huge}
      spec:
        tasks: [{name: t, replicas: 2, template: {spec: {containers: [{name: c, image: x, resources: {requests: {cpu: 3, nvidia.com/gpu: 1}}}]}}}]
"""
    )
    log = tmp_path / "sim.db"
    assert eventbatch("simulate", str(scenario), log=log).returncode == 0
    result = eventbatch("why", "huge", log=log)
    assert result.returncode == 0, result.stderr
    assert "job default/huge" in result.stdout
    assert "nvidia.com/gpu needs 2 with 0 available" in result.stdout
    assert "to run: the cluster has too little nvidia.com/gpu free" in result.stdout
    assert "queue is at its share" not in result.stdout


def test_fair_share_splits_the_cluster_by_weight_while_both_queues_wait(tmp_path: Path) -> None:
    report = simulate(tmp_path, ROOT / "examples" / "fair-share.yaml")
    queue_of = {j["job"]: j["queue"] for j in report["jobs"]}
    pods = report["pods"]
    cpus = 4  # every pod of the example asks for 4 CPUs
    moments = sorted({p["bound"] for p in pods if p["bound"] is not None})
    checked = 0
    for t in moments:
        held = {"batch": 0, "research": 0}
        waiting = {"batch": 0, "research": 0}
        for p in pods:
            queue = queue_of[p["job"]]
            if p["bound"] is not None and p["bound"] <= t and (p["finished"] is None or p["finished"] > t):
                held[queue] += cpus
            elif p["bound"] is None or p["bound"] > t:
                waiting[queue] += 1
        if waiting["batch"] and waiting["research"]:
            checked += 1
            assert held["batch"] > 0, f"at {t} ms batch holds nothing while research holds {held['research']}"
            assert 2.5 <= held["research"] / held["batch"] <= 3.5, f"at {t} ms: {held}"
    assert checked, "both queues never had work waiting at once"


def test_a_parent_queue_caps_its_children_together(tmp_path: Path) -> None:
    report = simulate(tmp_path, ROOT / "examples" / "hierarchical-queues.yaml")
    queue_of = {j["job"]: j["queue"] for j in report["jobs"]}
    cpus = {"eng-train": 8, "eng-infer": 4, "ops": 4}
    pods = report["pods"]
    peak = 0
    for t in sorted({p["bound"] for p in pods}):
        running = [p for p in pods if p["bound"] <= t and (p["finished"] is None or p["finished"] > t)]
        eng = sum(cpus[queue_of[p["job"]]] for p in running if queue_of[p["job"]].startswith("eng-"))
        assert eng <= 40, f"at {t} ms the children of eng hold {eng} CPUs, over its capability of 40"
        peak = max(peak, eng)
        total = sum(cpus[queue_of[p["job"]]] for p in running)
        assert total <= 64
    assert peak == 40
    # a training job waited for room under eng's cap while the cluster had CPUs to spare
    waited = [p for p in pods if queue_of[p["job"]] == "eng-train" and p["bound"] > 0]
    assert waited



TOPOLOGY_SCENARIO = """
nodes:
- {name: a-0, allocatable: {cpu: 4, memory: 8Gi}, labels: {switch: s-a}}
- {name: a-1, allocatable: {cpu: 4, memory: 8Gi}, labels: {switch: s-a}}
- {name: b-0, allocatable: {cpu: 4, memory: 8Gi}, labels: {switch: s-b}}
- {name: b-1, allocatable: {cpu: 4, memory: 8Gi}, labels: {switch: s-b, dataset: imagenet}}
queues: [{apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: default}, spec: {weight: 1}}]
scheduler:
  actions: "enqueue, allocate, backfill"
  tiers:
  - plugins: [{name: priority}, {name: gang}, {name: conformance}]
  - plugins: [{name: overcommit}, {name: drf}, {name: predicates}, {name: proportion}, {name: nodeorder}PLUGINS]
workload:
- at: 0s
  apply:
    apiVersion: batch.volcano.sh/v1alpha1
    kind: Job
    metadata: {name: allreduce, namespace: default}
    spec:
      minAvailable: 4
      networkTopology: {mode: hard, highestTierAllowed: 1}
      tasks:
      - name: worker
        replicas: 4
        template:
          metadata: {annotations: {eventbatch.io/sim-duration: 1m}}
          spec: {containers: [{name: w, image: busybox, resources: {requests: {cpu: '2'}}}]}
- at: 1s
  apply:
    apiVersion: batch.volcano.sh/v1alpha1
    kind: Job
    metadata: {name: reader, namespace: default}
    spec:
      minAvailable: 1
      tasks:
      - name: main
        replicas: 1
        template:
          metadata:
            annotations: {eventbatch.io/sim-duration: 1m, eventbatch.io/data-locality: labels=dataset=imagenet}
          spec: {containers: [{name: r, image: busybox, resources: {requests: {cpu: '1'}}}]}
until: all-finished
"""


@pytest.mark.parametrize("aware", [True, False], ids=["topology-and-locality-plugins", "without-them"])
def test_a_job_asking_for_one_switch_and_for_its_data_gets_them(tmp_path: Path, aware: bool) -> None:
    """spec.networkTopology (through the PodGroup) and the data-locality annotation reach the scheduler."""
    plugins = ", {name: data-locality}, {name: network-topology-aware, arguments: {tiers: [switch]}}" if aware else ""
    scenario = tmp_path / "topology.yaml"
    scenario.write_text(TOPOLOGY_SCENARIO.replace("PLUGINS", plugins))
    report = simulate(tmp_path, scenario)
    pods = {p["pod"]: p["node"] for p in report["pods"]}
    switches = {pods[f"default/allreduce-worker-{i}"][0] for i in range(4)}
    if aware:
        assert len(switches) == 1
        assert pods["default/reader-main-0"] == "b-1"
    else:
        assert switches == {"a", "b"}
        assert pods["default/reader-main-0"] != "b-1"


def test_why_names_the_reservation_held_for_a_starving_gang(tmp_path: Path) -> None:
    log = tmp_path / "sim.db"
    assert eventbatch("simulate", str(ROOT / "examples" / "starving-gang-reserve.yaml"), log=log).returncode == 0
    result = eventbatch("why", "big-gang", log=log)
    assert result.returncode == 0, result.stderr
    assert "reserved: node-0, node-1 held for it" in result.stdout
    assert "[rule reserve]" in result.stdout
    assert "reservation released" in result.stdout
