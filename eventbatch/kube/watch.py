"""What the kube watch reactors share: informers feeding a cache of API objects, marked dirty by key.

Where it sits: the input edge of ``--cluster kube``. The watch adapter
(``eventbatch.kube.observe``), the watch of other operators' PodGroups and
pods (``eventbatch.kube.operators``) and the JobTemplate/JobFlow watch
(``eventbatch.kube.flows``) are each a reactor that folds the log into what
the log already says and appends the difference from the API server's
objects. This base holds the API side they have in common: one
``Informer`` per listed resource, the latest objects by informer then key,
which informers have listed once, the ``(kind, key)`` pairs to derive again
(the kind is the informer's name before any ``:``, so ``pods:volcano`` and
``pods:eventbatch`` are one kind), admission of an object with each refused
(uid, generation) logged once and, where the subclass posts them, reported
as a Warning Event on the object; and the run loop: the log followed, the
act loop and every informer side by side.

What each subclass derives, and how a fresh list marks keys dirty, is its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from eventbatch.kube.client import Connection, Kube
from eventbatch.kube.crds import Groups, groups
from eventbatch.kube.events import post_event
from eventbatch.kube.informer import Informer
from eventbatch.kube.translate import key_of
from eventbatch.reactor import Reactor
from schemas.loaders import ManifestError, decode_manifest

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class ApiWatch(Reactor):
    """A reactor following API objects through informers; ``make_informers`` and ``_snapshot`` are the subclass's."""

    # an object refused by admission is reported as a Warning Event on it (``_post_reports``), not only logged
    REPORT_REFUSED: bool = True

    def __init__(
        self, *, connection: Connection, watch_timeout_s: int = 300, api_groups: Groups | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.connection = connection
        self.api_groups = api_groups or groups()  # the custom resources' API groups (Settings.api_groups)
        self.watch_timeout_s = watch_timeout_s
        # what the API server holds, by informer then key
        self.cache: dict[str, dict[str, Obj]] = {}
        self.synced: set[str] = set()  # informers that listed once
        self.dirty: dict[tuple[str, str], None] = {}  # (kind, key) to derive again, in order
        self.rejected: set[tuple[str, int]] = set()  # (uid, generation) refused by admission
        self.reports: list[tuple[Obj, str]] = []  # admission failures to report
        self.informers: list[Informer] = []

    # -- the API side ---------------------------------------------------------

    def _snapshot(self, informer: str, items: list[Obj], *, namespaced: bool = True) -> None:
        raise NotImplementedError

    def _relist(self, informer: str, items: list[Obj], *, namespaced: bool = True) -> tuple[dict[str, Obj], dict[str, Obj], bool]:
        """A fresh list replaces the informer's cache: (the objects before, after, whether it is its first list)."""
        old = self.cache.get(informer, {})
        new = {key_of(o, namespaced=namespaced): o for o in items}
        first = informer not in self.synced
        self.cache[informer] = new
        self.synced.add(informer)
        return old, new, first

    def _change(self, informer: str, type_: str, obj: Obj, *, namespaced: bool = True) -> None:
        key = key_of(obj, namespaced=namespaced)
        cache = self.cache.setdefault(informer, {})
        if type_ == "DELETED":
            if (current := cache.get(key)) is not None and uid_of(current) == uid_of(obj):
                del cache[key]
        else:
            cache[key] = obj
        self.dirty[(informer.split(":")[0], key)] = None
        self._changed.set()

    def _api(self, kind: str, key: str) -> Obj | None:
        for informer, objects in self.cache.items():
            if informer.split(":")[0] == kind and key in objects:
                return objects[key]
        return None

    def _is_synced(self, kind: str) -> bool:
        names = [i.name for i in self.informers if i.name.split(":")[0] == kind]
        return bool(names) and all(n in self.synced for n in names)

    def _admit(self, obj: Obj) -> Any:
        manifest = {k: v for k, v in obj.items() if k != "status"}
        try:
            return decode_manifest(manifest, source="api", strict=False)
        except ManifestError as exc:
            mark = (uid_of(obj), generation_of(obj))
            if mark not in self.rejected:
                self.rejected.add(mark)
                if self.REPORT_REFUSED:
                    self.reports.append((obj, str(exc)))
                log.warning("object refused by admission", extra={"object": key_of(obj), "error": str(exc)})
            return None

    async def _post_reports(self, kube: Kube) -> None:
        reports, self.reports = self.reports, []
        for obj, message in reports:
            await post_event(kube, obj, reason="FailedAdmission", message=message, kind="Warning")

    # -- running --------------------------------------------------------------

    def _informer(
        self,
        kube: Kube,
        name: str,
        call: Any,
        *args: Any,
        namespaced: bool = True,
        on_list_start: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Informer:
        """An informer named ``name`` (its kind, then ``:`` and what tells it apart) feeding this watch."""
        return Informer(
            kube=kube,
            name=name,
            list_call=call,
            args=args,
            kwargs=kwargs,
            on_snapshot=lambda items: self._snapshot(name, items, namespaced=namespaced),
            on_change=lambda t, o: self._change(name, t, o, namespaced=namespaced),
            on_list_start=on_list_start or (lambda: None),
            watch_timeout_s=self.watch_timeout_s,
        )

    def make_informers(self, kube: Kube) -> list[Informer]:
        raise NotImplementedError

    async def run(self) -> None:
        kube = await self.connection.get()
        await self.catch_up()
        self.informers = self.make_informers(kube)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow(), name=f"{self.name}-follow")
            tasks.create_task(self._act_loop(), name=f"{self.name}-act")
            for informer in self.informers:
                tasks.create_task(informer.run(), name=f"{self.name}-watch-{informer.name}")


def uid_of(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("uid", "")


def generation_of(obj: Obj) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)
