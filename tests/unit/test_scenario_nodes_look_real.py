"""A scenario's nodes carry what a kubelet gives every real node, unless the scenario says otherwise.

Where it sits: the simulated cluster's inputs (``eventbatch.sim.inputs``,
``docs/cluster.md``). Volcano's own examples select nodes by
``kubernetes.io/os: linux`` and request ``ephemeral-storage``; on nodes
without them they wait for ever (``tests/e2e/test_volcano_examples.py`` runs
them). Here: the defaults are on every node of an entry, and an entry's own
labels and resources win.
"""

from __future__ import annotations

from pathlib import Path

from eventbatch.sim.inputs import cluster_events
from schemas.events import NodeAdded
from schemas.quantity import to_resources
from schemas.scenario import load_scenario

SCENARIO = """\
nodes:
  - {prefix: cpu-, count: 2, allocatable: {cpu: 16, memory: 64Gi}}
  - {name: arm-1, allocatable: {cpu: 8, memory: 32Gi, ephemeral-storage: 20Gi, pods: 50},
     labels: {kubernetes.io/arch: arm64, kubernetes.io/hostname: arm-host, disk: ssd}}
"""


def _nodes(tmp_path: Path) -> dict[str, NodeAdded]:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    return {e.node: e for e in cluster_events(load_scenario(path)) if isinstance(e, NodeAdded)}


def test_every_node_has_the_well_known_labels_and_local_storage(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path)
    assert sorted(nodes) == ["arm-1", "cpu-0", "cpu-1"]
    for name in ("cpu-0", "cpu-1"):
        manifest = nodes[name].manifest
        assert manifest.metadata.labels == {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        }
        assert manifest.status.allocatable == {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        assert manifest.status.capacity == manifest.status.allocatable
        assert to_resources(manifest.status.allocatable)["ephemeral-storage"] == 100 * 2**30


def test_a_scenario_entry_overrides_the_defaults(tmp_path: Path) -> None:
    manifest = _nodes(tmp_path)["arm-1"].manifest
    assert manifest.metadata.labels == {
        "kubernetes.io/hostname": "arm-host", "kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64", "disk": "ssd",
    }
    assert manifest.status.allocatable == {"cpu": "8", "memory": "32Gi", "pods": "50", "ephemeral-storage": "20Gi"}
