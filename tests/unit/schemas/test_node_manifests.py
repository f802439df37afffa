"""v1 Node manifests at the edge: what Kubernetes accepts is read, the rest is refused with its field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.loaders import ManifestError, load_file, load_manifests
from schemas.resources import Node

ROOT = Path(__file__).resolve().parents[3]
FROM_KUBECTL = """
apiVersion: v1
kind: Node
metadata:
  name: gpu-1
  labels: {kubernetes.io/hostname: gpu-1, nvidia.com/gpu.product: A100}
  managedFields: []
spec:
  podCIDR: 10.244.1.0/24
  providerID: kind://docker/kind/gpu-1
  taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]
status:
  capacity: {cpu: 32, memory: 256Gi, pods: 110, nvidia.com/gpu: 8}
  allocatable: {cpu: 31500m, memory: 250Gi, pods: 110, nvidia.com/gpu: 8}
  nodeInfo: {kubeletVersion: v1.30.0}
"""


def test_a_node_as_kubectl_prints_it_is_read():
    [node] = load_manifests(FROM_KUBECTL)
    assert isinstance(node, Node)
    assert node.metadata.name == "gpu-1"
    assert node.status.allocatable["cpu"] == "31500m" and node.status.capacity["cpu"] == "32"
    assert [(t.key, t.effect) for t in node.spec.taints] == [("nvidia.com/gpu", "NoSchedule")]


def test_the_demo_cluster_file_is_a_list_of_nodes():
    nodes = load_file(ROOT / "examples" / "demo" / "cluster.yaml")
    assert [n.metadata.name for n in nodes] == ["cpu-1", "cpu-2", "cpu-3", "gpu-1"]


NODE = "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nspec: {spec}\nstatus: {status}\n"


@pytest.mark.parametrize(
    ("name", "spec", "status", "error"),
    [
        ('""', "{}", "{capacity: {cpu: 8}}", "(Node): metadata.name: required field is missing"),
        ("Big_Node", "{}", "{capacity: {cpu: 8}}", "metadata.name: 'Big_Node' is not a valid name"),
        ("n1", "{}", "{capacity: {cpu: 8x}}", "(Node n1): status.capacity.cpu: '8x' has unknown unit 'x'"),
        ("n1", "{}", "{allocatable: {memory: -1Gi}}", "status.allocatable.memory: must not be negative"),
        ("n1", "{}", "{capacity: {cpu: 4}, allocatable: {cpu: 8}}",
         "status.allocatable.cpu: must not be more than capacity (4)"),
        ("n1", "{}", "{}", "status: a node needs capacity or allocatable resources"),
        ("n1", "{taints: [{key: a, effect: Never}]}", "{capacity: {cpu: 8}}", "spec.taints[0].effect: must be one of"),
        ("n1", "{taints: [{key: '', effect: NoSchedule}]}", "{capacity: {cpu: 8}}", "spec.taints[0].key: required"),
        ("n1", "{unschedulabel: true}", "{capacity: {cpu: 8}}", "spec.unschedulabel: unknown field"),
    ],
    ids=["no-name", "bad-name", "bad-quantity", "negative", "above-capacity", "no-resources", "bad-effect",
         "taint-without-key", "typo"],
)
def test_what_kubernetes_would_refuse_is_refused(name, spec, status, error):
    with pytest.raises(ManifestError) as caught:
        load_manifests(NODE.format(name=name, spec=spec, status=status), source="node.yaml")
    assert str(caught.value).startswith("node.yaml document 1 ")
    assert error in str(caught.value)


def test_only_the_core_group_serves_nodes_and_pods():
    with pytest.raises(ManifestError, match=r"kind: unknown kind 'Service' for v1 \(known: Node, Pod\)"):
        load_manifests("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
