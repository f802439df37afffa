"""``eventbatch apply -f`` of a node.k8s.io/v1 RuntimeClass, as a user runs it (a real subprocess, a real SQLite log).

The class is appended as the fact the scheduler folds (``RuntimeClassAdded``:
overhead parsed, scheduling kept), beside the other manifests of the same
file; a class that cannot be read is refused in one line naming the field,
with nothing appended for the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

KATA = """\
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: kata}
handler: kata
overhead: {podFixed: {cpu: 250m, memory: 64Mi}}
scheduling: {nodeSelector: {runtime: kata}}
---
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: research}
spec: {weight: 1}
"""


def eventbatch(*args: str, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_a_runtime_class_is_applied_with_the_file_and_a_broken_one_appends_nothing(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    bad = tmp_path / "bad.yaml"
    bad.write_text(KATA.replace("cpu: 250m", "cpu: lots"))
    refused = eventbatch("apply", "-f", str(bad), log=log)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "document 1: RuntimeClass: overhead.podFixed" in refused.stderr
    assert not log.exists() or eventbatch("events", "tail", "-o", "json", log=log).stdout == ""

    good = tmp_path / "kata.yaml"
    good.write_text(KATA)
    applied = eventbatch("apply", "-f", str(good), log=log)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[0].startswith("RuntimeClassAdded kata at #")
    records = [json.loads(line) for line in eventbatch("events", "tail", "-o", "json", log=log).stdout.splitlines()]
    assert [r["type"] for r in records] == ["RuntimeClassAdded", "QueueCreateRequested"]
    payload = records[0]["payload"]
    assert payload["overhead"] == {"cpu": 250, "memory": 64 * 1024 * 1024}
    assert payload["nodeSelector" if "nodeSelector" in payload else "node_selector"] == {"runtime": "kata"}
