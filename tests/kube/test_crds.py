"""The CRDs are generated from ``schemas`` and accept what the loaders accept.

``deploy/crds/<groups>`` must be exactly what ``eventbatch crds
--api-groups=<groups>`` generates now, so the API server's schema and the
decoder's types cannot drift; every Volcano Job and Queue in ``examples/``
passes the schema with nothing pruned (unchanged in Volcano's groups, with
only its apiVersion changed in the project's); and the schemas stay inside
Kubernetes' structural subset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventbatch.kube.crds import GROUPS, all_crds, groups, open_api_schema, render
from eventbatch.settings import API_GROUPS
from tests.kube.apiserver.schema import check
from tests.kube.conftest import CRDS, ROOT

VOLCANO_CRD_DIR = ROOT / "tests" / "fixtures" / "volcano" / "crds" / "volcano" / "bases"
VOLCANO_CRDS = {
    "Job": VOLCANO_CRD_DIR / "batch.volcano.sh_jobs.yaml",
    "Queue": VOLCANO_CRD_DIR / "scheduling.volcano.sh_queues.yaml",
    "PodGroup": VOLCANO_CRD_DIR / "scheduling.volcano.sh_podgroups.yaml",
    "Command": VOLCANO_CRD_DIR / "bus.volcano.sh_commands.yaml",
}
VOLCANO = {
    "batch.volcano.sh/v1alpha1": "batch.eventbatch.io/v1alpha1",
    "scheduling.volcano.sh/v1beta1": "scheduling.eventbatch.io/v1beta1",
    "bus.volcano.sh/v1alpha1": "bus.eventbatch.io/v1alpha1",
    "topology.volcano.sh/v1alpha1": "topology.eventbatch.io/v1alpha1",
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
        if "node_modules" in path.parts:  # the Node consumer example's installed packages
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            for i, manifest in enumerate(_manifests(doc)):
                out.append((f"{path.name}:{manifest['kind']}:{manifest['metadata'].get('name', i)}", manifest))
    return out


EXAMPLES = example_manifests()


@pytest.mark.parametrize("api_groups", API_GROUPS)
def test_committed_crds_are_the_generated_ones(api_groups: str) -> None:
    folder = CRDS / api_groups
    committed = {p.name: p.read_text() for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"}
    generated = {name: render(manifest) for name, manifest in all_crds(api_groups).items()}
    assert sorted(committed) == sorted(generated)
    stale = [name for name in generated if committed[name] != generated[name]]
    assert not stale, (
        f"deploy/crds/{api_groups} is stale, run "
        f"`eventbatch crds --api-groups={api_groups} --output-dir deploy/crds/{api_groups}`: {stale}"
    )


@pytest.mark.parametrize("flag, env, group", [
    ([], {}, "batch.volcano.sh"),
    (["--api-groups=eventbatch"], {}, "batch.eventbatch.io"),
    ([], {"EVENTBATCH_API_GROUPS": "eventbatch"}, "batch.eventbatch.io"),
    (["--api-groups=volcano"], {"EVENTBATCH_API_GROUPS": "eventbatch"}, "batch.volcano.sh"),
], ids=["default", "flag", "env", "flag-over-env"])
def test_the_crds_command_prints_every_crd_in_the_groups_chosen(flag: list[str], env: dict[str, str], group: str) -> None:
    import os

    environ = {k: v for k, v in os.environ.items() if k != "EVENTBATCH_API_GROUPS"} | env
    out = subprocess.run(
        [sys.executable, "-m", "eventbatch", "crds", *flag], capture_output=True, text=True, check=True, cwd=ROOT, env=environ
    ).stdout
    docs = list(yaml.safe_load_all(out))
    api_groups = "volcano" if group.endswith("volcano.sh") else "eventbatch"
    assert sorted(d["metadata"]["name"] for d in docs) == sorted(m["metadata"]["name"] for m in all_crds(api_groups).values())
    assert f"jobs.{group}" in {d["metadata"]["name"] for d in docs}


def test_an_unknown_api_groups_value_is_one_line_and_exit_2() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "eventbatch", "crds", "--api-groups=kubeflow"], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 2 and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and "--api-groups" in run.stderr


def test_examples_were_found() -> None:
    kinds = {m["kind"] for _, m in EXAMPLES}
    assert {"Job", "Queue"} <= kinds


@pytest.mark.parametrize("name, manifest", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_a_volcano_manifest_passes_the_schema_with_nothing_dropped(name: str, manifest: dict[str, Any]) -> None:
    from tests.kube.apiserver.cel import validate

    schema = open_api_schema(manifest["kind"])
    for version in (manifest, {**manifest, "apiVersion": VOLCANO[manifest["apiVersion"]]}):
        pruned, errors = check(version, schema)
        assert errors == []
        assert pruned == version, "the API server would drop fields of this manifest"
        assert validate(pruned, schema) == []


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
def test_status_subresource_as_volcano_has_it_and_printer_columns(kind: str, columns: list[str]) -> None:
    crd = next(c for c in all_crds().values() if c["spec"]["names"]["kind"] == kind)
    (version,) = crd["spec"]["versions"]
    volcano = yaml.safe_load(VOLCANO_CRDS[kind].read_text())
    assert (version.get("subresources") or {}) == (volcano["spec"]["versions"][0].get("subresources") or {})
    assert ("status" in (version.get("subresources") or {})) == (kind != "PodGroup")
    assert [c["name"] for c in version["additionalPrinterColumns"]] == columns
    schema = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        node = schema
        for part in column["jsonPath"].strip(".").split(".")[:-1]:
            if part != "metadata":
                node = node["properties"][part]
        if not column["jsonPath"].startswith(".metadata"):
            assert column["jsonPath"].rsplit(".", 1)[1] in node["properties"], column


def test_queue_and_hypernode_are_cluster_scoped_and_the_rest_namespaced() -> None:
    scopes = {c["spec"]["names"]["kind"]: c["spec"]["scope"] for c in all_crds().values()}
    assert scopes == {"Job": "Namespaced", "Queue": "Cluster", "PodGroup": "Namespaced", "Command": "Namespaced",
                      "JobFlow": "Namespaced", "JobTemplate": "Namespaced", "CronJob": "Namespaced", "HyperNode": "Cluster"}


@pytest.mark.parametrize("api_groups", API_GROUPS)
def test_crd_files_are_in_the_crds_kustomization(api_groups: str) -> None:
    listed = yaml.safe_load((CRDS / api_groups / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(all_crds(api_groups))
    assert Path(CRDS / api_groups).is_dir()


@pytest.mark.parametrize("api_groups", API_GROUPS)
def test_the_default_queue_passes_admission_and_the_schema(api_groups: str) -> None:
    from schemas.loaders import load_file

    path = ROOT / "deploy" / "overlays" / api_groups / "default-queue.yaml"
    (queue,) = load_file(path)
    assert queue.metadata.name == "default"
    manifest = yaml.safe_load(path.read_text())
    assert manifest["apiVersion"] == "/".join(groups(api_groups)["Queue"])
    _, errors = check(manifest, open_api_schema("Queue"))
    assert errors == []
