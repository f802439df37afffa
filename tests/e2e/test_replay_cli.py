"""``eventbatch replay``, ``audit`` and the list/view commands, as a user runs them:
a real subprocess on a real SQLite log written by ``eventbatch simulate``."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from eventbatch.log.codec import decode, encode

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """\
nodes:
- {prefix: node-, count: 2, allocatable: {cpu: 4, memory: 16Gi}}
queues:
- {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: default}, spec: {weight: 1}}
- {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: research}, spec: {weight: 2}}
workload:
- at: 0s
  apply:
    apiVersion: batch.volcano.sh/v1alpha1
    kind: Job
    metadata: {name: train, namespace: default}
    spec:
      queue: research
      minAvailable: 2
      tasks:
      - name: worker
        replicas: 2
        template:
          metadata: {annotations: {eventbatch.io/sim-duration: 2m}}
          spec: {containers: [{name: c, image: x, resources: {requests: {cpu: "1", memory: 1Gi}}}]}
- at: 10s
  apply:
    apiVersion: batch.volcano.sh/v1alpha1
    kind: Job
    metadata: {name: flaky, namespace: default}
    spec:
      queue: research
      minAvailable: 1
      maxRetry: 1
      policies: [{exitCode: 3, action: RestartJob}]
      tasks:
      - name: main
        replicas: 1
        template:
          metadata: {annotations: {eventbatch.io/sim-duration: 1m, eventbatch.io/sim-exit-code: "3"}}
          spec: {containers: [{name: c, image: x, resources: {requests: {cpu: "1", memory: 1Gi}}}]}
until: all-finished
"""


def eventbatch(log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("replay-cli")
    (tmp / "scenario.yaml").write_text(SCENARIO)
    log = tmp / "events.db"
    result = eventbatch(log, "simulate", str(tmp / "scenario.yaml"))
    assert result.returncode == 0, result.stderr
    return log


def test_replay_rebuilds_every_read_model_and_the_lists_read_them(simulated: Path) -> None:
    result = eventbatch(simulated, "replay")
    assert result.returncode == 0, result.stderr
    assert "rebuilt every read model from" in result.stdout
    assert (simulated.parent / "events.views.db").exists()

    queues = eventbatch(simulated, "queue", "list").stdout.splitlines()
    assert queues[0].split()[:4] == ["NAME", "STATE", "WEIGHT", "PENDING"]
    research = next(line.split() for line in queues if line.startswith("research"))
    assert research[:3] == ["research", "Open", "2"]
    assert sum(map(int, research[3:8])) == 2  # both podgroups counted, whatever their phase

    jobs = {line.split()[1]: line.split()[3] for line in eventbatch(simulated, "job", "list").stdout.splitlines()[1:]}
    assert jobs == {"train": "Completed", "flaky": "Failed"}


def test_job_view_and_queue_get_show_volcano_status(simulated: Path) -> None:
    view = eventbatch(simulated, "job", "view", "flaky", "-o", "json")
    assert view.returncode == 0, view.stderr
    status = json.loads(view.stdout)["status"]
    assert (status["state"]["phase"], status["retryCount"]) == ("Failed", 1)
    text = eventbatch(simulated, "job", "view", "train").stdout
    assert "default/train-worker-0" in text and "Succeeded" in text

    queue = json.loads(eventbatch(simulated, "queue", "get", "research", "-o", "json").stdout)
    assert queue["status"]["state"] == "Open"
    assert set(queue["status"]) >= {"pending", "inqueue", "running", "completed", "unknown", "allocated", "deserved",
                                    "guarantee", "share"}
    missing = eventbatch(simulated, "queue", "get", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (2, "eventbatch: error: queue nope not found")


def test_audit_job_shows_the_causation_chain_and_the_rules(simulated: Path) -> None:
    result = eventbatch(simulated, "audit", "job", "flaky")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "PodFailed(exit 3" in out
    assert "-> policy " in out and "RestartJob" in out  # the lifecycle policy behind the restart
    assert "-> allocate" in out  # the scheduler rule behind each bind
    queue = eventbatch(simulated, "audit", "queue", "research").stdout
    assert "QueueCreated" in queue and "PodGroupCreated" in queue


def test_replay_to_a_position_shows_the_past(simulated: Path) -> None:
    early = json.loads(eventbatch(simulated, "replay", "--to", "20", "-o", "json").stdout)
    final = json.loads(eventbatch(simulated, "replay", "--to", "100000", "-o", "json").stdout)
    assert early["position"] == 20
    assert final["jobs"]["default/train"]["state"]["phase"] == "Completed"
    assert early["jobs"].get("default/train", {}).get("state", {}).get("phase") != "Completed"
    at = eventbatch(simulated, "replay", "--at", "30s")
    assert at.returncode == 0, at.stderr
    assert "== queues ==" in at.stdout and "== nodes ==" in at.stdout


def test_verify_passes_on_the_recording_and_fails_on_a_doctored_copy(simulated: Path, tmp_path: Path) -> None:
    ok = eventbatch(simulated, "replay", "--verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "every recorded decision and effect is reproduced" in ok.stdout

    doctored = tmp_path / "doctored.db"
    shutil.copy(simulated, doctored)
    with sqlite3.connect(doctored) as db:
        for position, data in db.execute("SELECT position, data FROM events ORDER BY position").fetchall():
            env = decode(position, data)
            if env.type == "JobPhaseChanged" and env.payload.phase == "Failed":
                import msgspec

                changed = msgspec.structs.replace(env, payload=msgspec.structs.replace(env.payload, phase="Completed"))
                db.execute("UPDATE events SET data = ? WHERE position = ?", (encode(changed), position))
                break
    bad = eventbatch(doctored, "replay", "--verify")
    assert bad.returncode == 1
    assert f"#{position} job-controller: recorded JobPhaseChanged(job='default/flaky', phase='Completed'" in bad.stdout
    assert "phase='Failed'" in bad.stdout  # what it decides instead


EMPTY_LOG = "CREATE TABLE events (position INTEGER PRIMARY KEY, data BLOB NOT NULL);"  # what a new log holds


def test_read_models_of_another_log_are_refused_with_a_hint(simulated: Path, tmp_path: Path) -> None:
    assert eventbatch(simulated, "queue", "list").returncode == 0
    views = simulated.parent / "events.views.db"
    empty = tmp_path / "empty.db"
    missing = eventbatch(empty, "job", "list", "--views", str(views))
    assert missing.returncode == 2 and missing.stderr.startswith(f"eventbatch: error: no log at {empty}")
    assert not empty.exists()  # a read never makes a log
    sqlite3.connect(empty).executescript(EMPTY_LOG).close()
    other = eventbatch(empty, "job", "list", "--views", str(views))
    assert other.returncode == 2
    assert "built from another log" in other.stderr and "eventbatch replay" in other.stderr


def test_list_commands_give_machine_output(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    log = tmp_path / "sim.db"

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    run("simulate", str(root / "examples" / "spark.yaml"))
    jobs = json.loads(run("job", "list", "-o", "json"))
    assert [(j["job"], j["status"]["state"]["phase"]) for j in jobs] == [("default/spark-pi", "Completed")]
    queues = json.loads(run("queue", "list", "-o", "json"))
    assert [(q["queue"], q["status"]["state"], q["status"]["completed"]) for q in queues] == [("default", "Open", 1)]
