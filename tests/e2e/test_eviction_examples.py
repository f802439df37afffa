"""The preemption, reclaim and starving-gang examples as a user runs them: who is evicted, why, and who runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def eventbatch(*args: str, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def simulate(tmp_path: Path, example: str) -> dict:
    result = eventbatch("simulate", str(ROOT / "examples" / example), "--json", log=tmp_path / "sim.db")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _started(report: dict, job: str) -> int:
    [record] = [j for j in report["jobs"] if j["job"] == job]
    return min(at for at, phase in record["phases"] if phase == "Running") - record["submitted"]


def test_preemption_evicts_low_priority_pods_and_the_urgent_gang_runs(tmp_path: Path) -> None:
    report = simulate(tmp_path, "preemption.yaml")
    evictions = report["evictions"]
    assert len(evictions) == 4
    assert all(e["pod"].startswith(("default/low-0-", "default/low-1-")) for e in evictions)
    assert {e["rule"] for e in evictions} == {"preempt.priority"}
    assert all(e["reason"] == "preempted by default/urgent (priority 1000 > 10) in queue default" for e in evictions)
    assert _started(report, "default/urgent") <= 5_000  # runs within seconds of its arrival, not after an hour
    pods = {p["pod"]: p for p in report["pods"]}
    assert all(pods[e["pod"]]["started"] is not None for e in evictions)  # evicted pods ran again later
    why = eventbatch("why", "default/low-0", log=tmp_path / "sim.db")
    assert "[rule preempt.priority]" in why.stdout and "by default/urgent-main-" in why.stdout


def test_reclaim_takes_back_prods_share_from_batch(tmp_path: Path) -> None:
    report = simulate(tmp_path, "reclaim.yaml")
    evictions = report["evictions"]
    assert len(evictions) == 6  # batch keeps its deserved 4 of 16 cpus: two 2-cpu pods
    assert all(e["pod"].startswith("default/batch-") for e in evictions)
    assert {e["rule"] for e in evictions} == {"reclaim.proportion"}
    assert all(e["reason"].startswith("reclaimed by queue prod for default/prod-") for e in evictions)
    for job in ("default/prod-0", "default/prod-1", "default/prod-2"):
        assert _started(report, job) <= 5_000


@pytest.mark.parametrize("example", ["preemption.yaml", "reclaim.yaml", "starving-gang-reserve.yaml"])
def test_replay_reproduces_every_eviction_and_reservation(tmp_path: Path, example: str) -> None:
    simulate(tmp_path, example)
    verify = eventbatch("replay", "--verify", "--scenario", str(ROOT / "examples" / example), log=tmp_path / "sim.db")
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]


def test_reserve_ends_the_starvation_of_a_big_gang(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()  # an explicit log's directory must exist
    (tmp_path / "b").mkdir()
    without = _started(simulate(tmp_path / "a", "starving-gang.yaml"), "default/big-gang")
    with_reserve = _started(simulate(tmp_path / "b", "starving-gang-reserve.yaml"), "default/big-gang")
    assert without > 110 * 60_000  # waits out the whole stream of small jobs
    # reserved after 10 minutes unschedulable; the small jobs on its nodes finish within 10 more
    assert with_reserve < 21 * 60_000
