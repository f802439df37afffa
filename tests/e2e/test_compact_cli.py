"""``eventbatch compact`` as an operator runs it: a real subprocess on an SQLite log
and the snapshot store a running pipeline kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from eventbatch.log.factory import open_log
from eventbatch.snapshots import SnapshotStore
from tests.integration.test_readmodels import workload
from tests.integration.test_replay import drive

ROOT = Path(__file__).resolve().parents[2]


def eventbatch(log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


async def recorded(tmp_path: Path) -> tuple[Path, Path]:
    """A simulation run through the pipeline with snapshots every 20 events."""
    log_path, snapshots = tmp_path / "events.db", tmp_path / "snapshots.db"
    async with open_log(f"sqlite:///{log_path}") as log, SnapshotStore(snapshots) as store:
        await drive(workload(tmp_path, jobs=8, ttl=True), log, snapshots=store, every=20)
    return log_path, snapshots


async def start_of(log_path: Path) -> int:
    async with open_log(f"sqlite:///{log_path}") as log:
        return await log.start_position()


async def test_compact_removes_the_log_below_every_snapshot_and_the_history_stays(tmp_path: Path) -> None:
    log_path, snapshots = await recorded(tmp_path)
    before = eventbatch(log_path, "audit", "job", "job-000", "-o", "json")
    assert before.returncode == 0, before.stderr

    dry = eventbatch(log_path, "compact", "--snapshots", str(snapshots), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would remove #0..#"), dry.stdout
    assert await start_of(log_path) == 0

    done = eventbatch(log_path, "compact", "--snapshots", str(snapshots), "-o", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["removed"] > 0 and report["start"] == 0
    start = await start_of(log_path)
    assert report["horizon"] == min(report["needs"].values())
    assert start == min(report["horizon"], report["end"] - 1) == report["removed"]  # the last record stays
    assert set(report["needs"]) >= {"scheduler", "job-controller", "timers", "sim", "scheduling-trigger", "read models"}

    again = eventbatch(log_path, "compact", "--snapshots", str(snapshots))
    assert again.stdout.startswith("nothing to remove: the log starts at #"), again.stdout

    rebuild = eventbatch(log_path, "replay")
    assert rebuild.returncode != 0
    assert f"the log starts at {start}" in rebuild.stderr and "was compacted" in rebuild.stderr

    # the finished job's timeline and status outlive its events
    after = eventbatch(log_path, "audit", "job", "job-000", "-o", "json")
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout
    assert eventbatch(log_path, "job", "view", "job-000").returncode == 0


async def test_compact_refuses_without_snapshots_and_on_the_kubernetes_adapter(tmp_path: Path) -> None:
    log_path, snapshots = await recorded(tmp_path)
    missing = eventbatch(log_path, "compact")
    assert missing.returncode != 0
    assert "set EVENTBATCH_SNAPSHOTS or pass --snapshots" in missing.stderr
    kube = eventbatch(log_path, "compact", "--snapshots", str(snapshots), "--cluster", "kube")
    assert kube.returncode != 0
    assert "keeps no snapshot" in kube.stderr
    assert await start_of(log_path) == 0
