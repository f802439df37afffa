"""Failures on the log are not hidden: ``replay --verify`` and ``simulate`` list them.

Where it sits: the CLI as a user runs it, a real subprocess on a real SQLite
log. The handler failure is a real one: two queues that name each other as
parent, and a command closing one of them, send the queue controller's
``decide`` into endless recursion; the runtime appends the ``HandlerFailed``.
Undecodable and unknown-type records are written through the SQLite
backend's raw append, as a foreign or damaged writer would leave them.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from eventbatch.log.sqlite import SqliteLog
from tests.support.workloads import ONE_SHORT_JOB

ROOT = Path(__file__).resolve().parents[2]

QUEUE_CYCLE = """\
nodes:
- {prefix: node-, count: 1, allocatable: {cpu: 4, memory: 16Gi}}
queues:
- {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: left}, spec: {weight: 1, parent: right}}
- {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: right}, spec: {weight: 1, parent: left}}
workload:
- {at: 5s, command: {action: CloseQueue, queue: left}}
until: 1m
"""


CORRUPT = b"\x00\xff not json"
FAILURE_LINE = re.compile(r"^#(\d+) queue-controller failed answering (\w+) #(\d+): RecursionError: maximum recursion")


def eventbatch(log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def dead_letters(log: Path) -> list[tuple[int, int, str, str]]:
    """(position, trigger position, trigger type, error) of every HandlerFailed, read with sqlite3 itself."""
    with sqlite3.connect(log) as db:
        rows = db.execute("SELECT position, data FROM events ORDER BY position").fetchall()
    found = []
    for position, data in rows:
        try:
            record = json.loads(data)
        except ValueError:
            continue
        if record.get("type") == "HandlerFailed":
            payload = record["payload"]
            found.append((position, record["causation"]["position"], payload["trigger_type"], payload["error"]))
    return found


def append_raw(log: Path, records: list[bytes]) -> list[int]:
    async def append() -> list[int]:
        async with SqliteLog(log) as sqlite:
            return await sqlite.append_raw(records)

    return asyncio.run(append())


@pytest.fixture(scope="module")
def failed_log(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("failures")
    (tmp / "cycle.yaml").write_text(QUEUE_CYCLE)
    log = tmp / "events.db"
    eventbatch(log, "simulate", str(tmp / "cycle.yaml"))
    assert len(dead_letters(log)) == 1, "the queue cycle no longer makes the queue controller fail"
    return log


def test_simulate_names_each_handler_failure_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    scenario = tmp_path / "cycle.yaml"
    scenario.write_text(QUEUE_CYCLE)
    log = tmp_path / "sim.db"

    result = eventbatch(log, "simulate", str(scenario))

    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    [(position, trigger, trigger_type, error)] = dead_letters(log)
    lines = [line for line in result.stdout.splitlines() if FAILURE_LINE.match(line)]
    assert len(lines) == 1, result.stdout
    assert FAILURE_LINE.match(lines[0]).groups() == (str(position), trigger_type, str(trigger))
    assert lines[0].endswith(error.splitlines()[-1])
    assert "== failures: 1;" in result.stdout
    # the runtime says it once, on one line, with the error (the traceback only at DEBUG)
    logged = [line for line in result.stderr.splitlines() if "decide failed" in line]
    assert len(logged) == 1 and "RecursionError" in logged[0], result.stderr[-2000:]


def test_simulate_json_carries_the_failures_and_exits_1(tmp_path: Path) -> None:
    scenario = tmp_path / "cycle.yaml"
    scenario.write_text(QUEUE_CYCLE)
    log = tmp_path / "sim.db"

    result = eventbatch(log, "simulate", str(scenario), "--json")

    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)
    [(position, trigger, trigger_type, error)] = dead_letters(log)
    assert report["failures"] == [
        {"position": position, "handler": "queue-controller", "trigger": trigger, "trigger_type": trigger_type,
         "error": error}
    ]
    assert report["quarantined"] == []


def test_simulate_of_a_clean_scenario_reports_no_failure_and_exits_0(tmp_path: Path) -> None:
    scenario = tmp_path / "clean.yaml"
    scenario.write_text(ONE_SHORT_JOB)
    result = eventbatch(tmp_path / "sim.db", "simulate", str(scenario))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "== failures" not in result.stdout


def test_verify_lists_failures_quarantined_and_unknown_records_and_exits_1(failed_log: Path, tmp_path: Path) -> None:
    log = tmp_path / "damaged.db"
    log.write_bytes(failed_log.read_bytes())
    unknown = msgspec.json.encode(
        {"type": "PodTeleported", "key": "default/x", "recorded_at": 1, "payload": {"type": "PodTeleported"}}
    )
    corrupt_at, unknown_at = append_raw(log, [CORRUPT, unknown])
    [(position, trigger, trigger_type, error)] = dead_letters(log)

    result = eventbatch(log, "replay", "--verify")

    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"  #{position} queue-controller failed answering {trigger_type} #{trigger}: {error}" in out.splitlines()
    assert f"  #{corrupt_at} quarantined (undecodable): envelope: JSON is malformed" in out
    assert "1 record(s) of event types this build does not know (skipped, not verified): PodTeleported (1)" in out
    assert f"#{unknown_at}" not in out  # unknown records are counted by type, not listed
    assert "exit status 1 (--allow-failures accepts them)" in out

    allowed = eventbatch(log, "replay", "--verify", "--allow-failures")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert f"  #{position} queue-controller failed answering {trigger_type} #{trigger}: {error}" in allowed.stdout
    assert f"  #{corrupt_at} quarantined (undecodable)" in allowed.stdout
    assert "accepted (--allow-failures)" in allowed.stdout

    machine = eventbatch(log, "replay", "--verify", "-o", "json")
    assert machine.returncode == 1
    report = json.loads(machine.stdout)
    assert (report["ok"], report["clean"]) == (True, False)
    assert report["failures"] == [
        {"position": position, "handler": "queue-controller", "trigger": trigger, "trigger_type": trigger_type,
         "error": error}
    ]
    assert [q["position"] for q in report["quarantined"]] == [corrupt_at]
    assert report["unknown_types"] == {"PodTeleported": 1}
    assert eventbatch(log, "replay", "--verify", "-o", "json", "--allow-failures").returncode == 0


def test_verify_fails_on_a_quarantined_record_alone(tmp_path: Path) -> None:
    scenario = tmp_path / "clean.yaml"
    scenario.write_text(ONE_SHORT_JOB)
    log = tmp_path / "events.db"
    assert eventbatch(log, "simulate", str(scenario)).returncode == 0

    clean = eventbatch(log, "replay", "--verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "every recorded decision and effect is reproduced, none is missing, none is doubled\n" in clean.stdout
    assert "handler failure" not in clean.stdout and "quarantined" not in clean.stdout

    [corrupt_at] = append_raw(log, [CORRUPT])
    damaged = eventbatch(log, "replay", "--verify")
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    assert f"  #{corrupt_at} quarantined (undecodable): envelope: JSON is malformed" in damaged.stdout
    assert "handler failure" not in damaged.stdout
