"""The CRDs are generated from ``schemas`` and accept what the loaders accept.

``deploy/crds`` must be exactly what ``eventbatch crds`` generates now, so the
API server's schema and the decoder's types cannot drift; every Volcano Job
and Queue in ``examples/`` passes the schema with nothing pruned, once only
its apiVersion is changed; and the schemas stay inside Kubernetes'
structural subset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventbatch.kube.crds import GROUPS, all_crds, open_api_schema, render
from tests.kube.apiserver.schema import check
from tests.kube.conftest import CRD_DIR, ROOT

VOLCANO = {
    "batch.volcano.sh/v1alpha1": "batch.eventbatch.io/v1alpha1",
    "scheduling.volcano.sh/v1beta1": "scheduling.eventbatch.io/v1beta1",
    "bus.volcano.sh/v1alpha1": "bus.eventbatch.io/v1alpha1",
}


def _manifests(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("apiVersion") in VOLCANO and node.get("kind") in GROUPS:
            return [node]
        return [m for v in node.values() for m in _manifests(v)]
    if isinstance(node, list):
        return [m for v in node for m in _manifests(v)]
    return []


def example_manifests() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for i, manifest in enumerate(_manifests(doc)):
                out.append((f"{path.name}:{manifest['kind']}:{manifest['metadata'].get('name', i)}", manifest))
    return out


EXAMPLES = example_manifests()


def test_committed_crds_are_the_generated_ones() -> None:
    committed = {p.name: p.read_text() for p in CRD_DIR.glob("*.eventbatch.io.yaml")}
    generated = {name: render(manifest) for name, manifest in all_crds().items()}
    assert sorted(committed) == sorted(generated)
    stale = [name for name in generated if committed[name] != generated[name]]
    assert not stale, f"deploy/crds is stale, run `eventbatch crds --output-dir deploy/crds`: {stale}"


def test_the_crds_command_prints_every_crd() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "eventbatch", "crds"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    names = sorted(doc["metadata"]["name"] for doc in yaml.safe_load_all(out))
    assert names == sorted(m["metadata"]["name"] for m in all_crds().values())


def test_examples_were_found() -> None:
    kinds = {m["kind"] for _, m in EXAMPLES}
    assert {"Job", "Queue"} <= kinds


@pytest.mark.parametrize("name, manifest", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_a_volcano_manifest_needs_only_its_api_version_changed(name: str, manifest: dict[str, Any]) -> None:
    ours = {**manifest, "apiVersion": VOLCANO[manifest["apiVersion"]]}
    pruned, errors = check(ours, open_api_schema(manifest["kind"]))
    assert errors == []
    assert pruned == ours, "the API server would drop fields of this manifest"


@pytest.mark.parametrize(
    "cpu, accepted",
    [(2, True), ("500m", True), ("1.5", True), (True, False), ([1], False)],
    ids=["integer", "milli-string", "decimal-string", "boolean", "list"],
)
def test_quantities_are_int_or_string(cpu: Any, accepted: bool) -> None:
    queue = {"apiVersion": "scheduling.eventbatch.io/v1beta1", "kind": "Queue", "metadata": {"name": "q"}, "spec": {"capability": {"cpu": cpu}}}
    _, errors = check(queue, open_api_schema("Queue"))
    assert (errors == []) == accepted


def _walk(node: dict[str, Any], path: str = ""):
    yield path, node
    for key, sub in (node.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", sorted(GROUPS))
def test_schemas_are_structural(kind: str) -> None:
    for path, node in _walk(open_api_schema(kind)):
        assert "$ref" not in node and "default" not in node, path
        if node.get("x-kubernetes-int-or-string"):
            assert node.get("anyOf") == [{"type": "integer"}, {"type": "string"}], path
        elif not node.get("x-kubernetes-preserve-unknown-fields"):
            assert node.get("type") in ("object", "array", "string", "integer", "number", "boolean"), path


@pytest.mark.parametrize(
    "kind, columns",
    [
        ("Job", ["Status", "Queue", "MinAvailable", "Running", "Age"]),
        ("Queue", ["State", "Weight", "Parent", "Running", "Age"]),
        ("PodGroup", ["Status", "Queue", "MinMember", "Running", "Age"]),
    ],
    ids=["job", "queue", "podgroup"],
)
def test_status_subresource_and_printer_columns(kind: str, columns: list[str]) -> None:
    crd = next(c for c in all_crds().values() if c["spec"]["names"]["kind"] == kind)
    (version,) = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == columns
    schema = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        node = schema
        for part in column["jsonPath"].strip(".").split(".")[:-1]:
            if part != "metadata":
                node = node["properties"][part]
        if not column["jsonPath"].startswith(".metadata"):
            assert column["jsonPath"].rsplit(".", 1)[1] in node["properties"], column


def test_queue_is_cluster_scoped_and_the_rest_namespaced() -> None:
    scopes = {c["spec"]["names"]["kind"]: c["spec"]["scope"] for c in all_crds().values()}
    assert scopes == {"Job": "Namespaced", "Queue": "Cluster", "PodGroup": "Namespaced", "Command": "Namespaced"}


def test_crd_files_are_in_the_crds_kustomization() -> None:
    listed = yaml.safe_load((CRD_DIR / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(all_crds())
    assert Path(CRD_DIR).is_dir()


def test_the_default_queue_passes_admission_and_the_schema() -> None:
    from schemas.loaders import load_file

    path = ROOT / "deploy" / "queues" / "default-queue.yaml"
    (queue,) = load_file(path)
    assert queue.metadata.name == "default"
    _, errors = check(yaml.safe_load(path.read_text()), open_api_schema("Queue"))
    assert errors == []
