"""The shape of a scheduler plugin: a policy that registers hooks when a session opens.

Where it sits: one module per plugin in ``handlers.scheduler.plugins``; the
session (``handlers.scheduler.session``) builds one instance per plugin named
in the conf, tier by tier, and calls ``open``. A plugin keeps whatever
per-session bookkeeping it needs on itself (a fresh instance every session)
and may listen to allocations through ``on_allocate``/``on_deallocate``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from handlers.scheduler.conf import PluginOption

if TYPE_CHECKING:
    from handlers.scheduler.api import JobInfo, TaskInfo
    from handlers.scheduler.session import Session


class Plugin:
    name = ""

    def __init__(self, option: PluginOption, tier: int) -> None:
        self.option = option
        self.arguments = option.arguments
        self.tier = tier

    def register(self, ssn: Session, family: str, fn: Callable[..., Any]) -> None:
        """Add ``fn`` to the session's ``family`` table unless the conf switched it off."""
        if self.option.switches.get(family, True):  # ``PluginOption.enabled``, without a call
            ssn.hooks.add(self.tier, self.name, family, fn)

    def open(self, ssn: Session) -> None:
        raise NotImplementedError

    def close(self, ssn: Session) -> None:
        pass

    def deadline(self, job: JobInfo) -> int | None:
        """When waiting longer changes this plugin's mind about ``job`` (None: never)."""
        return None

    # Allocation events: called for every allocate/pipeline and its undo.
    on_allocate: Callable[[TaskInfo], None] | None = None
    on_deallocate: Callable[[TaskInfo], None] | None = None
