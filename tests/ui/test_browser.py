"""The web console in a real browser: Debian's chromium, headless, driven through the DevTools protocol.

Where it sits: the end-to-end tests of ``eventbatch.ui`` (the console ``serve --ui-port``
starts) and of ``simulate --html``'s report. One ``eventbatch serve --cluster sim
--ui-port 0`` runs for the module on a small simulated workload: two queues, a
short job that completed, a long one running in each queue, a gang too big for
the cluster (waiting), and a job whose name is HTML (``HOSTILE``, as a producer
other than the CLI may write it on the log). Each test opens the console in
chromium (``tests.support.browser``) and checks what a person would see against
what the CLI says over the same log. A PNG of every page is saved under the
test's tmp dir; ``EVENTBATCH_SCREENSHOTS=DIR`` copies the queue page and the
gang's job page there too (``docs/images/`` holds the README's).

Without chromium these tests skip, except with ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import msgspec
import pytest

from eventbatch.clock import SystemClock
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from schemas.events import JobPhaseChanged, JobSubmitRequested, PodGroupUnschedulable, QueueCreateRequested
from schemas.loaders import load_manifests
from tests.support.browser import CHROMIUM, Browser, Page
from tests.support.serving import QUICK, ROOT, seed

pytestmark = pytest.mark.slow
T = TypeVar("T")
U = TypeVar("U")

# quotes to break out of an attribute, an element to create, a handler that would run
HOSTILE = "x\"'><img src=x onerror=window.__xss=1>"
LIVE_BOUND_S = 1.0  # a page shows an append within this long

RESEARCH = """
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: research}
spec: {weight: 2, deserved: {cpu: "4", memory: 8Gi}}
"""
JOB = """
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {{name: {name}}}
spec:
  queue: {queue}
  minAvailable: {replicas}
  tasks:
    - name: w
      replicas: {replicas}
      template:
        metadata: {{annotations: {{eventbatch.io/sim-duration: {duration}}}}}
        spec: {{containers: [{{name: c, image: busybox, resources: {{requests: {{cpu: "{cpu}", memory: 1Gi}}}}}}]}}
"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _job(name: str, *, queue: str = "default", replicas: int = 2, cpu: str = "1", duration: str = "600s") -> str:
    return JOB.format(name=name, queue=queue, replicas=replicas, cpu=cpu, duration=duration)


