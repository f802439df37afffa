"""``eventbatch apply -f`` of a PodGroup and of plain pods, as a user runs it (a real subprocess, a real SQLite log)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {name: default}\nspec: {weight: 1}\n"
PODGROUP = "apiVersion: scheduling.volcano.sh/v1beta1\nkind: PodGroup\nmetadata: {{name: mnist}}\nspec: {{minMember: 3, queue: {queue}}}\n"


def eventbatch(*args: str, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def tail(log: Path) -> list[dict]:
    result = eventbatch("events", "tail", "-o", "json", log=log)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_podgroup_and_an_operators_pod_are_applied_and_a_podgroup_for_no_queue_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    (tmp_path / "queue.yaml").write_text(QUEUE)
    (tmp_path / "ghost.yaml").write_text(PODGROUP.format(queue="ghost"))
    (tmp_path / "pg.yaml").write_text(PODGROUP.format(queue="default"))
    assert eventbatch("apply", "-f", str(tmp_path / "queue.yaml"), log=log).returncode == 0

    refused = eventbatch("apply", "-f", str(tmp_path / "ghost.yaml"), log=log)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "spec.queue: queue ghost does not exist" in refused.stderr
    assert [r["type"] for r in tail(log)] == ["QueueCreateRequested"]  # nothing appended

    applied = eventbatch("apply", "-f", str(tmp_path / "pg.yaml"), log=log)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.startswith("PodGroupSubmitRequested default/mnist at #")
    pod = eventbatch("apply", "-f", str(ROOT / "examples/operator-podgroups/mnist-master-0.yaml"), log=log)
    assert pod.returncode == 0, pod.stderr
    records = tail(log)
    assert [r["type"] for r in records] == ["QueueCreateRequested", "PodGroupSubmitRequested", "PodSubmitRequested"]
