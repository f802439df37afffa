"""The shape of a scheduler plugin: a policy that registers hooks when a session opens.

Where it sits: one module per plugin in ``handlers.scheduler.plugins``; the
session (``handlers.scheduler.session``) builds one instance per plugin named
in the conf, tier by tier, and calls ``open``. A plugin keeps whatever
per-session bookkeeping it needs on itself (a fresh instance every session)
and may listen to allocations through ``on_allocate``/``on_deallocate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from handlers.scheduler.conf import PluginOption

if TYPE_CHECKING:
    from handlers.scheduler.api import JobInfo, TaskInfo
    from handlers.scheduler.hooks import CompareHook, Hook
    from handlers.scheduler.session import Session

F = TypeVar("F", bound=Callable[..., object])
T = TypeVar("T")


class Plugin:
    name = ""

    def __init__(self, option: PluginOption, tier: int) -> None:
        self.option = option
        self.arguments = option.arguments
        self.tier = tier

    def register(self, family: Hook[F], fn: F) -> None:
        """Add ``fn`` to a hook family of the session (``ssn.hooks.job_order``, ...) unless
        the conf switched that family off for this plugin; ``fn`` must be of the family's type."""
        if self.option.switches.get(family.name, True):  # ``PluginOption.enabled``, without a call
            family.add(self.tier, self.name, fn)

    def register_order(self, family: CompareHook[T], fn: Callable[[T, T], int], key: Callable[[T], object]) -> None:
        """``register`` for an order family, with the order key that says what ``fn`` says
        (``CompareHook.add_keyed``): orders whose every function has a key sort by tuples."""
        if self.option.switches.get(family.name, True):
            family.add_keyed(self.tier, self.name, fn, key)

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


@runtime_checkable
class QueueShares(Protocol):
    """A plugin that knows the queues' deserved shares (``proportion``, ``capacity``):
    what reclaim orders victims by and reserve checks a gang against."""

    def queue_share(self, name: str) -> float:
        """How far the queue is over (above 1) or under its deserved share."""
        ...

    def deserved(self, name: str) -> dict[str, float]: ...


def share_source(plugins: Iterable[Plugin]) -> QueueShares | None:
    """The first plugin that knows the queues' deserved shares, if one is configured."""
    for plugin in plugins:
        if isinstance(plugin, QueueShares):
            return plugin
    return None
