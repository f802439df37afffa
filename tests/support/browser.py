"""A headless chromium driven through the Chrome DevTools Protocol, for the console's browser tests.

Where it sits: test support for ``tests/ui/test_browser.py``. It starts Debian's
``/usr/bin/chromium`` (no browser is downloaded) with a throwaway profile, reads the
DevTools port from the ``DevToolsActivePort`` file chromium writes in that profile,
and talks to one page over aiohttp's websocket client (flattened target sessions).
Every wait is bounded: a page that never loads or a condition that never holds
raises ``BrowserError`` with what was seen, and the browser is closed, then killed if
it lingers, on the way out.

    async with Browser.launch(tmp_path) as browser:
        page = await browser.new_page()
        await page.navigate("http://127.0.0.1:8000/queues")
        rows = await page.evaluate("document.querySelectorAll('tr').length")
        await page.screenshot(tmp_path / "queues.png")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

CHROMIUM = Path(os.environ.get("EVENTBATCH_CHROMIUM", "/usr/bin/chromium"))

# chromium's own background traffic (updates, safe browsing, metrics) is switched off so
# that a test that watches the network sees only what the page asks for
_FLAGS = [
    "--headless=new",
    "--remote-debugging-port=0",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
]


class BrowserError(Exception):
    """The browser did not start, a command failed, or a bounded wait ran out."""


class _Connection:
    """One websocket to the browser: commands by id, events handed to listeners."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                if "id" in data:
                    future = self._pending.pop(data["id"], None)
                    if future is not None and not future.done():
                        future.set_result(data)
                else:
                    for listener in list(self._listeners):
                        listener(data)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError("the DevTools connection closed"))
            self._pending.clear()

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None, seconds: float = 15
    ) -> dict[str, Any]:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._ws.send_str(json.dumps(message))
        try:
            async with asyncio.timeout(seconds):
                reply = await future
        except TimeoutError:
            self._pending.pop(ident, None)
            raise BrowserError(f"{method}: no reply within {seconds} s") from None
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')} ({reply['error']})")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def close(self) -> None:
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


class Page:
    """One tab: navigate, read the DOM with JavaScript, wait on a condition, take a screenshot."""

    def __init__(self, connection: _Connection, session: str) -> None:
        self._connection = connection
        self._session = session
        self._loaded: set[str] = set()  # the loader ids of documents whose load event fired
        self._load_event = asyncio.Event()
        # what the page did on the network and in its console, for the tests to assert on
        self.requests: list[str] = []
        self.failed_requests: list[tuple[str, str]] = []
        self.exceptions: list[str] = []
        self._request_urls: dict[str, str] = {}
        connection.listen(self._on_event)

    def _on_event(self, data: dict[str, Any]) -> None:
        if data.get("sessionId") != self._session:
            return
        method, params = data.get("method"), data.get("params", {})
        if method == "Page.lifecycleEvent" and params.get("name") == "load":
            self._loaded.add(params.get("loaderId", ""))
            self._load_event.set()
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            self.requests.append(url)
            self._request_urls[params["requestId"]] = url
        elif method == "Network.loadingFailed":
            url = self._request_urls.get(params["requestId"], "?")
            self.failed_requests.append((url, params.get("errorText", "")))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))

    async def send(self, method: str, params: dict[str, Any] | None = None, *, seconds: float = 15) -> dict[str, Any]:
        return await self._connection.send(method, params, session=self._session, seconds=seconds)

    async def navigate(self, url: str, *, seconds: float = 15) -> None:
        """Open ``url`` and wait (at most ``seconds``) for the load event of the document it gives.

        The wait is for that document's loader, so a late load event of the page before
        (the first ``about:blank``, say) is never taken for it."""
        reply = await self.send("Page.navigate", {"url": url}, seconds=seconds)
        if reply.get("errorText"):
            raise BrowserError(f"navigating to {url}: {reply['errorText']}")
        loader = reply.get("loaderId")
        if loader is None:  # a same-document navigation (a fragment): nothing loads
            return
        try:
            async with asyncio.timeout(seconds):
                while loader not in self._loaded:
                    self._load_event.clear()
                    await self._load_event.wait()
        except TimeoutError:
            raise BrowserError(f"{url} did not finish loading within {seconds} s") from None

    async def evaluate(self, expression: str, *, seconds: float = 15) -> Any:
        """The value of a JavaScript expression in the page (promises awaited, returned by value)."""
        reply = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            seconds=seconds,
        )
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"evaluating {expression!r}: {text}")
        return reply.get("result", {}).get("value")

    async def wait_for(self, expression: str, *, seconds: float, interval: float = 0.02) -> Any:
        """Evaluate ``expression`` every ``interval`` seconds until it is truthy; its value.

        Raises ``BrowserError`` with the last value after ``seconds``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            value = await self.evaluate(expression, seconds=max(seconds, 5))
            if value:
                return value
            if loop.time() >= deadline:
                raise BrowserError(f"{expression!r} still {value!r} after {seconds} s")
            await asyncio.sleep(interval)

    async def text(self, selector: str = "body") -> str:
        """The rendered text (``innerText``) of the first element matching ``selector``."""
        value = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); return e ? e.innerText : null; }})()"
        )
        if value is None:
            raise BrowserError(f"no element matches {selector!r}")
        return str(value)

    async def count(self, selector: str) -> int:
        return int(await self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length"))

    async def set_viewport(self, width: int, height: int) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    async def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """A PNG of the page (the whole document unless ``full_page`` is false) written to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = await self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            width, height = int(size[0]), min(int(size[1]), 8000)
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        reply = await self.send("Page.captureScreenshot", params, seconds=30)
        _write(path, base64.b64decode(reply["data"]))
        return path

    async def offline(self) -> None:
        """Cut the page off the network (every request fails as if there were no connection)."""
        await self.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )


