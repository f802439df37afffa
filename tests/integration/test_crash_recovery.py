"""A crash at any point loses no event and duplicates no decision.

A real subprocess runs the echo handler over a real log (SQLite file, Kafka
broker) and is SIGKILLed between deciding and appending, and right after
appending. After each kill and a clean restart, the log holds every
trigger's decisions exactly once, with the state they were decided on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from schemas.events import PodBound, SchedulingRequested
from tests.integration.echo_handler import NAME, PER_TRIGGER, expected_nodes

ROOT = Path(__file__).resolve().parents[2]
TRIGGERS = 10


async def run_worker(url: str, *args: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.crash_worker", url, *args,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"worker failed ({proc.returncode}): {err.decode()[-2000:]}")
    return proc.returncode


async def decisions_in(url: str) -> list[Envelope]:
    async with open_log(url) as log:
        return [e async for e in _read_all(log) if e.causation and e.causation.handler == NAME]


async def _read_all(log):
    end = await log.end_position()
    if end == 0:
        return
    async for envelope in log.read(0):
        yield envelope
        if envelope.position + 1 >= end:
            return


def answered_triggers(decisions: list[Envelope]) -> list[int]:
    return sorted({d.causation.position for d in decisions})


async def seed_triggers(url: str) -> list[int]:
    async with open_log(url) as log:
        return await log.append(
            [Envelope.wrap(SchedulingRequested(now=i * 1000), recorded_at=i * 1000) for i in range(TRIGGERS)]
        )


async def crash_and_recover(url: str) -> None:
    triggers = await seed_triggers(url)

    assert await run_worker(url, "decide", str(triggers[4])) == -signal.SIGKILL
    assert answered_triggers(await decisions_in(url)) == triggers[:4]

    assert await run_worker(url, "append", str(triggers[7])) == -signal.SIGKILL
    assert answered_triggers(await decisions_in(url)) == triggers[:8]

    assert await run_worker(url) == 0
    assert await run_worker(url) == 0  # a second clean restart answers nothing new

    decisions = await decisions_in(url)
    per_trigger = Counter((d.causation.position, d.causation.index) for d in decisions)
    assert set(per_trigger.values()) == {1}, "a decision was appended twice"
    assert answered_triggers(decisions) == triggers
    assert len(decisions) == TRIGGERS * PER_TRIGGER
    nodes = [d.payload.node for d in decisions if d.causation.index == 0]
    assert nodes == expected_nodes(TRIGGERS)
    assert all(isinstance(d.payload, PodBound) for d in decisions)
    recorded_at = {d.causation.position: d.recorded_at for d in decisions}
    assert recorded_at == {t: i * 1000 for i, t in enumerate(triggers)}


async def test_sigkill_on_sqlite_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    await crash_and_recover(f"sqlite:///{tmp_path}/events.db")


@pytest.mark.kafka
async def test_sigkill_on_kafka_loses_nothing_and_duplicates_nothing(kafka_bootstrap: str) -> None:
    await crash_and_recover(f"kafka://{kafka_bootstrap}/crash-{uuid.uuid4().hex[:8]}")
