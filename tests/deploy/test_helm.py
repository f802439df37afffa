"""The Helm chart ``deploy/helm/eventbatch`` renders the objects the kustomize overlays do.

``helm template`` of the chart with each choice of values is compared, object by
object, with ``kubectl kustomize`` of the matching overlay (``deploy/overlays/volcano``,
``deploy/overlays/eventbatch``, ``deploy/overlays/monitoring``, ``deploy/kafka``), so
that the two ways of installing cannot drift apart. The chart's only additions are
Helm's hook annotations on the ``default`` Queue. ``helm`` is the binary ``.ci/run``
installs into the virtualenv (pinned); ``kubectl`` comes with the test extra.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "eventbatch"
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"
HELM_HOOK = "helm.sh/"


def _helm() -> str:
    found = BIN / "helm" if (BIN / "helm").exists() else shutil.which("helm")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"no helm in {BIN} or on PATH: .ci/run installs it")
        pytest.skip("no helm binary (.ci/run installs it into the virtualenv)")
    return str(found)


def _objects(text: str) -> dict[tuple[str, str, str, str], Any]:
    objects = {}
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        meta = doc["metadata"]
        annotations = meta.get("annotations", {})
        for name in [a for a in annotations if a.startswith(HELM_HOOK)]:
            del annotations[name]
        if "annotations" in meta and not annotations:
            del meta["annotations"]
        key = (doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"])
        assert key not in objects, f"{key} rendered twice"
        objects[key] = doc
    return objects


def helm_template(*values: str) -> dict[tuple[str, str, str, str], Any]:
    sets = [arg for value in values for arg in ("--set", value)]
    run = subprocess.run(
        [_helm(), "template", "eventbatch", str(CHART), "--namespace", "eventbatch-system", *sets],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return _objects(run.stdout)


def kustomize(*paths: str) -> dict[tuple[str, str, str, str], Any]:
    objects: dict[tuple[str, str, str, str], Any] = {}
    for path in paths:
        run = subprocess.run([str(KUBECTL), "kustomize", str(ROOT / path)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        objects.update(_objects(run.stdout))
    return objects


def assert_same(chart: dict, kustomized: dict) -> None:
    assert sorted(chart) == sorted(kustomized)
    for key in kustomized:
        assert chart[key] == kustomized[key], f"{key} differs"


@pytest.mark.parametrize(
    ("values", "paths"),
    [
        ([], ["deploy/overlays/volcano"]),
        (["apiGroups=eventbatch"], ["deploy/overlays/eventbatch"]),
        (["kafkaTopic.enabled=true"], ["deploy/overlays/volcano", "deploy/kafka"]),
    ],
    ids=["volcano", "eventbatch", "kafka-topic"],
)
def test_the_chart_renders_the_objects_of_the_matching_overlay(values: list[str], paths: list[str]) -> None:
    assert_same(helm_template("createNamespace=true", *values), kustomize(*paths))


def test_the_chart_with_a_service_monitor_renders_the_monitoring_overlay() -> None:
    overlay = ROOT / "deploy" / "overlays" / "monitoring"
    if not overlay.exists():
        pytest.skip("deploy/overlays/monitoring is not there")
    assert_same(helm_template("createNamespace=true", "serviceMonitor.enabled=true"), kustomize(str(overlay)))


def test_values_set_the_log_replicas_resources_and_workload_namespaces() -> None:
    objects = helm_template(
        "log=kafka://broker.example:9092/events", "replicas=3", "resources.limits.memory=2Gi",
        "workloadNamespaces={team-a,team-b}", "image.tag=0.2.0",
    )
    settings = objects[("v1", "ConfigMap", "eventbatch-system", "eventbatch-settings")]
    assert settings["data"]["EVENTBATCH_LOG"] == "kafka://broker.example:9092/events"
    deployment = objects[("apps/v1", "Deployment", "eventbatch-system", "eventbatch")]
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["memory"] == "2Gi"
    assert container["image"] == "ghcr.io/eventbatch/eventbatch:0.2.0"
    bindings = {key[2] for key in objects if key[1] == "RoleBinding" and key[3] == "eventbatch-workloads"}
    assert bindings == {"team-a", "team-b"}
    assert not any(key[1] == "Namespace" for key in objects)  # helm install --create-namespace


def test_an_unknown_api_group_choice_is_refused() -> None:
    run = subprocess.run(
        [_helm(), "template", "eventbatch", str(CHART), "--set", "apiGroups=kubeflow"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode != 0
    assert 'apiGroups: "kubeflow" is neither volcano nor eventbatch' in run.stderr
