"""Queue events: intents about queues and the queue lifecycle's decisions.

Where it sits: ``QueueCreated``/``QueueUpdated``/``QueueDeleteRequested`` and
``QueueCommandIssued`` (open/close) are intents appended at the edge; the
queue lifecycle handler answers with ``QueueStateChanged`` (Open, Closing,
Closed) and ``QueueDeleted`` or a refusal. Keys are queue names (cluster
scoped, as in Volcano).
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.resources import Queue


class QueueEvent(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "queue"
    queue: str


class QueueCreated(QueueEvent, frozen=True, kw_only=True):
    manifest: Queue


class QueueUpdated(QueueEvent, frozen=True, kw_only=True):
    manifest: Queue


class QueueDeleteRequested(QueueEvent, frozen=True, kw_only=True):
    pass


class QueueCommandIssued(QueueEvent, frozen=True, kw_only=True):
    action: str  # "open" | "close"


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
    QueueCreated,
    QueueUpdated,
    QueueDeleteRequested,
    QueueCommandIssued,
    QueueStateChanged,
    QueueDeleted,
    QueueRequestRefused,
)