def cli(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", url, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    if check:
        assert done.returncode == 0, f"eventbatch {' '.join(args)}: {done.stderr}"
    return done


@dataclass
class Console:
    """The running serve, its console's URL, and what the workload did on the log."""

    url: str  # the log
    base: str  # http://127.0.0.1:PORT
    tmp: Path
    early_running: int  # the position of the event that moved job 'early' to Running


async def _workload(url: str) -> None:
    """Queues, nodes and jobs appended before serve starts (as `apply` would)."""
    await seed(url)  # the default queue, two nodes of 8 cpu and 16Gi
    now = SystemClock().now()
    hostile = load_manifests(_job("placeholder"))[0]
    # the CLI refuses such a name; a log written by another producer may hold one
    hostile = msgspec.structs.replace(hostile, metadata=msgspec.structs.replace(hostile.metadata, name=HOSTILE))
    requests = [
        JobSubmitRequested(job="default/early", manifest=load_manifests(_job("early", duration="300ms"))[0]),
        JobSubmitRequested(job="default/steady", manifest=load_manifests(_job("steady", queue="research"))[0]),
        JobSubmitRequested(job="default/gang", manifest=load_manifests(_job("gang", replicas=3, cpu="6"))[0]),
        JobSubmitRequested(job=f"default/{HOSTILE}", manifest=hostile),
    ]
    async with open_log(url) as log:
        await log.append([Envelope.wrap(QueueCreateRequested(queue="research", manifest=load_manifests(RESEARCH)[0]),
                                        recorded_at=now)])
        await log.append([Envelope.wrap(r, recorded_at=now) for r in requests])


async def _settled(url: str, seconds: float) -> int:
    """Wait for early Completed, steady and the hostile job Running, the gang found unschedulable;
    the position at which early became Running."""
    wanted = {("default/early", "Completed"), ("default/steady", "Running"), (f"default/{HOSTILE}", "Running")}
    early_running = -1
    unschedulable = False
    async with open_log(url) as log, asyncio.timeout(seconds):
        async with aclosing(log.read(0, follow=True)) as events:
            async for envelope in events:
                e = envelope.payload
                if isinstance(e, JobPhaseChanged):
                    wanted.discard((e.job, e.phase))
                    if e.job == "default/early" and e.phase == "Running":
                        early_running = envelope.position
                elif isinstance(e, PodGroupUnschedulable) and e.job == "default/gang":
                    unschedulable = True
                if not wanted and unschedulable:
                    return early_running
    raise AssertionError("unreachable")


def _ui_port(output: Path) -> int | None:
    found = re.search(r"\bui\b[^\n]*?\bport=(\d+)", output.read_text(errors="replace"))
    return int(found[1]) if found else None


def _need_chromium() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)"
        if _in_ci():
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    _need_chromium()
    tmp = tmp_path_factory.mktemp("console")
    url = f"sqlite:///{tmp}/events.db"
    asyncio.run(_workload(url))
    output = tmp / "serve.out"
    env = {**os.environ, **QUICK, "EVENTBATCH_LOG_LEVEL": "INFO"}
    with output.open("wb") as sink:
        serve = subprocess.Popen(
            [sys.executable, "-m", "eventbatch", "--log", url, "serve", "--cluster", "sim", "--ui-port", "0"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while (port := _ui_port(output)) is None:
            assert serve.poll() is None, f"serve exited {serve.returncode}:\n{output.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"serve logged no console port in 30 s:\n{output.read_text()[-3000:]}"
            time.sleep(0.05)
        early_running = asyncio.run(_settled(url, 60))
        yield Console(url, f"http://127.0.0.1:{port}", tmp, early_running)
    finally:
        serve.terminate()
        try:
            serve.wait(10)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(10)


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    _need_chromium()
    async with Browser.launch(tmp_path) as browser:
        yield await browser.new_page(width=1280, height=800)


def _keep(shot: Path, name: str) -> None:
    """Copy a screenshot to $EVENTBATCH_SCREENSHOTS (how docs/images/ is refreshed)."""
    target = os.environ.get("EVENTBATCH_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / name)


async def _table(page: Page, selector: str) -> list[dict[str, str]]:
    """The rows of a table as {header: cell text}."""
    rows = await page.evaluate(f"""(() => {{
        const t = document.querySelector({json.dumps(selector)});
        if (!t) return null;
        const heads = [...t.querySelectorAll('thead th')].map(h => h.innerText.trim());
        return [...t.querySelectorAll('tbody tr')].map(tr =>
            Object.fromEntries([...tr.children].map((td, i) => [heads[i], td.innerText.trim()])));
    }})()""")
    assert rows is not None, f"no {selector} on {await page.evaluate('location.href')}"
    return list(rows)


async def _agreeing(read_cli: Callable[[], T], read_page: Callable[[], Awaitable[U]]) -> tuple[T, U]:
    """What the CLI says and what the page shows, read while the log stood still: the CLI
    answers the same before and after the page is read (a few attempts, then fail)."""
    for _ in range(5):
        before = read_cli()
        shown = await read_page()
        if read_cli() == before:
            return before, shown
    raise AssertionError("the log kept moving: the CLI never answered the same twice around a page load")


def _resources(resources: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in resources.items()) or "-"


async def test_the_queue_page_shows_the_figures_of_queue_list(console: Console, page: Page, tmp_path: Path) -> None:

    async def shown_page() -> dict[str, dict[str, str]]:
        await page.navigate(console.base + "/")
        return {row["QUEUE"]: row for row in await _table(page, "table.queues")}

    listed, shown = await _agreeing(lambda: json.loads(cli(console.url, "queue", "list", "-o", "json").stdout),
                                    shown_page)
    assert sorted(shown) == sorted(q["queue"] for q in listed) == ["default", "research"]
    for q in listed:
        row, status = shown[q["queue"]], q["status"]
        assert row["WEIGHT"] == str(q["weight"])
        assert row["DESERVED"] == _resources(status["deserved"])
        assert row["ALLOCATED"] == _resources(status["allocated"])
        assert float(row["SHARE"]) == pytest.approx(status["share"], abs=0.0005)
        for column in ("pending", "inqueue", "running"):
            assert row[column.upper()] == str(status[column]), (column, row, status)
    # the workload's figures, so that an empty table on both sides cannot pass
    assert shown["research"]["ALLOCATED"].startswith("cpu=2") and shown["research"]["RUNNING"] == "1"
    assert await page.count("#allocation svg") == 1
    shot = await page.screenshot(tmp_path / "queues.png")
    _keep(shot, "console-queues.png")


async def test_a_waiting_gangs_page_shows_why(console: Console, page: Page, tmp_path: Path) -> None:

    async def shown_page() -> str:
        await page.navigate(console.base + "/jobs/default/gang")
        return await page.text("main")

    why, text = await _agreeing(lambda: cli(console.url, "why", "default/gang").stdout, shown_page)
    reasons = [line.strip() for line in why.splitlines() if line.strip()]
    assert any("NotEnqueueable" in line and "[rule enqueue/" in line for line in reasons), why
    # every line `why` prints is on the page, the rule that decided with it
    missing = [line for line in reasons if line not in text]
    assert not missing, f"not on the page: {missing}\npage:\n{text}"
    shot = await page.screenshot(tmp_path / "gang.png")
    _keep(shot, "console-job.png")


async def test_time_travel_shows_the_earlier_phase(console: Console, page: Page, tmp_path: Path) -> None:
    await page.navigate(console.base + "/jobs/default/early")
    assert await page.evaluate("document.getElementById('phase')?.innerText") == "Completed"
    await page.navigate(console.base + f"/jobs/default/early?at={console.early_running}")
    assert await page.evaluate("document.getElementById('phase')?.innerText") == "Running"
    assert f"#{console.early_running}" in await page.text("#travel-banner")
    await page.screenshot(tmp_path / "early-then.png")
    # and the jobs list as of then
    await page.navigate(console.base + f"/jobs?at={console.early_running}&text=early")
    assert [r["PHASE"] for r in await _table(page, "table.jobs")] == ["Running"]


async def test_a_live_page_shows_an_append_within_a_second(console: Console, page: Page, tmp_path: Path) -> None:
    await page.navigate(console.base + "/jobs?text=live")
    assert await page.count("table.jobs tbody tr") == 0
    manifest = tmp_path / "live.yaml"
    manifest.write_text(_job("live", duration="600s"))
    # the page's script is connected to /events before the append
    await page.wait_for("document.getElementById('body').dataset.live === '1'", seconds=5)
    await page.evaluate("window.__same_document = true")
    cli(console.url, "job", "submit", "-f", str(manifest))
    appended = time.monotonic()
    await page.wait_for("document.querySelector('tr[data-job=\"default/live\"]') !== null", seconds=LIVE_BOUND_S)
    took = time.monotonic() - appended
    assert took <= LIVE_BOUND_S
    # no full reload: the same document, updated in place
    assert await page.evaluate("window.__same_document === true")
    await page.screenshot(tmp_path / "live.png")


async def test_a_hostile_job_name_is_text(console: Console, page: Page, tmp_path: Path) -> None:
    await page.navigate(console.base + "/jobs?text=" + quote("img"))
    for where in ("the job list", "the job's page"):
        text = await page.text("main")
        assert HOSTILE in text, f"{where}: {text}"
        assert await page.count("main img") == 0, where
        assert await page.evaluate("window.__xss === undefined"), where
        assert not [u for u in page.requests if u.endswith("/x")], where
        await page.screenshot(tmp_path / f"hostile {where}.png".replace(" ", "-"))
        if where == "the job list":
            link = await page.evaluate("document.querySelector('table.jobs tbody a').href")
            await page.navigate(link)
    assert page.exceptions == []


async def test_the_simulation_report_opens_offline(page: Page, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    simulate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eventbatch", "simulate", "--html", str(report), str(ROOT / "examples/reclaim.yaml"),
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        _, err = await simulate.communicate()
    assert simulate.returncode == 0, err.decode()
    await page.offline()
    await page.navigate(report.as_uri())
    plots = await page.count("svg")
    assert plots >= 2, await page.text()
    # nothing but the file itself was asked for: no script, font or image from the network
    assert [u for u in page.requests if not u.startswith("file://")] == []
    assert page.failed_requests == []
    assert page.exceptions == []
    await page.screenshot(tmp_path / "report.png")
