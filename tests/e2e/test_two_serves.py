"""Two ``eventbatch serve`` processes on one log: one writes, the other is
refused, stands by, or (on Kafka, where no lock exists) is fenced.

Every test counts what a reader folds at the end: no decision twice (the same
causation ``(trigger, handler, index)``), no pod requested or bound twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from contextlib import aclosing
from pathlib import Path

import pytest

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.log.fence import fence_stats
from schemas.envelope import Envelope
from schemas.events import JobPhaseChanged, PodBound, PodRequested, WriterClaimed
from tests.support.serving import QUICK, ROOT, seed, submit

DEADLINE_S = 90


async def start_serve(url: str, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, **QUICK}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, "--log-level", "WARNING", "serve", "--cluster", "sim", *args,
        cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
    )


async def wait_for(url: str, found, what: str) -> Envelope:
    """The first envelope a reader folds for which ``found(envelope)`` is true (bounded wait)."""
    async with open_log(url) as log:
        try:
            async with asyncio.timeout(DEADLINE_S), aclosing(log.read(0, follow=True)) as events:
                async for envelope in events:
                    if found(envelope):
                        return envelope
        except TimeoutError:
            raise AssertionError(f"no {what} within {DEADLINE_S}s") from None
    raise AssertionError(f"the log stopped before {what}")


async def wait_claims(url: str, count: int) -> list[Envelope]:
    claims: list[Envelope] = []

    def found(envelope: Envelope) -> bool:
        if isinstance(envelope.payload, WriterClaimed):
            claims.append(envelope)
        return len(claims) >= count

    await wait_for(url, found, f"{count} WriterClaimed")
    return claims


async def wait_completed(url: str, names: list[str]) -> None:
    left = {f"default/{name}" for name in names}

    def found(envelope: Envelope) -> bool:
        e = envelope.payload
        if isinstance(e, JobPhaseChanged) and e.phase == "Completed":
            left.discard(e.job)
        return not left

    await wait_for(url, found, f"completion of {len(left)} job(s)")


async def doubles(url: str) -> dict[str, int]:
    """What a reader folds twice: decisions (same causation), pod requests, pod binds."""
    events: list[Envelope] = []
    async with open_log(url) as log:
        await read_to_tail(log, 0, events.append)
        fenced = fence_stats(log).fenced
    causes = Counter(
        (e.causation.position, e.causation.handler, e.causation.index) for e in events if e.causation is not None
    )
    requested = Counter(e.payload.pod for e in events if isinstance(e.payload, PodRequested))
    bound = Counter(e.payload.pod for e in events if isinstance(e.payload, PodBound))
    return {
        "decisions twice": sum(1 for n in causes.values() if n > 1),
        "pods requested twice": sum(1 for n in requested.values() if n > 1),
        "pods bound twice": sum(1 for n in bound.values() if n > 1),
        "pods requested": len(requested),
        "PodRequested": sum(requested.values()),
        "fenced": fenced,
    }


async def stop(process: asyncio.subprocess.Process) -> str:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
    _, err = await process.communicate()
    return (err or b"").decode()


async def exit_of(process: asyncio.subprocess.Process) -> tuple[int, list[str]]:
    try:
        async with asyncio.timeout(DEADLINE_S):
            _, err = await process.communicate()
    except TimeoutError:
        raise AssertionError(f"serve pid {process.pid} still runs after {DEADLINE_S}s: {await stop(process)}") from None
    return process.returncode, err.decode().splitlines()


def no_doubles(counts: dict[str, int], pods: int) -> None:
    assert counts["decisions twice"] == counts["pods requested twice"] == counts["pods bound twice"] == 0, counts
    assert counts["pods requested"] == counts["PodRequested"] == pods, counts


@pytest.mark.slow
async def test_a_second_serve_on_an_sqlite_log_is_refused_with_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    await seed(url, nodes=4)
    first = await start_serve(url)
    try:
        await wait_claims(url, 1)
        second = await start_serve(url)
        status, lines = await exit_of(second)
        assert status == 2, lines
        assert lines == [
            f"eventbatch: error: another eventbatch serve (pid {first.pid}) is writing {url}; run one serve per log "
            "(or pass --standby to wait and take over when it stops)"
        ]
        names = [f"job-{i}" for i in range(6)]
        await submit(url, names)
        await wait_completed(url, names)
        assert first.returncode is None  # the first one still serves
    finally:
        await stop(first)
    no_doubles(await doubles(url), pods=12)
    assert len(await wait_claims(url, 1)) == 1


@pytest.mark.slow
async def test_a_standby_serve_takes_over_when_the_first_is_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    await seed(url, nodes=4)
    first = await start_serve(url)
    standby = None
    try:
        await wait_claims(url, 1)
        standby = await start_serve(url, "--standby")
        async with asyncio.timeout(DEADLINE_S):
            line = await standby.stderr.readline()
        assert b"standing by" in line, line
        names = [f"job-{i}" for i in range(8)]
        await submit(url, names)
        await wait_for(url, lambda e: isinstance(e.payload, PodBound), "a pod bound by the first serve")
        first.send_signal(signal.SIGKILL)  # mid-flight
        await first.wait()
        claims = await wait_claims(url, 2)
        assert claims[1].payload.identity.endswith(f"-{standby.pid}")
        await wait_completed(url, names)
    finally:
        await stop(first)
        if standby is not None:
            await stop(standby)
    no_doubles(await doubles(url), pods=16)


@pytest.mark.kafka
@pytest.mark.slow
async def test_two_serves_on_one_kafka_topic_the_older_is_fenced(kafka_bootstrap: str) -> None:
    url = f"kafka://{kafka_bootstrap}/two-serves-{uuid.uuid4().hex[:8]}"
    await seed(url, nodes=4)
    first = await start_serve(url)
    second = None
    try:
        [claim_a] = await wait_claims(url, 1)
        names = [f"job-{i}" for i in range(12)]
        await submit(url, names[:6])
        second = await start_serve(url)
        await submit(url, names[6:])
        claim_b = (await wait_claims(url, 2))[1]
        assert claim_b.payload.identity.endswith(f"-{second.pid}")
        status, lines = await exit_of(first)
        assert status == 2, lines
        assert lines[-1:] == [f"eventbatch: error: another serve claimed this log at #{claim_b.position}; this one stops"]
        try:
            await wait_completed(url, names)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the second serve: {await stop(second)}") from None
        assert second.returncode is None
    finally:
        await stop(first)
        if second is not None:
            await stop(second)
    counts = await doubles(url)
    print(f"two serves on Kafka: claims #{claim_a.position}, #{claim_b.position}; {counts}")
    no_doubles(counts, pods=24)
