"""List-then-watch of one resource, surviving reconnects and 410 Gone.

Where it sits: the kube adapter (``eventbatch.kube.observe``) and kubelet-sim
run one ``Informer`` per resource they follow. It lists, hands the complete
snapshot to ``on_snapshot``, then watches from the list's resourceVersion
with bookmarks and a server-side timeout, handing each change to
``on_change``; when the watch ends it resumes from the last resourceVersion
seen (a bookmark moves it too). A 410 (an ERROR event in the stream, or the
request's status) means the version was compacted: it lists again and hands
over a fresh snapshot, from which the consumer derives what it missed.
Transient failures back off with jitter.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from eventbatch.kube.backoff import Backoff, transient
from eventbatch.kube.client import Kube

log = logging.getLogger(__name__)

Obj = dict[str, Any]


@dataclass
class InformerStats:
    lists: int = 0
    watches: int = 0
    events: int = 0
    bookmarks: int = 0
    expired: int = 0
    reconnects: int = 0


@dataclass
class Informer:
    kube: Kube
    name: str  # e.g. "pods", for logs
    list_call: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    on_snapshot: Callable[[list[Obj]], Awaitable[None] | None] = lambda items: None
    on_change: Callable[[str, Obj], Awaitable[None] | None] = lambda kind, obj: None
    on_list_start: Callable[[], None] = lambda: None
    watch_timeout_s: int = 300
    backoff: Backoff = field(default_factory=lambda: Backoff(attempts=None))
    stats: InformerStats = field(default_factory=InformerStats)
    resource_version: str = ""
    synced: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                if not self.resource_version:
                    await self._list()
                await self._watch()
                attempt = 0
            except ApiException as exc:
                if exc.status == 410:
                    self.stats.expired += 1
                    log.info("watch expired, listing again", extra={"resource": self.name})
                    self.resource_version = ""
                    continue
                if not transient(exc) and exc.status != 404:  # 404: the CRD is not installed (yet)
                    raise
                attempt = await self._pause(attempt, exc)
            except Exception as exc:
                if not transient(exc):
                    raise
                attempt = await self._pause(attempt, exc)

    async def _pause(self, attempt: int, exc: BaseException) -> int:
        self.stats.reconnects += 1
        delay = self.backoff.delay(attempt)
        log.warning(
            "watch interrupted, reconnecting",
            extra={"resource": self.name, "delay_s": round(delay, 3), "error": repr(exc)[:200]},
        )
        await asyncio.sleep(delay)
        return attempt + 1

    async def _list(self) -> None:
        self.on_list_start()
        body = await self.kube.call(self.list_call, *self.args, **self.kwargs)
        self.stats.lists += 1
        self.resource_version = body["metadata"]["resourceVersion"]
        result = self.on_snapshot(body.get("items") or [])
        if inspect.isawaitable(result):
            await result
        self.synced.set()

    async def _watch(self) -> None:
        self.stats.watches += 1
        async for event in self.kube.lines(
            self.list_call,
            *self.args,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_timeout_s,
            **self.kwargs,
        ):
            kind, obj = event.get("type", ""), event.get("object") or {}
            if kind == "ERROR":
                raise ApiException(status=obj.get("code", 500), reason=f"{obj.get('reason')}: {obj.get('message')}")
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if kind == "BOOKMARK":
                self.stats.bookmarks += 1
            else:
                self.stats.events += 1
                result = self.on_change(kind, obj)
                if inspect.isawaitable(result):
                    await result
            if version:
                self.resource_version = version
