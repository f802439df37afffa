"""Time as events: timers, their firing, and scheduling triggers.

Where it sits: handlers never read a clock. A handler that needs a timeout
decides ``TimerScheduled``; the runtime's timer service appends
``TimerFired`` once its clock passes ``fire_at``. ``SchedulingRequested`` is
appended by the runtime (debounced) when events that can change a scheduling
decision arrive, and periodically; the scheduler runs one session per request.
All times are milliseconds on the runtime's clock.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event


class TimerScheduled(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "timer"
    CORRELATION: ClassVar[str] = "owner"
    timer: str
    fire_at: int
    owner: str = ""
    purpose: str = ""


class TimerCancelled(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "timer"
    CORRELATION: ClassVar[str] = "owner"
    timer: str
    owner: str = ""


class TimerFired(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "timer"
    CORRELATION: ClassVar[str] = "owner"
    timer: str
    now: int
    owner: str = ""
    purpose: str = ""


class SchedulingRequested(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "scheduler"
    scheduler: str = "eventbatch"
    now: int
    reason: str = ""


EVENTS: tuple[type[Event], ...] = (TimerScheduled, TimerCancelled, TimerFired, SchedulingRequested)
