"""``eventbatch serve`` as a long-running process: jobs run through it; ``compact``
removes the log below its snapshots; a restart from them answers nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import aiosqlite

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from schemas.events import JobPhaseChanged
from tests.support.serving import QUICK, ROOT, seed, submit_and_wait


async def start_serve(url: str, snapshots: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        **QUICK,
        "EVENTBATCH_SNAPSHOTS": str(snapshots),
        "EVENTBATCH_SNAPSHOT_EVERY": "5",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, "--log-level", "WARNING", "serve", "--cluster", "sim",
        cwd=ROOT, env=env,
    )


async def cli(url: str, snapshots: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVENTBATCH_SNAPSHOTS": str(snapshots)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_serve_runs_jobs_and_restarts_from_its_snapshots(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    snapshots = tmp_path / "snapshots.db"
    await seed(url)
    first = await start_serve(url, snapshots)
    try:
        await submit_and_wait(url, "one")
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    async with aiosqlite.connect(snapshots) as db:
        saved = dict(await db.execute_fetchall("SELECT name, position FROM snapshots"))
    assert set(saved) == {
        "queue-controller", "job-controller", "podgroup-controller", "node-controller", "scheduler", "timers", "sim",
        "scheduling-trigger", "hypernode-controller", "jobflow-controller", "cronjob-controller",
    }
    assert all(position > 0 for position in saved.values())

    # Retention: the log below every snapshot goes; the finished job keeps its history.
    compacted = await cli(url, snapshots, "compact")
    assert compacted.startswith("removed #0..#"), compacted
    async with open_log(url) as log:
        start, end = await log.start_position(), await log.end_position()
    assert start == min(*saved.values(), end - 1) > 0  # the last record always stays
    history = await cli(url, snapshots, "audit", "job", "one")
    assert "JobPhaseChanged(Completed)" in history

    second = await start_serve(url, snapshots)
    try:
        await submit_and_wait(url, "two")
    finally:
        second.send_signal(signal.SIGKILL)
        await second.wait()

    async with open_log(url) as log:
        events: list[Envelope] = []
        await read_to_tail(log, start, events.append)
    answers = Counter((e.causation.handler, e.causation.position, e.causation.index) for e in events if e.causation)
    assert max(answers.values()) == 1, "a decision was appended twice across the restart"
    phases = [(e.payload.job, e.payload.phase) for e in events if isinstance(e.payload, JobPhaseChanged)]
    assert ("default/two", "Completed") in phases
    assert phases.count(("default/one", "Completed")) <= 1  # once, unless it is below the horizon
