"""Scenario files: what a user writes is loaded exactly, and a mistake names the entry and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventbatch.sim.inputs import cluster_events, nodes_of, step_events
from schemas.events import (
    JobCommandRequested,
    JobSubmitRequested,
    NodeAdded,
    NodeRemoved,
    PodBound,
    QueueCreateRequested,
)
from schemas.scenario import ScenarioError, load_scenario

GOOD = """\
nodes:
  - {prefix: cpu-, count: 3, allocatable: {cpu: 16, memory: 64Gi}}
  - {name: gpu-1, allocatable: {cpu: 32, memory: 256Gi, nvidia.com/gpu: 8}, labels: {gpu: a100},
     taints: [{key: nvidia.com/gpu, effect: NoSchedule}]}
queues:
  - {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: default}, spec: {weight: 1}}
priorityClasses: {high: 1000, low: 10}
running:
  - {job: ml/old, node: cpu-1, requests: {cpu: 4}, count: 2, duration: 1h, priorityClassName: low,
     labels: {volcano.sh/preemptable: "true"}}
workload:
  - {at: 1m, command: {action: AbortJob, job: default/j1}}
  - at: 10s
    apply:
      apiVersion: batch.volcano.sh/v1alpha1
      kind: Job
      metadata: {name: j1}
      spec:
        tasks: [{name: t, replicas: 2, template: {spec: {containers: [{name: c, image: x}]}}}]
  - {at: 2m, fail: {node: cpu-2}}
until: 1h
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_a_scenario_loads_into_ordered_steps_and_cluster_events(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, GOOD))
    assert [s.at_ms for s in scenario.steps] == [10_000, 60_000, 120_000]
    assert scenario.until_ms == 3_600_000
    assert [n.metadata.name for n in nodes_of(scenario.nodes[0])] == ["cpu-0", "cpu-1", "cpu-2"]

    events = cluster_events(scenario)
    nodes = [e for e in events if isinstance(e, NodeAdded)]
    assert [n.node for n in nodes] == ["cpu-0", "cpu-1", "cpu-2", "gpu-1"]
    assert nodes[3].manifest.spec.taints[0].key == "nvidia.com/gpu"
    assert [e.queue for e in events if isinstance(e, QueueCreateRequested)] == ["default"]
    binds = [e for e in events if isinstance(e, PodBound)]
    assert [(b.pod, b.node) for b in binds] == [("ml/old-main-0", "cpu-1"), ("ml/old-main-1", "cpu-1")]

    assert [type(e) for e in step_events(scenario.steps[0])] == [JobSubmitRequested]
    [command] = step_events(scenario.steps[1])
    assert isinstance(command, JobCommandRequested) and command.command.action == "AbortJob"
    assert step_events(scenario.steps[2]) == [NodeRemoved(node="cpu-2", reason="injected failure")]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("count: 3", "cnt: 3", "nodes[0].cnt: unknown field"),
        ("count: 3", "count: 0", "nodes[0].count: must be >= 1"),
        ("memory: 64Gi}", "memory: 64Qi}", "nodes[0].allocatable.memory"),
        ("at: 1m", "at: soon", "workload[0].at: 'soon' is not a duration"),
        ("action: AbortJob", "action: Explode", "workload[0].command.action: unknown action 'Explode'"),
        ("replicas: 2", "replicas: -2", "workload[1].apply.spec"),
        ("{at: 2m, fail: {node: cpu-2}}", "{at: 2m}", "workload[2]: give exactly one of apply, command, fail"),
        ("until: 1h", "until: forever", "until: 'forever' is not a duration"),
        ("name: gpu-1,", "name: cpu-1,", "nodes[1]: node cpu-1 is declared twice"),
    ],
    ids=["unknown-field", "bad-count", "bad-quantity", "bad-time", "bad-action", "bad-job", "empty-step",
         "bad-until", "duplicate-node"],
)
def test_mistakes_name_the_entry_and_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, GOOD.replace(old, new, 1)))
    assert message in str(caught.value)
    assert str(tmp_path / "scenario.yaml") in str(caught.value)