class Browser:
    """A running headless chromium and the DevTools connection to it."""

    def __init__(self, process: asyncio.subprocess.Process, session: aiohttp.ClientSession, connection: _Connection):
        self._process = process
        self._session = session
        self._connection = connection

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls, workdir: Path | None = None, *, seconds: float = 30) -> AsyncIterator[Browser]:
        """Start chromium (its profile and stderr under ``workdir``, else a temporary directory).

        Raises ``BrowserError`` when chromium is not installed or does not open its
        DevTools port within ``seconds``.
        """
        if not os.access(CHROMIUM, os.X_OK):
            raise BrowserError(f"{CHROMIUM} is not installed (apt-get install chromium)")
        owned = workdir is None
        root = Path(tempfile.mkdtemp(prefix="eventbatch-chromium-")) if workdir is None else workdir
        profile = root / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        port_file = profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        with _open_for_writing(root / "chromium.stderr") as stderr:
            process = await asyncio.create_subprocess_exec(
                str(CHROMIUM),
                *_FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        session: aiohttp.ClientSession | None = None
        connection: _Connection | None = None
        try:
            ws_url = await _devtools_url(process, port_file, root / "chromium.stderr", seconds)
            session = aiohttp.ClientSession()
            ws = await session.ws_connect(ws_url, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=5))
            connection = _Connection(ws)
            yield cls(process, session, connection)
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.send("Browser.close", seconds=5)
                await connection.close()
            if session is not None:
                await session.close()
            await _stop(process)
            # the profile is tens of megabytes of caches: only chromium's stderr is kept
            shutil.rmtree(root if owned else profile, ignore_errors=True)

    async def new_page(self, *, width: int = 1280, height: int = 800) -> Page:
        """A new tab, attached, with its page, runtime and network events on."""
        target = await self._connection.send("Target.createTarget", {"url": "about:blank"})
        attached = await self._connection.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self._connection, attached["sessionId"])
        for domain in ("Page.enable", "Runtime.enable", "Network.enable"):
            await page.send(domain)
        await page.send("Page.setLifecycleEventsEnabled", {"enabled": True})
        await page.set_viewport(width, height)
        return page


async def _devtools_url(process: asyncio.subprocess.Process, port_file: Path, stderr: Path, seconds: float) -> str:
    """The browser's websocket URL once chromium has written ``DevToolsActivePort`` (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        written = _read_port_file(port_file)
        if written is not None:
            return f"ws://127.0.0.1:{written[0]}{written[1]}"
        if process.returncode is not None:
            raise BrowserError(f"chromium exited with {process.returncode}: {_tail(stderr)}")
        if loop.time() >= deadline:
            raise BrowserError(f"chromium opened no DevTools port within {seconds} s")
        await asyncio.sleep(0.05)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Wait a little for chromium to exit after Browser.close, then kill whatever is left of its process group."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await process.wait()
    # chromium's helpers (zygote, renderers, GPU process) share its process group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await process.wait()


def _read_port_file(path: Path) -> tuple[int, str] | None:
    """The port and browser path chromium wrote in ``DevToolsActivePort``, once both lines are there."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) >= 2 and lines[0].strip().isdigit() and lines[1].startswith("/"):
        return int(lines[0].strip()), lines[1].strip()
    return None


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _open_for_writing(path: Path) -> BinaryIO:
    return path.open("wb")
