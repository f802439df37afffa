"""RuntimeClass objects in a scenario (``runtimeClasses``) run through the real controllers, scheduler and
simulated kubelet: the class's pods go where its scheduling says, its overhead counts against the nodes, and
the same class given as the predicates plugin's ``runtimeClasses`` argument places the pods the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from schemas.envelope import Envelope
from schemas.scenario import ScenarioError, load_scenario

SCHEDULING = {"nodeSelector": {"sandbox": "gvisor"}, "tolerations": [{"key": "sandbox", "operator": "Exists"}]}
CLASS = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"}, "handler": "runsc",
         "scheduling": SCHEDULING}
QUEUE = {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue", "metadata": {"name": "default"},
         "spec": {"weight": 1}}


def _job(name: str, replicas: int, cpu: str) -> dict[str, Any]:
    container = {"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu}}}
    return {"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "metadata": {"name": name},
            "spec": {"minAvailable": 1, "queue": "default", "tasks": [{"name": "w", "replicas": replicas, "template": {
                "metadata": {"annotations": {"eventbatch.io/sim-duration": "10m"}},
                "spec": {"runtimeClassName": "gvisor", "containers": [container]}}}]}}


def _scenario(**extra: Any) -> dict[str, Any]:
    return {
        "nodes": [{"name": "sandboxed", "allocatable": {"cpu": 8, "memory": "32Gi"}, "labels": {"sandbox": "gvisor"},
                   "taints": [{"key": "sandbox", "value": "yes", "effect": "NoSchedule"}]},
                  {"name": "plain", "allocatable": {"cpu": 8, "memory": "32Gi"}}],
        "queues": [QUEUE], "workload": [{"at": "0s", "apply": _job("sbx", 3, "2")}], "until": "1h", **extra,
    }


async def _bound(tmp_path: Path, raw: dict[str, Any]) -> list[tuple[str, str]]:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    async with open_log("memory://") as log:
        await run_scenario(load_scenario(path), log=log, settings=Settings())
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
    return [(e.payload.pod, e.payload.node) for e in events if e.type == "PodBound"]


async def test_a_scenario_runtime_class_places_and_prices_its_pods(tmp_path: Path) -> None:
    as_object = await _bound(tmp_path, _scenario(runtimeClasses=[CLASS]))
    assert sorted(as_object) == [("default/sbx-w-0", "sandboxed"), ("default/sbx-w-1", "sandboxed"),
                                 ("default/sbx-w-2", "sandboxed")]
    conf = {"actions": "enqueue, allocate, backfill", "tiers": [{"plugins": [
        {"name": "priority"}, {"name": "gang"}, {"name": "predicates", "arguments": {"runtimeClasses": {
            "gvisor": SCHEDULING}}}, {"name": "proportion"}, {"name": "nodeorder"}]}]}
    conf_object = await _bound(tmp_path, _scenario(runtimeClasses=[CLASS], scheduler=conf))
    as_argument = await _bound(tmp_path, _scenario(scheduler=conf))
    assert as_argument == conf_object  # the argument and the object decide the same, pod by pod
    # 1 cpu of overhead each: 3 x (2 + 1) = 9 > 8, so the third pod waits (for the first to finish, 10 minutes on)
    priced = await _bound(tmp_path, _scenario(runtimeClasses=[{**CLASS, "overhead": {"podFixed": {"cpu": "1"}}}],
                                              until="5m"))
    assert sorted(priced) == [("default/sbx-w-0", "sandboxed"), ("default/sbx-w-1", "sandboxed")]


def test_a_bad_runtime_class_in_a_scenario_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(_scenario(runtimeClasses=[{**CLASS, "handler": ""}])))
    with pytest.raises(ScenarioError, match=r"runtimeClasses\[0\]: handler: required"):
        load_scenario(path)
