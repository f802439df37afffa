"""Queue events: requests about queues and the queue lifecycle's facts.

Where it sits: ``QueueCreateRequested``, ``QueueUpdateRequested``,
``QueueDeleteRequested`` and ``QueueCommandRequested`` (open/close) are
requests appended at the edge; they change nothing by themselves. The queue
lifecycle handler owns queues and answers with facts (``QueueCreated``,
``QueueUpdated``, ``QueueStateChanged`` to Open, Closing or Closed,
``QueueDeleted``) or with ``QueueRequestRefused``, which changes nothing.
Keys are queue names (cluster scoped, as in Volcano).
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.resources import Queue


class QueueEvent(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "queue"
    queue: str


# --- requests: appended at the edge, answered by the queue controller ------------


class QueueCreateRequested(QueueEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True
    manifest: Queue


class QueueUpdateRequested(QueueEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True
    manifest: Queue


class QueueDeleteRequested(QueueEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True


class QueueCommandRequested(QueueEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True
    action: str  # "open" | "close"


# --- the queue controller's answers -----------------------------------------------


class QueueCreated(QueueEvent, frozen=True, kw_only=True):
    """The queue exists, with this manifest.

    Version 2: in version 1 this tag named the request, now ``QueueCreateRequested``.
    """

    VERSION: ClassVar[int] = 2
    manifest: Queue


class QueueUpdated(QueueEvent, frozen=True, kw_only=True):
    """The queue's spec is now this manifest's (version 2, as ``QueueCreated``)."""

    VERSION: ClassVar[int] = 2
    manifest: Queue


class QueueStateChanged(QueueEvent, frozen=True, kw_only=True):
    state: str  # "Open" | "Closing" | "Closed"
    previous: str = ""
    reason: str = ""


class QueueDeleted(QueueEvent, frozen=True, kw_only=True):
    pass


class QueueRequestRefused(QueueEvent, frozen=True, kw_only=True):
    action: str
    reason: str


EVENTS: tuple[type[Event], ...] = (
    QueueCreateRequested,
    QueueUpdateRequested,
    QueueDeleteRequested,
    QueueCommandRequested,
    QueueCreated,
    QueueUpdated,
    QueueStateChanged,
    QueueDeleted,
    QueueRequestRefused,
)
