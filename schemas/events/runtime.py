"""Runtime events: what the pipeline records about itself.

Where it sits: appended by the handler runtime. ``HandlerFailed`` is the dead
letter of a handler whose ``decide`` raised on a trigger: it answers that
trigger (so a restart does not retry it forever) and keeps the error, with
the trigger's position in its causation, for the audit trail.

``WriterClaimed`` is appended by a pipeline (``eventbatch serve``) when it
starts on a log: the position after it is that writer's epoch, stamped on
everything the pipeline appends. A record stamped with an older epoch that
lands after a newer claim comes from a writer that was replaced, and every
reader ignores it (``eventbatch.log.fence``). It changes no state.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event


class HandlerFailed(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "handler"
    handler: str
    trigger_type: str
    error: str


class WriterClaimed(Event, frozen=True, kw_only=True):
    """A pipeline took over the log as its one writer (its identity: host-pid, or the kube replica)."""

    KEY: ClassVar[str] = "identity"
    identity: str


EVENTS: tuple[type[Event], ...] = (HandlerFailed, WriterClaimed)
