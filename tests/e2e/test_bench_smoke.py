"""``bench/load.py --quick``: the load benchmark runs against a real ``serve`` and prints
its per-rate table and its limits (the full run is what the figures come from)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^\s+20\s+(?P<achieved>\d+)\s+(?P<jobs>\d+)\s+(?P<p50>\d+)\s+(?P<p99>\d+)\s+(?P<max>\d+)\s+-?\d+\s+\d+"
    r"\s+(?P<records>[\d.]+)\s+(?P<cpu>[\d.]+)\s+(?P<backlog>no|YES) \(.*\)$",
    re.M,
)


@pytest.mark.slow
def test_quick_load_runs_jobs_through_serve_and_prints_the_table() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "bench/load.py", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "p50 ms" in out and "p99 ms" in out and "backlog" in out
    row = ROW.search(out)
    assert row is not None, out
    assert int(row["jobs"]) == 100 and "not Running" not in row.group(0), out  # every job reached Running
    # Submit -> Running includes the simulated 1 s startup, and is measured, not made up.
    assert 1000 <= int(row["p50"]) <= int(row["p99"]) <= int(row["max"])
    assert float(row["records"]) > 10 and float(row["cpu"]) > 0
    assert re.search(r"limits on the same records \([\d.]+ per job\): raw append\+read [\d,]+ jobs/s", out), out
    assert re.search(r"sustained \(no backlog, p99-startup < 1 s\): \d+ jobs/s = [\d.]+ x append\+read", out), out
