"""The ``eventbatch`` command as a user runs it: a real subprocess on a real SQLite log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BAD_JOB = """\
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: bad-job}
spec:
  tasks:
    - name: a
      replicas: 2
      template: {spec: {containers: [{name: c, image: x}]}}
    - name: b
      replicas: -1
      template: {spec: {containers: [{name: c, image: x}]}}
"""


def eventbatch(*args: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    flags = ["--log", f"sqlite:///{log}"] if log is not None else []
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", *flags, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def tail(log: Path, *extra: str) -> list[dict]:
    result = eventbatch("events", "tail", "-o", "json", *extra, log=log)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_schema_events_prints_a_json_schema_of_every_event() -> None:
    result = eventbatch("schema", "events")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    names = {ref["$ref"].rsplit("/", 1)[1] for ref in schema["anyOf"]}
    assert {"JobSubmitRequested", "PodBound", "PodFailed", "QueueStateChanged", "TimerFired"} <= names
    assert schema["$defs"]["PodFailed"]["required"] == ["type", "pod", "exit_code"]


def test_an_invalid_manifest_is_rejected_and_nothing_is_appended(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(BAD_JOB)
    log = tmp_path / "events.db"
    result = eventbatch("job", "submit", "-f", str(manifest), log=log)
    assert result.returncode == 2
    assert "spec.tasks[1].replicas" in result.stderr and "must be >= 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not log.exists()


def test_applied_manifests_and_commands_land_on_the_log_in_order(tmp_path: Path) -> None:
    log = tmp_path / "events.db"
    applied = eventbatch("apply", "-f", str(ROOT / "examples/demo/queues.yaml"), log=log)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == ["QueueCreateRequested default at #0", "QueueCreateRequested research at #1"]
    submitted = eventbatch("job", "submit", "-f", str(ROOT / "examples/demo/mpi-job.yaml"), log=log)
    assert submitted.returncode == 0, submitted.stderr
    suspended = eventbatch("job", "suspend", "lm-mpi", log=log)
    assert suspended.returncode == 0, suspended.stderr

    events = tail(log)
    assert [e["type"] for e in events] == [
        "QueueCreateRequested", "QueueCreateRequested", "JobSubmitRequested", "JobSubmitRequested", "JobCommandRequested",
    ]
    job = events[2]["payload"]["manifest"]
    assert job["spec"]["minAvailable"] == 5 and job["spec"]["maxRetry"] == 3  # defaulted at the edge
    assert events[4]["payload"]["command"]["action"] == "AbortJob"
    assert [e["key"] for e in tail(log, "--job", "lm-mpi")] == ["default/lm-mpi", "default/lm-mpi"]


@pytest.mark.parametrize(
    "args",
    [["job", "submit", "-f", "/nonexistent.yaml"], ["queue", "create", "-f", "examples/demo/mpi-job.yaml"]],
    ids=["missing-file", "wrong-kind"],
)
def test_user_errors_are_one_clear_line(tmp_path: Path, args: list[str]) -> None:
    result = eventbatch(*args, log=tmp_path / "events.db")
    assert result.returncode == 2
    assert result.stderr.startswith("eventbatch: error: ")
    assert "Traceback" not in result.stderr


def test_deleting_unknown_objects_is_refused_unless_forced(tmp_path: Path) -> None:
    log = tmp_path / "events.db"
    eventbatch("apply", "-f", str(ROOT / "examples/demo/queues.yaml"), log=log)
    refused = eventbatch("job", "delete", "train", "-n", "ml", log=log)
    assert refused.returncode == 2 and "job ml/train not found" in refused.stderr
    assert eventbatch("job", "delete", "train", "-n", "ml", "--force", log=log).returncode == 0
    assert eventbatch("queue", "delete", "batch", "--force", log=log).returncode == 0
    events = tail(log)
    assert [(e["type"], e["key"]) for e in events[2:]] == [
        ("JobDeleteRequested", "ml/train"),
        ("QueueDeleteRequested", "batch"),
    ]


def test_the_demo_runs_the_pipeline_and_explains_the_gang_that_cannot_fit(tmp_path: Path) -> None:
    result = eventbatch("demo", log=tmp_path / "events.db")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "default/lm-mpi-launcher-0" in result.stdout
    assert "5 bound" in result.stdout
    line = next(row for row in result.stdout.splitlines() if row.startswith("default/too-big"))
    assert "Insufficient cpu" in line and "untolerated taint" in line
