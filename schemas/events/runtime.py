"""Runtime events: what the pipeline records about itself.

Where it sits: appended by the handler runtime. ``HandlerFailed`` is the dead
letter of a handler whose ``decide`` raised on a trigger: it answers that
trigger (so a restart does not retry it forever) and keeps the error, with
the trigger's position in its causation, for the audit trail.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event


class HandlerFailed(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "handler"
    handler: str
    trigger_type: str
    error: str


EVENTS: tuple[type[Event], ...] = (HandlerFailed,)
