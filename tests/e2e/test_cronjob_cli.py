"""``eventbatch apply -f`` of a CronJob, as a user runs it (a real subprocess, a real SQLite log)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests/fixtures/volcano/examples/cronjob/cronjob.yaml"


def eventbatch(*args: str, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_a_cronjob_is_applied_and_one_with_a_bad_schedule_is_refused_appending_nothing(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace('"*/5 * * * *"', '"*/5 * * *"'))

    refused = eventbatch("apply", "-f", str(bad), log=log)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "(CronJob default/volcano-cronjob-example): spec.schedule: not a valid cron expression" in refused.stderr
    assert not log.exists() or eventbatch("events", "tail", "-o", "json", log=log).stdout == ""

    applied = eventbatch("apply", "-f", str(EXAMPLE), log=log)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.startswith("CronJobSubmitRequested default/volcano-cronjob-example at #")
    result = eventbatch("events", "tail", "-o", "json", log=log)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["type"] for r in records] == ["CronJobSubmitRequested"]
    spec = records[0]["payload"]["manifest"]["spec"]
    assert (spec["concurrencyPolicy"], spec["successfulJobsHistoryLimit"]) == ("Forbid", 5)
