"""A Kafka broker that goes away under a running ``serve``: one that comes back with its data
is waited out (one line when it goes, one when it is back) and serve goes on, deciding nothing
twice and losing nothing; one that comes back empty (tansu keeps its data in memory) is a log
that went back, and serve and a following reader stop with one line instead of writing into
the new, empty log."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from schemas.events import JobPhaseChanged
from tests.support.broker import BrokerUnavailable, TansuBroker
from tests.support.serving import QUICK, ROOT, seed, submit_and_wait

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

@pytest.fixture
def broker() -> Iterator[TansuBroker]:
    """A broker of this test's own: the tests kill and pause it."""
    try:
        started = TansuBroker().start()
    except BrokerUnavailable as exc:
        pytest.skip(f"no tansu: {exc}")
    try:
        yield started
    finally:
        started.stop()


def spawn(url: str, stderr: Path, *args: str) -> asyncio.Future:
    return asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "--log", url, *args, cwd=ROOT, env={**os.environ, **QUICK},
        stdout=asyncio.subprocess.DEVNULL, stderr=stderr.open("wb"),
    )


async def wait_for_line(path: Path, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    # polls a child's stderr file to a deadline: a small local read between sleeps
    while text not in path.read_text(errors="replace"):  # noqa: ASYNC240
        assert time.monotonic() < deadline, f"no {text!r} in {seconds}s: {path.read_text()}"  # noqa: ASYNC240
        await asyncio.sleep(0.1)


async def everything(url: str) -> list[Envelope]:
    async with open_log(url) as log:
        end = await log.end_position()
        return [e async for e in log.read(0)] if end else []


def problem_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "ERROR" in line or "Traceback" in line]


async def test_serve_waits_out_a_broker_that_stops_answering_and_goes_on(broker: TansuBroker, tmp_path: Path) -> None:
    url = f"kafka://{broker.bootstrap}/eventbatch-restart-{uuid.uuid4().hex[:8]}"
    await seed(url)
    stderr = tmp_path / "serve.err"
    serve = await spawn(url, stderr, "serve", "--cluster", "sim")
    try:
        await submit_and_wait(url, "one")
        broker.pause()
        try:
            await wait_for_line(stderr, f"waiting for the Kafka broker at {broker.bootstrap}", 20)
            await asyncio.sleep(2)  # the outage goes on: serve must stay quiet
        finally:
            broker.resume()
        await wait_for_line(stderr, f"the Kafka broker at {broker.bootstrap} is back", 20)
        await submit_and_wait(url, "two")
        assert serve.returncode is None, stderr.read_text()
    finally:
        serve.send_signal(signal.SIGKILL)
        await serve.wait()

    said = stderr.read_text()
    assert said.count("waiting for the Kafka broker") == 1 and said.count("is back") == 1, said
    assert problem_lines(said) == [], said
    events = await everything(url)
    answers = Counter((e.causation.handler, e.causation.position, e.causation.index) for e in events if e.causation)
    assert max(answers.values()) == 1, "a decision was appended twice across the outage"
    completed = [e.payload.job for e in events if isinstance(e.payload, JobPhaseChanged) and e.payload.phase == "Completed"]
    assert sorted(completed) == ["default/one", "default/two"]


async def test_a_broker_that_comes_back_empty_stops_serve_and_readers_with_one_line(
    broker: TansuBroker, tmp_path: Path
) -> None:
    topic = f"eventbatch-restart-{uuid.uuid4().hex[:8]}"
    url = f"kafka://{broker.bootstrap}/{topic}?connect_timeout=3"
    await seed(url)
    serve_err, tail_err = tmp_path / "serve.err", tmp_path / "tail.err"
    serve = await spawn(url, serve_err, "serve", "--cluster", "sim")
    tail = await spawn(url, tail_err, "events", "tail", "--follow")
    try:
        await submit_and_wait(url, "one")
        async with open_log(url) as log:
            seen = await log.end_position()
        broker.restart()  # same port, nothing stored
        started = time.monotonic()
        async with asyncio.timeout(30):
            serve_status, tail_status = await serve.wait(), await tail.wait()
        took = time.monotonic() - started
    finally:
        for process in (serve, tail):
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
                await process.wait()

    for status, path in ((serve_status, serve_err), (tail_status, tail_err)):
        lines = path.read_text().splitlines()
        assert status == 2, lines
        assert lines[-1].startswith("eventbatch: error: the log at kafka://") and "went back from" in lines[-1], lines
        assert "to 0: it was lost or replaced" in lines[-1], lines
        assert problem_lines("\n".join(lines[:-1])) == [], lines
    assert f"went back from {seen} to 0" in serve_err.read_text() or "went back from" in serve_err.read_text()
    assert took < 20
    # Nothing was written into the broker that came back: the topic was not even made again.
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()
