"""JobFlows through the whole simulated pipeline: steps in dependency order, refusals, ``why``.

The example scenario ``examples/jobflow.yaml`` (three JobTemplates; a JobFlow
whose ``train`` step waits for ``prepare`` and whose ``report`` waits for both)
runs with ``eventbatch.sim`` on a real SQLite log: every handler, the
scheduler and the simulated kubelet. The order is read from the log, and
``replay --verify``'s check finds every JobFlow decision reproduced.
``eventbatch why`` runs as a subprocess on a log stopped half-way. A JobFlow
with a cycle is refused at the edge (the loader and ``eventbatch apply``, which
appends nothing); one naming a JobTemplate that does not exist is refused by
the controller and changes nothing anywhere (the facts checker of
``tests/integration/test_requests_change_nothing.py``, with the JobFlow
controller's own fold added to the projections it compares).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eventbatch.app import cluster_handlers, default_handlers
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from eventbatch.verify import verify
from handlers.jobflow import JobFlowHandler
from schemas.envelope import Envelope
from schemas.events import JobFlowSubmitRequested, JobTemplateSubmitRequested
from schemas.loaders import ManifestError, decode_manifest, load_manifests
from schemas.scenario import load_scenario
from tests.integration.test_requests_change_nothing import Bench, expect
from tests.support.facts import PROJECTIONS, Projection, ReadModels, canonical

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "jobflow.yaml"
ENV = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def jobflow(name: str, flows: list[dict], **spec) -> dict:
    return {"apiVersion": "flow.volcano.sh/v1alpha1", "kind": "JobFlow",
            "metadata": {"name": name, "namespace": "default"}, "spec": {"flows": flows, **spec}}


async def _run(tmp_path: Path, scenario: Path) -> list[Envelope]:
    async with open_log(f"sqlite:///{tmp_path}/log.db") as log:
        await run_scenario(load_scenario(str(scenario)), log=log, settings=Settings())
        events: list[Envelope] = []
        await read_to_tail(log, 0, events.append)
        report = await verify(log, cluster_handlers("sim", default_handlers(Settings())))
        assert report.ok and report.clean, [d.describe() for d in report.divergences]
        assert report.checks["jobflow-controller"].decisions_matched > 0
    return events


def _first(events: list[Envelope], kind: str, **fields: str) -> int:
    """The position of the first ``kind`` event with these field values."""
    return next(e.position for e in events
                if e.type == kind and all(getattr(e.payload, k) == v for k, v in fields.items()))


async def test_a_jobflow_runs_its_steps_in_dependency_order(tmp_path: Path) -> None:
    events = await _run(tmp_path, EXAMPLE)
    created = {j: _first(events, "JobCreated", job=f"default/pipeline-{j}") for j in ("prepare", "train", "report")}
    completed = {j: _first(events, "JobPhaseChanged", job=f"default/pipeline-{j}", phase="Completed")
                 for j in ("prepare", "train", "report")}
    # train only after prepare completed; report only after both
    assert completed["prepare"] < created["train"] < completed["train"] < created["report"]
    # nothing of train or report existed while prepare ran
    assert created["prepare"] < completed["prepare"]
    phases = [e.payload.phase for e in events if e.type == "JobFlowPhaseChanged"]
    assert phases == ["Pending", "Running", "Succeed"]
    job = next(e.payload.manifest for e in events if e.type == "JobCreated" and e.payload.job == "default/pipeline-train")
    assert job.metadata.labels["volcano.sh/createdByJobFlow"] == "default.pipeline"
    assert job.metadata.labels["volcano.sh/createdByJobTemplate"] == "default.train"
    assert [(o.kind, o.name, o.controller) for o in job.metadata.owner_references] == [("JobFlow", "pipeline", True)]
    # retained: no Job of the flow was deleted
    assert not [e for e in events if e.type == "JobRemoved"]


async def test_delete_retain_policy_removes_the_jobs_once_the_flow_succeeds(tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["workload"][0]["apply"] = str(EXAMPLE.parent / "jobflow" / "templates.yaml")
    raw["workload"][1]["apply"]["spec"]["jobRetainPolicy"] = "delete"
    scenario = tmp_path / "delete.yaml"
    scenario.write_text(yaml.safe_dump(raw))
    events = await _run(tmp_path, scenario)
    succeed = _first(events, "JobFlowPhaseChanged", phase="Succeed")
    removed = [e for e in events if e.type == "JobRemoved"]
    assert sorted(e.payload.job for e in removed) == [f"default/pipeline-{j}" for j in ("prepare", "report", "train")]
    assert all(e.position > succeed for e in removed)


async def test_why_names_the_dependency_a_step_waits_for_and_its_phase(tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["workload"][0]["apply"] = str(EXAMPLE.parent / "jobflow" / "templates.yaml")
    raw["until"] = "8m"  # prepare took 5m; train runs for 10m
    scenario = tmp_path / "half.yaml"
    scenario.write_text(yaml.safe_dump(raw))
    async with open_log(f"sqlite:///{tmp_path}/log.db") as log:
        await run_scenario(load_scenario(str(scenario)), log=log, settings=Settings())

    def why(name: str) -> str:
        result = subprocess.run([sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{tmp_path}/log.db", "why", name],
                                capture_output=True, text=True, timeout=120, env=ENV, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout

    step = why("pipeline-report")
    assert "is step report of jobflow default/pipeline" in step
    assert "dependency train: its Job default/pipeline-train is Running (needs Completed)" in step
    assert "dependency prepare" not in step  # prepare is Completed: not waited for
    flow = why("default/pipeline")
    assert flow.splitlines()[0].startswith("jobflow default/pipeline is Running")
    assert "prepare: Job default/pipeline-prepare is Completed" in flow
    assert "train: Job default/pipeline-train is Running" in flow
    assert "report: waits for dependency train: its Job default/pipeline-train is Running" in flow
    # a step that has its Job: the job's own story
    assert "job default/pipeline-train in queue default" in why("pipeline-train")


@pytest.mark.parametrize(
    ("flows", "path", "reason"),
    [
        ([{"name": "a", "dependsOn": {"targets": ["b"]}}, {"name": "b", "dependsOn": {"targets": ["a"]}}],
         "spec.flows[0].dependsOn.targets", "cycle: a -> b -> a"),
        ([{"name": "a", "dependsOn": {"targets": ["a"]}}], "spec.flows[0].dependsOn.targets", "cycle: a -> a"),
        ([{"name": "a"}, {"name": "b", "dependsOn": {"targets": ["a", "x"]}}],
         "spec.flows[1].dependsOn.targets[1]", "flow 'x' is not defined"),
        ([{"name": "a"}, {"name": "a"}], "spec.flows[1].name", "duplicate flow name 'a'"),
    ],
)
def test_a_flow_graph_volcano_refuses_is_refused_naming_the_field(flows, path, reason) -> None:
    with pytest.raises(ManifestError) as refused:
        decode_manifest(jobflow("f", flows))
    assert refused.value.path == path
    assert reason in refused.value.reason


def test_a_cycle_is_refused_by_apply_and_nothing_is_appended(tmp_path: Path) -> None:
    manifest = tmp_path / "cycle.yaml"
    manifest.write_text(yaml.safe_dump(jobflow("loop", [
        {"name": "a"}, {"name": "b", "dependsOn": {"targets": ["a", "c"]}}, {"name": "c", "dependsOn": {"targets": ["b"]}},
    ])))
    log = f"sqlite:///{tmp_path}/log.db"
    result = subprocess.run([sys.executable, "-m", "eventbatch", "--log", log, "apply", "-f", str(manifest)],
                            capture_output=True, text=True, timeout=120, env=ENV, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "spec.flows[1].dependsOn.targets: flows depend on each other in a cycle: b -> c -> b" in result.stderr
    assert not (tmp_path / "log.db").exists() or _end(log) == 0


def _end(url: str) -> int:
    import asyncio

    async def end() -> int:
        async with open_log(url) as log:
            return await log.end_position()
    return asyncio.run(end())


def test_the_volcano_example_files_load_as_both_kinds() -> None:
    fixtures = ROOT / "tests" / "fixtures" / "volcano" / "examples" / "jobflow"
    (flow,) = load_manifests((fixtures / "JobFlow.yaml").read_text())
    templates = load_manifests((fixtures / "JobTemplate.yaml").read_text())
    assert [f.name for f in flow.spec.flows] == ["a", "b", "c", "d", "e"]
    assert flow.spec.flows[4].depends_on.targets == ["c", "d"]
    assert [t.metadata.name for t in templates] == ["a", "b", "c", "d", "e"]
    assert all(t.spec.queue == "default" and t.spec.tasks[0].replicas == 1 for t in templates)


async def test_a_refused_jobflow_changes_nothing(tmp_path: Path) -> None:
    """An unknown template and a changed spec are refused; neither changes any projection,
    the JobFlow controller's own state included; a JobFlow of known templates runs."""
    handler = JobFlowHandler()
    projections = (*PROJECTIONS, Projection("jobflows", handler.initial,
                                            lambda state, env, _: handler.fold(state, env), canonical))
    template = decode_manifest({"apiVersion": "flow.volcano.sh/v1alpha1", "kind": "JobTemplate",
                                "metadata": {"name": "a", "namespace": "default"},
                                "spec": {"tasks": [{"name": "main", "replicas": 1, "template": {
                                    "metadata": {"annotations": {"eventbatch.io/sim-duration": "1m"}},
                                    "spec": {"containers": [{"name": "c", "image": "busybox",
                                                             "resources": {"requests": {"cpu": "1"}}}]}}}]}})
    good = decode_manifest(jobflow("good", [{"name": "a"}, {"name": "b", "dependsOn": {"targets": ["a"]}}]))
    async with open_log(f"sqlite:///{tmp_path}/events.db") as log, ReadModels(log, tmp_path) as read_models:
        bench = Bench(log, read_models)
        await bench.start()

        async def request(event):
            return await bench.request(event, projections=projections)

        expect(await request(JobFlowSubmitRequested(jobflow="default/good", manifest=good)),
               "JobFlowRefused", "spec.flows[0].name: jobtemplate default/a not found")
        expect(await request(JobTemplateSubmitRequested(template="default/a", manifest=template)), "JobTemplateCreated")
        expect(await request(JobFlowSubmitRequested(jobflow="default/good", manifest=good)),
               "JobFlowRefused", "spec.flows[1].name: jobtemplate default/b not found")
        one = decode_manifest(jobflow("good", [{"name": "a"}]))
        expect(await request(JobFlowSubmitRequested(jobflow="default/good", manifest=one)), "JobFlowCreated")
        expect(await request(JobFlowSubmitRequested(jobflow="default/good", manifest=one)), None)
        expect(await request(JobFlowSubmitRequested(jobflow="default/good", manifest=good)),
               "JobFlowRefused", "its spec cannot change")
        await bench.wait(200)
        assert bench.pipeline.runner("job-controller").state.jobs["default/good-a"].phase == "Completed"
        assert bench.pipeline.runner("jobflow-controller").state.flows["default/good"].phase == "Succeed"
