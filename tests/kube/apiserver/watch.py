"""Watch streams of the fake API server: newline-delimited JSON events from a resourceVersion.

Where it sits: the HTTP layer (``server.py``) hands every ``?watch=true``
request here. Without a resourceVersion (or "0") the stream starts with an
ADDED event per current object; with one it replays the history after it.
An object moving into or out of the request's selectors is sent as ADDED or
DELETED, as the API server does. ``allowWatchBookmarks`` adds BOOKMARK
events carrying the current resourceVersion; ``timeoutSeconds`` ends the
stream; a resourceVersion older than the last compaction, or a compaction
while the watch is open (``ApiServer.expire_watches``), ends it with an
ERROR event whose Status is 410 Expired.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.kube.apiserver import errors
from tests.kube.apiserver.resources import ResourceType

if TYPE_CHECKING:
    from tests.kube.apiserver.server import ApiServer, Route

_TRUE = ("true", "1", "True")


async def watch(server: ApiServer, request: web.Request, route: Route) -> web.StreamResponse:
    """Stream the changes of ``route``'s resource as newline-delimited JSON events."""
    rt, ns = route.rt, route.namespace
    match = server._matcher(request)
    if route.name:
        by_name = match
        match = lambda o: by_name(o) and o["metadata"]["name"] == route.name  # noqa: E731
    bookmarks = request.query.get("allowWatchBookmarks") in _TRUE
    timeout = float(request.query.get("timeoutSeconds", "1800"))
    deadline = time.monotonic() + timeout
    since = request.query.get("resourceVersion", "")
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    server._watches.add(response)

    async def send(kind: str, obj: dict[str, Any]) -> None:
        await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    def in_scope(obj: dict[str, Any]) -> bool:
        return ns is None or obj["metadata"].get("namespace") == ns

    try:
        if since in ("", "0"):
            start_rv = server.store.rv
            for obj in server.store.list(rt, ns):
                if match(obj):
                    await send("ADDED", obj)
        else:
            start_rv = int(since)
            if start_rv < server.store.compacted:
                gone = errors.expired(f"too old resource version: {start_rv} ({server.store.compacted})")
                await send("ERROR", gone.status())
                return response
        index = next((i for i, c in enumerate(server.store.history) if c.rv > start_rv), len(server.store.history))
        last_bookmark = time.monotonic()
        epoch, expired = server.store.epoch, server._expired
        while not server._stopping:
            if expired != server._expired:
                await send("ERROR", errors.expired("too old resource version").status())
                return response
            history = server.store.history
            if epoch != server.store.epoch:
                if server.store.compacted > start_rv:
                    await send("ERROR", errors.expired("the watch history was compacted").status())
                    return response
                epoch, index = server.store.epoch, 0
                while index < len(history) and history[index].rv <= start_rv:
                    index += 1
            while index < len(history):
                change = history[index]
                index += 1
                start_rv = change.rv
                if change.resource != rt.gr or not in_scope(change.obj):
                    continue
                now_in = match(change.obj)
                was_in = change.prev is not None and match(change.prev)
                if change.type == "DELETED":
                    kind = "DELETED" if was_in or now_in else ""
                elif now_in and not was_in:
                    kind = "ADDED"
                elif was_in and not now_in:
                    kind = "DELETED"
                else:
                    kind = change.type if now_in else ""
                if kind:
                    await send(kind, change.obj)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if bookmarks:
                    await send("BOOKMARK", _bookmark(server, rt))
                break
            if bookmarks and time.monotonic() - last_bookmark >= server.bookmark_interval:
                await send("BOOKMARK", _bookmark(server, rt))
                last_bookmark = time.monotonic()
            wait = min(remaining, server.bookmark_interval if bookmarks else remaining)
            async with server.store.changed:
                try:
                    await asyncio.wait_for(server.store.changed.wait(), timeout=max(wait, 0.01))
                except TimeoutError:
                    pass
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        server._watches.discard(response)
    return response

def _bookmark(server: ApiServer, rt: ResourceType) -> dict[str, Any]:
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(server.store.rv)}}
