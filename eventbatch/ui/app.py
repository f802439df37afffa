"""The console's aiohttp application: routes, the token check, time travel and live updates.

Where it sits: the web edge of the read side. ``Console`` holds the log (read,
never appended to), the read-model store and a ``Projector`` that keeps it
caught up with the log, as every read command does; ``make_app`` serves the
pages (``eventbatch.ui.queues``, ``jobs``, ``job``) over it:

- ``?at=POSITION`` or ``?time=TIME`` on any page renders it as of that past
  moment: ``eventbatch.replay.state_at`` folds from the nearest fold state the
  store keeps, and the rows it gives are put in an in-memory store that the
  same page code reads (a few are kept, by position);
- ``/events`` is a server-sent event stream: ``position`` each time the
  console has folded more of the log; a live page re-fetches its body
  (``?fragment=1``) on it;
- only GET and HEAD are served; with a token, every request must carry it
  (``Authorization: Bearer TOKEN`` or ``?token=TOKEN``), else 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from eventbatch.http_site import listen
from eventbatch.log.port import EventLog, LogTruncated
from eventbatch.readmodels import Projector, ReadModelStore
from eventbatch.replay import parse_time, state_at
from eventbatch.ui.html import Ctx, esc, page

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often the console asks the log for its end
TRAVEL_KEPT = 8  # past states kept rendered in memory


@dataclass
class Sample:
    """Allocation per queue at one position: a point of the queue page's plot."""

    position: int
    recorded_at: int | None
    allocated: dict[str, dict[str, str]]


class Console:
    """The console's state: the log, the caught-up store, past views and live listeners."""

    def __init__(self, log: EventLog, store: ReadModelStore, *, poll: float = POLL_SECONDS) -> None:
        self.log = log
        self.store = store
        self.projector = Projector(log=log, store=store)
        self.lock = asyncio.Lock()  # folding and reading the store never interleave
        self.poll = poll
        self.position = -1  # the last position the store has folded
        self.latest_at: int | None = None
        self.changed = asyncio.Condition()
        self.samples: list[Sample] = []  # the plot's points, by position
        self._past: OrderedDict[tuple[str, int], tuple[int, ReadModelStore]] = OrderedDict()
        self._task: asyncio.Task | None = None
        self._history: asyncio.Task | None = None

    async def start(self) -> None:
        await self.catch_up()
        self._task = asyncio.create_task(self._follow(), name="ui-follow")
        self._history = asyncio.create_task(self._sample_history(self.position + 1), name="ui-history")

    async def _sample_history(self, end: int) -> None:
        """The plot's points from the log's past (``eventbatch.ui.queues.history``), once."""
        from eventbatch.ui.queues import history

        try:
            past = await history(self, end)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("ui: sampling the allocation history failed", exc_info=True)
            return
        known = {s.position for s in self.samples}
        self.samples = sorted([s for s in past if s.position not in known] + self.samples, key=lambda s: s.position)

    async def stop(self) -> None:
        for task in (self._task, self._history):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._history = None
        async with self.lock:
            if self.projector.stats.folded:
                await self.projector.checkpoint()  # the next reader starts from here
        for _, past in self._past.values():
            await past.stop()
        self._past.clear()

    async def catch_up(self) -> bool:
        """Fold what the log holds beyond the store; True if anything was folded."""
        async with self.lock:
            before = self.position
            await self.projector.catch_up()
            self.position = self.projector.position
            views = self.projector.views
            self.latest_at = views.latest_at if views is not None else None
            if self.position != before or not self.samples:
                rows = await self.store.rows("queue_view")
                from eventbatch.ui.queues import allocation

                self.samples.append(Sample(self.position, self.latest_at, allocation(rows)))
        if self.position != before:
            async with self.changed:
                self.changed.notify_all()
            return True
        return False

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                if await self.log.end_position() > self.position + 1:
                    await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker gone for a moment: the pages keep showing what was folded
                log.warning("ui: catching up with the log failed", exc_info=True)

    async def past(self, *, to: int | None = None, at: int | None = None) -> tuple[int, ReadModelStore]:
        """The read models as of position ``to`` or time ``at``, in a store of their own."""
        key = ("to", to) if to is not None else ("at", at if at is not None else -1)
        if key in self._past:
            self._past.move_to_end(key)
            return self._past[key]
        async with self.lock:
            views = await state_at(self.log, to=to, at=at, store=self.store)
        rows = views.snapshot_rows()
        past = ReadModelStore(":memory:", durable=False)
        await past.start()
        await past.apply(rows)
        self._past[key] = (views.position, past)
        while len(self._past) > TRAVEL_KEPT:
            _, (_, old) = self._past.popitem(last=False)
            await old.stop()
        return views.position, past


