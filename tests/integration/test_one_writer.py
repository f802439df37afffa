"""One writer per log, fenced: a writer whose claim was superseded appends a
batch, and no reader folds it.

Two pipelines claim one real log (SQLite file, or a topic on the real
Kafka-protocol broker): A, then B. A has not read B's claim yet (it was
paused, or lost its lease with an append in flight) and answers a request
B must answer: its batch lands after B's claim. Every reader (the handler
runner, the read models, ``replay --verify``, ``events tail``, also one
starting in the middle of the log) must behave as if that batch were not
there, and A must refuse to append as soon as it reads B's claim.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from contextlib import aclosing
from pathlib import Path

import pytest

from eventbatch.app import build_pipeline, open_pipeline
from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from eventbatch.log.fence import PREVIOUS, WRITER, fence_stats
from eventbatch.log.fenced import FencedLog, WriterFenced
from eventbatch.log.lockfile import WriterBusy
from eventbatch.log.sole_writer import SoleWriterLog
from eventbatch.replay import state_at
from eventbatch.settings import Settings
from eventbatch.verify import verify
from handlers.queue import QueueHandler
from schemas.envelope import Causation, Envelope
from schemas.events import QueueCreated, QueueCreateRequested, WriterClaimed
from schemas.loaders import load_manifests

ROOT = Path(__file__).resolve().parents[2]


def queue(name: str, weight: int):
    text = f"apiVersion: scheduling.volcano.sh/v1beta1\nkind: Queue\nmetadata: {{name: {name}}}\nspec: {{weight: {weight}}}\n"
    return load_manifests(text)[0]


def request(name: str, weight: int) -> Envelope:
    return Envelope.wrap(QueueCreateRequested(queue=name, manifest=queue(name, weight)), recorded_at=0)


def pipeline_on(log: FencedLog):
    return build_pipeline(
        log=log, clock=VirtualClock(), handlers=[QueueHandler()], settings=Settings(), cluster="none"
    )


async def raw_records(log) -> list[tuple[int, bytes]]:
    """Every record as stored, past the fence (what a reader must not fold)."""
    unfenced = type(log).read_records.__wrapped__
    out: list[tuple[int, bytes]] = []
    async with aclosing(unfenced(log, 0)) as chunks:
        async for chunk in chunks:
            out.extend(chunk)
    return out


async def ghosts_folded(url: str, start: int = 0) -> list[tuple[int, int]]:
    """(position, weight) of every QueueCreated(ghost) a fresh reader folds from ``start``."""
    found: list[tuple[int, int]] = []

    def see(envelope: Envelope) -> None:
        if isinstance(envelope.payload, QueueCreated) and envelope.payload.queue == "ghost":
            found.append((envelope.position, envelope.payload.manifest.spec.weight))

    async with open_log(url) as log:
        await read_to_tail(log, start, see)
    return found


async def stale_writer_is_ignored(url: str) -> tuple[int, int]:
    """Run the scenario on ``url``; returns (B's claim position, the stale batch's position)."""
    async with open_log(url) as plain:
        await plain.append([request("default", 1)])

    a = FencedLog(open_log(url), identity="a")
    await a.start()
    b = FencedLog(open_log(url), identity="b")
    await b.start()
    try:
        await a.claim(0)
        await pipeline_on(a).settle()  # A answers the default queue's request
        await b.claim(0)
        claim_b = b.epoch - 1
        async with open_log(url) as plain:
            [ghost] = await plain.append([request("ghost", 1)])  # a request from the command line

        # A has not read B's claim: its answer (weight 7, not what was asked) lands after it.
        stale = Envelope.wrap(
            QueueCreated(queue="ghost", manifest=queue("ghost", 7)),
            recorded_at=0,
            causation=Causation(ghost, "queue-controller", 0),
        )
        [stale_at] = await a.append([stale])
        assert stale_at > claim_b

        # As soon as A reads the log past B's claim it stops appending.
        with pytest.raises(WriterFenced, match=f"another serve claimed this log at #{claim_b}"):
            await pipeline_on(a).settle()
        assert a.superseded_by == claim_b
        with pytest.raises(WriterFenced):
            await a.append([stale])

        # The handler runner of the live writer answers the request itself: A's answer is not there.
        b_pipeline = pipeline_on(b)
        await b_pipeline.settle()
        assert b_pipeline.runner("queue-controller").state.queues["ghost"].manifest.spec.weight == 1
    finally:
        await a.stop()
        await b.stop()

    async with open_log(url) as log:
        stored = {position: data for position, data in await raw_records(log)}
        assert b'"weight":7' in stored[stale_at]  # the stale batch is on the log...
        # ...and no reader folds it: a fresh handler fold, the read models, verify.
        folded = await ghosts_folded(url)
        assert [weight for _, weight in folded] == [1], folded
        views = await state_at(log)
        assert views.queues["ghost"].weight == 1
        assert fence_stats(log).fenced == 1
        report = await verify(log, [QueueHandler()])
        assert report.ok and not report.divergences, report.divergences
        assert await log.get_consumer_position(WRITER) == claim_b
        assert await log.get_consumer_position(PREVIOUS) == a.epoch - 1
    # A reader starting after B's claim (a snapshot, `events tail --from`) learns the
    # fence from the log's consumer positions.
    assert [weight for _, weight in await ghosts_folded(url, start=claim_b + 1)] == [1]
    return claim_b, stale_at


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", url, *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.slow
async def test_a_stale_writer_on_sqlite_is_ignored_by_every_reader(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    claim_b, stale_at = await stale_writer_is_ignored(url)

    tail = cli(url, "events", "tail")
    assert tail.returncode == 0, tail.stderr
    positions = {int(line.split()[0].lstrip("#")) for line in tail.stdout.splitlines() if line.startswith("#")}
    assert claim_b in positions and stale_at - 1 in positions and stale_at not in positions, tail.stdout
    later = cli(url, "events", "tail", "--from", str(claim_b + 1))
    assert later.returncode == 0 and f"#{stale_at} " not in later.stdout, later.stdout

    verified = cli(url, "replay", "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    rebuilt = cli(url, "replay")
    assert rebuilt.returncode == 0, rebuilt.stderr
    listed = cli(url, "queue", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert '"weight": 7' not in listed.stdout and '"weight":7' not in listed.stdout, listed.stdout


@pytest.mark.kafka
@pytest.mark.slow
async def test_a_stale_writer_on_kafka_is_ignored_by_every_reader(kafka_bootstrap: str) -> None:
    await stale_writer_is_ignored(f"kafka://{kafka_bootstrap}/fence-{uuid.uuid4().hex[:8]}")


async def claims_on(url: str) -> list[int]:
    """The positions of every WriterClaimed on the log."""
    claims: list[int] = []
    async with open_log(url) as log:
        await read_to_tail(log, 0, lambda e: claims.append(e.position) if isinstance(e.payload, WriterClaimed) else None)
    return claims


async def test_a_second_pipeline_on_an_sqlite_log_is_refused_until_the_first_stops(tmp_path: Path) -> None:
    settings = Settings(log_url=f"sqlite:///{tmp_path}/events.db", cluster="none")
    first = await open_pipeline(settings)
    try:
        with pytest.raises(WriterBusy, match=rf"another eventbatch serve \(pid {os.getpid()}\) is writing"):
            await open_pipeline(settings)
    finally:
        await first.close()
    second = await open_pipeline(settings)  # the lock went with the first
    await second.close()
    assert len(await claims_on(settings.log_url)) == 2  # the refused one claimed nothing


async def test_a_serve_on_the_log_of_a_running_simulation_is_refused(tmp_path: Path) -> None:
    settings = Settings(log_url=f"sqlite:///{tmp_path}/events.db", cluster="none")
    async with SoleWriterLog(open_log(settings.log_url)):  # what simulate holds while it runs
        with pytest.raises(WriterBusy, match=rf"another eventbatch simulate \(pid {os.getpid()}\) is writing"):
            await open_pipeline(settings)
    pipeline = await open_pipeline(settings)  # free again once the simulation stopped
    try:
        # A simulation refuses a log that holds events (a served log always does) before any lock:
        # it leaves no lock of its own behind and does not take the serve's.
        async with SoleWriterLog(open_log(settings.log_url), command="demo") as log:
            assert await log.end_position() > 0 and log._lock is None
    finally:
        await pipeline.close()
    assert len(await claims_on(settings.log_url)) == 1  # the refused pipeline claimed nothing


async def test_records_without_an_epoch_are_never_fenced(tmp_path: Path) -> None:
    """Requests appended while a pipeline runs (apply, job submit) carry no epoch and stay."""
    url = f"sqlite:///{tmp_path}/events.db"
    async with open_log(url) as plain:
        await plain.append([request("early", 1)])
        a = FencedLog(open_log(url), identity="a")
        await a.start()
        b = FencedLog(open_log(url), identity="b")
        await b.start()
        try:
            await a.claim(0)
            await b.claim(0)
            await plain.append([request("late", 1)])
        finally:
            await a.stop()
            await b.stop()
        names = []
        await read_to_tail(plain, 0, lambda e: names.append(getattr(e.payload, "queue", e.type)))
    assert names == ["early", "WriterClaimed", "WriterClaimed", "late"]
    assert b'"epoch"' not in (await raw_records_of(url))[0][1]


async def raw_records_of(url: str) -> list[tuple[int, bytes]]:
    async with open_log(url) as log:
        return await raw_records(log)
