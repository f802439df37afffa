"""The web console over HTTP: a simulated log served by ``eventbatch.ui`` on loopback.

Each page renders; the queue figures are ``queue list -o json``'s; a hostile
job name shows as text; a past position shows the earlier phase; the token is
enforced; a new event on the log reaches ``/events``; the log is never
appended to. ``eventbatch ui`` itself is run as a user runs it.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import sqlite3
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from eventbatch.log.factory import open_log
from eventbatch.readmodels import ReadModelStore
from eventbatch.ui.app import Console, UiServer
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.resources import Job, JobSpec, ObjectMeta
from tests.e2e.test_replay_cli import ROOT, SCENARIO, eventbatch

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("console")
    (tmp / "scenario.yaml").write_text(SCENARIO)
    log = tmp / "events.db"
    result = eventbatch(log, "simulate", str(tmp / "scenario.yaml"))
    assert result.returncode == 0, result.stderr
    return log


@pytest.fixture
def copy(simulated: Path, tmp_path: Path) -> Path:
    """A copy of the simulated log, for one test."""
    log = tmp_path / "events.db"
    log.write_bytes(simulated.read_bytes())
    return log


def _count(log: Path) -> int:
    with sqlite3.connect(log) as db:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]


async def _append_hostile(log: Path) -> None:
    manifest = Job(metadata=ObjectMeta(name=HOSTILE, namespace="default"), spec=JobSpec(queue="default"))
    async with open_log(f"sqlite:///{log}") as opened:
        await opened.append([Envelope.wrap(ev.JobCreated(job=f"default/{HOSTILE}", manifest=manifest),
                                           recorded_at=10**9)])


class Served:
    def __init__(self, server: UiServer, session: aiohttp.ClientSession) -> None:
        self.server, self.session = server, session

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    async def get(self, path: str, **kw) -> tuple[int, str]:
        async with self.session.get(self.url(path), **kw) as response:
            return response.status, await response.text()


async def _serve(stack: AsyncExitStack, log: Path, *, token: str = "", views: Path | None = None) -> Served:
    opened = await stack.enter_async_context(open_log(f"sqlite:///{log}"))
    store = await stack.enter_async_context(ReadModelStore(views or ":memory:"))
    server = UiServer(Console(opened, store, poll=0.05), port=0, token=token)
    await server.start()
    stack.push_async_callback(server.stop)
    session = await stack.enter_async_context(aiohttp.ClientSession())
    return Served(server, session)


async def test_every_page_renders_and_the_queue_figures_are_queue_lists(copy: Path) -> None:
    log = copy
    before = _count(log)
    listed = json.loads(eventbatch(log, "queue", "list", "-o", "json").stdout)
    async with AsyncExitStack() as stack:
        served = await _serve(stack, log)
        status, page = await served.get("/")
        assert status == 200
        shown = {m[0]: json.loads(html.unescape(m[1]))
                 for m in re.findall(r'data-queue="([^"]*)" data-status="([^"]*)"', page)}
        assert shown == {q["queue"]: q for q in listed}
        assert '<svg class="eb-plot stacked-area' in page or "<svg" in page
        status, jobs = await served.get("/jobs?queue=research")
        assert status == 200
        assert re.findall(r'data-job="([^"]*)"', jobs) == ["default/train", "default/flaky"]
        status, none = await served.get("/jobs?phase=Running&text=train")
        assert status == 200 and "data-job=" not in none
        status, job = await served.get("/jobs/default/flaky")
        assert status == 200
        assert "Restarting" in job and "policy" in job  # the phase timeline and the causation's rule
        assert "job default/flaky in queue research" in job  # why, as `eventbatch why` says it
        assert 'class="eb-plot gantt' in job
        status, _ = await served.get("/jobs/default/nobody")
        assert status == 404
    assert _count(log) == before  # nothing appended


async def test_a_hostile_job_name_shows_as_text(copy: Path) -> None:
    log = copy
    await _append_hostile(log)
    async with AsyncExitStack() as stack:
        served = await _serve(stack, log)
        _, jobs = await served.get("/jobs")
        assert HOSTILE not in jobs
        assert html.escape(HOSTILE) in jobs
        status, job = await served.get("/jobs/default/" + HOSTILE.replace("/", "%2F"))
        assert status in (200, 404)
        assert HOSTILE not in job


async def test_a_past_position_shows_the_earlier_phase(copy: Path) -> None:
    log = copy
    with sqlite3.connect(log) as db:
        end = db.execute("SELECT MAX(position) FROM events").fetchone()[0]
    async with AsyncExitStack() as stack:
        served = await _serve(stack, log)
        _, now = await served.get("/jobs/default/train")
        assert re.search(r'<b id="phase">Completed</b>', now)
        running = None
        for position in range(0, end, 5):
            _, then = await served.get(f"/jobs/default/train?at={position}")
            if '<b id="phase">Running</b>' in then:
                running = position
                break
        assert running is not None, "no earlier position shows the job Running"
        assert "As of position <b>#" in then and 'data-live="0"' in then
        _, jobs = await served.get(f"/jobs?at={running}")
        assert 'data-job="default/train" data-phase="Running"' in jobs
        status, _ = await served.get("/?at=nope")
        assert status == 400


async def test_the_token_is_enforced_and_only_reads_are_served(copy: Path) -> None:
    log = copy
    async with AsyncExitStack() as stack:
        served = await _serve(stack, log, token="s3cret")
        for path in ("/", "/jobs", "/jobs/default/train", "/events", "/?token=wrong"):
            status, _ = await served.get(path)
            assert status == 401, path
        status, page = await served.get("/jobs?token=s3cret")
        assert status == 200 and "token=s3cret" in page  # links carry it
        status, _ = await served.get("/", headers={"Authorization": "Bearer s3cret"})
        assert status == 200
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            async with served.session.request(method, served.url("/?token=s3cret")) as response:
                assert response.status == 405, method


async def test_a_new_event_reaches_the_event_stream(copy: Path) -> None:
    log = copy
    async with AsyncExitStack() as stack:
        served = await _serve(stack, log)
        first = served.server.console.position
        async with served.session.get(served.url("/events")) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            line = await asyncio.wait_for(response.content.readline(), 5)
            assert line == b"event: position\n"
            assert await response.content.readline() == f"data: {first}\n".encode()
            await _append_hostile(log)
            positions: list[int] = []
            async with asyncio.timeout(5):
                while not positions:
                    text = (await response.content.readline()).decode()
                    if text.startswith("data: "):
                        positions.append(int(text[6:]))
            assert positions == [first + 1]
        _, fragment = await served.get("/jobs?fragment=1")
        assert not fragment.startswith("<!DOCTYPE") and html.escape(HOSTILE) in fragment


def test_eventbatch_ui_serves_an_existing_log_and_refuses_a_missing_one(simulated: Path, tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = eventbatch(missing, "ui", "--port", "0")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not missing.exists()
    bad = eventbatch(simulated, "ui", "--port", "70000")
    assert bad.returncode == 2 and bad.stderr.startswith("eventbatch: error: --port")

    log = tmp_path / "events.db"
    log.write_bytes(simulated.read_bytes())
    process = subprocess.Popen(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{log}", "ui", "--port", "0"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        port = re.search(r"ui listening port=(\d+)", line)
        assert port, line
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port[1]}/jobs", timeout=10) as response:
            assert response.status == 200 and b'data-job="default/train"' in response.read()
    finally:
        process.kill()
        process.wait(10)
    assert not (tmp_path / "events.views.db").exists()  # the read models were folded in memory
