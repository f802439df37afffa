"""No command destroys history: ``demo`` and ``simulate`` leave every existing log as it was.

Where it sits: the CLI as a user runs it, real subprocesses in a fresh
working directory (so the default log is ``var/eventbatch/events.db`` under
it) on real SQLite files. A log's file is compared byte for byte, and its
records row for row, before and after the command that must not touch it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support.workloads import ONE_SHORT_JOB

ROOT = Path(__file__).resolve().parents[2]


def eventbatch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},  # no EVENTBATCH_LOG: the default log
    )


def fingerprint(log: Path) -> tuple[str, list[tuple[int, bytes]]]:
    """The file's digest and every record, read with sqlite3 itself."""
    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    with sqlite3.connect(f"file:{log}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT position, data FROM events ORDER BY position").fetchall()
    return digest, rows


def test_demo_leaves_the_default_log_as_it_was(tmp_path: Path) -> None:
    for manifest in ("queues.yaml", "mpi-job.yaml"):
        applied = eventbatch(tmp_path, "apply", "-f", str(ROOT / "examples" / "demo" / manifest))
        assert applied.returncode == 0, applied.stderr
    default = tmp_path / "var" / "eventbatch" / "events.db"
    before = fingerprint(default)
    assert len(before[1]) >= 3

    first = eventbatch(tmp_path, "demo")
    assert first.returncode == 0, first.stderr[-2000:]
    assert fingerprint(default) == before
    assert "sqlite://var/eventbatch/demo.db" in first.stdout
    demo_log = tmp_path / "var" / "eventbatch" / "demo.db"
    demo_before = fingerprint(demo_log)
    assert len(demo_before[1]) > 20  # the demo's own log holds the demo

    second = eventbatch(tmp_path, "demo")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "sqlite://var/eventbatch/demo-2.db" in second.stdout
    assert fingerprint(default) == before
    assert fingerprint(demo_log) == demo_before  # an earlier demo's log is not rewritten either
    assert len(fingerprint(tmp_path / "var" / "eventbatch" / "demo-2.db")[1]) == len(demo_before[1])


def test_simulate_twice_keeps_the_first_log_and_names_the_new_one(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(ONE_SHORT_JOB)
    simulations = tmp_path / "var" / "eventbatch" / "simulations"

    first = eventbatch(tmp_path, "simulate", "tiny.yaml")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "log: sqlite://var/eventbatch/simulations/tiny.db" in first.stdout
    before = fingerprint(simulations / "tiny.db")
    assert before[1]

    second = eventbatch(tmp_path, "simulate", "tiny.yaml")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "log: sqlite://var/eventbatch/simulations/tiny-2.db" in second.stdout
    assert fingerprint(simulations / "tiny.db") == before
    assert len(fingerprint(simulations / "tiny-2.db")[1]) == len(before[1])

    # the first run's log still answers the read commands
    listed = eventbatch(tmp_path, "--log", "sqlite://var/eventbatch/simulations/tiny.db", "job", "list")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[1] for line in listed.stdout.splitlines()[1:]] == ["short"]
    audit = eventbatch(tmp_path, "--log", "sqlite://var/eventbatch/simulations/tiny.db", "audit", "job", "short")
    assert audit.returncode == 0, audit.stderr
    assert "PodBound" in audit.stdout
    why = eventbatch(tmp_path, "--log", "sqlite://var/eventbatch/simulations/tiny.db", "why", "short")
    assert why.returncode == 0, why.stderr
    assert "default/short" in why.stdout
    assert fingerprint(simulations / "tiny.db")[1] == before[1]


def test_an_explicit_log_that_holds_events_is_refused_not_rewritten(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(ONE_SHORT_JOB)
    log = tmp_path / "kept.db"
    made = eventbatch(tmp_path, "--log", f"sqlite:///{log}", "simulate", "tiny.yaml")
    assert made.returncode == 0, made.stderr[-2000:]
    before = fingerprint(log)

    for command in (["demo"], ["simulate", "tiny.yaml"]):
        refused = eventbatch(tmp_path, "--log", f"sqlite:///{log}", *command)
        assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
        [line] = refused.stderr.splitlines()
        assert line.startswith("eventbatch: error: ") and f"already holds {len(before[1])} event(s)" in line
        assert refused.stdout == ""
        assert fingerprint(log) == before
    assert not (tmp_path / "var" / "eventbatch" / "demo.db").exists()  # nothing was run elsewhere instead
