"""``eventbatch apply -f`` of a Job with only ``metadata.generateName``: each apply asks for a new job,
as ``kubectl create`` does (the job controller names it: ``tests/unit/job/test_generate_name.py``)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli import eventbatch, tail

JOB = """\
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {generateName: nightly-}
spec:
  tasks:
    - name: a
      replicas: 1
      template: {spec: {containers: [{name: c, image: x}]}}
"""


def test_applying_a_generate_name_job_twice_asks_for_two_jobs(tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(JOB)
    log = tmp_path / "events.db"
    queue = eventbatch("apply", "-f", str(Path(__file__).resolve().parents[2] / "examples/demo/queues.yaml"), log=log)
    assert queue.returncode == 0, queue.stderr
    for _ in range(2):
        applied = eventbatch("apply", "-f", str(manifest), log=log)
        assert applied.returncode == 0, applied.stderr
    submitted = [e for e in tail(log) if e["type"] == "JobSubmitRequested"]
    assert len(submitted) == 2
    assert [e["payload"]["manifest"]["metadata"].get("generateName") for e in submitted] == ["nightly-", "nightly-"]