@dataclass
class View:
    """What a page handler reads: the store as of the page's moment, and its context."""

    console: Console
    store: ReadModelStore
    ctx: Ctx
    query: dict[str, str] = field(default_factory=dict)


Page = Callable[[web.Request, View], Awaitable[tuple[str, str]]]

CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
TOKEN: web.AppKey[str] = web.AppKey("token", str)


def _authorised(request: web.Request, token: str) -> bool:
    given = request.query.get("token", "")
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        given = header[len("Bearer "):].strip()
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


@web.middleware
async def _guard(request: web.Request, handler):
    if request.method not in ("GET", "HEAD"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"], text="read-only: GET and HEAD only\n")
    token = request.app[TOKEN]
    if token and not _authorised(request, token):
        raise web.HTTPUnauthorized(text="a token is needed: Authorization: Bearer TOKEN or ?token=TOKEN\n",
                                   headers={"WWW-Authenticate": 'Bearer realm="eventbatch"'})
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=message + "\n")


async def view_of(request: web.Request) -> View:
    """The store and context of this request: the live one, or a past one for ``at``/``time``."""
    console = request.app[CONSOLE]
    keep: dict[str, str] = {}
    if "token" in request.query:
        keep["token"] = request.query["token"]
    at_text, time_text = request.query.get("at", "").strip(), request.query.get("time", "").strip()
    if time_text:
        try:
            moment = parse_time(time_text)
        except ValueError as exc:
            raise _bad(f"time: {exc}") from None
        keep["time"] = time_text
        position, store = await _travel(console, at=moment)
        return View(console, store, Ctx(position, console.position, True, keep), dict(request.query))
    if at_text:
        try:
            to = int(at_text)
        except ValueError:
            raise _bad(f"at: {at_text!r} is not a log position") from None
        if to < 0:
            raise _bad("at: a position is 0 or more")
        if to < console.position:
            keep["at"] = str(to)
            position, store = await _travel(console, to=to)
            return View(console, store, Ctx(position, console.position, True, keep), dict(request.query))
    return View(console, console.store, Ctx(console.position, console.position, False, keep), dict(request.query))


async def _travel(console: Console, *, to: int | None = None, at: int | None = None) -> tuple[int, ReadModelStore]:
    try:
        return await console.past(to=to, at=at)
    except LogTruncated as exc:
        raise _bad(f"{exc}: the log was compacted before that moment") from None


def route(render: Page, title: str = ""):
    """An aiohttp handler that renders ``render``'s body in the page shell (or alone, ``?fragment=1``)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        view = await view_of(request)
        console = view.console
        if view.store is console.store:
            async with console.lock:  # a chunk being written is never half read
                name, body = await render(request, view)
        else:
            name, body = await render(request, view)
        text = body if request.query.get("fragment") else page(view.ctx, name or title, body)
        return web.Response(text=text, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    return handler


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``position`` (the last folded position) now and each time it moves."""
    console = request.app[CONSOLE]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    sent: list[int | None] = [None]
    try:
        while True:
            if console.position != sent[0]:
                sent[0] = console.position
                await response.write(f"event: position\ndata: {sent[0]}\n\n".encode())
            async with console.changed:
                try:
                    await asyncio.wait_for(console.changed.wait_for(lambda: console.position != sent[0]), 15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


def make_app(console: Console, *, token: str = "") -> web.Application:
    from eventbatch.ui import job, jobs, queues

    app = web.Application(middlewares=[_guard])
    app[CONSOLE] = console
    app[TOKEN] = token
    app.router.add_get("/", route(queues.render, "Queues"))
    app.router.add_get("/jobs", route(jobs.render, "Jobs"))
    app.router.add_get("/jobs/{namespace}/{name}", route(job.render, "Job"))
    app.router.add_get("/events", events)
    app.router.add_get("/healthz", _healthz)
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text=f"ok #{request.app[CONSOLE].position}\n")


class UiServer:
    """The console on ``host:port`` (0: a free port, read back from ``port`` once started)."""

    def __init__(self, console: Console, *, host: str = "127.0.0.1", port: int = 0, token: str = "") -> None:
        self.console, self.host, self.port, self.token = console, host, port, token
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        await self.console.start()
        self._runner = web.AppRunner(make_app(self.console, token=self.token), access_log=None,
                                     shutdown_timeout=1.0)
        self.port = await listen(self._runner, self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.console.stop()


__all__ = ["Console", "UiServer", "View", "esc", "make_app"]
