"""CronJob events: a CronJob's requests, the CronJob controller's facts about it, and its runs.

Where it sits: the CLI (``eventbatch apply -f``), a scenario's workload and
the kube watch append the requests; the CronJob controller
(``handlers.cronjob``) answers them with ``CronJobCreated``/``Updated``/
``Deleted`` or ``CronJobRefused``, which changes nothing. At each scheduled
time (a ``TimerFired`` it armed) it decides ``CronJobRunStarted`` followed by
the ``JobSubmitRequested`` of the run's Job, which the job controller answers
as it answers any submitted Job; ``CronJobRunSkipped`` records a run not
started (the concurrency policy Forbid, a missed starting deadline), and
``CronJobJobDeleting`` a Job the controller deletes (Replace, the history
limits, the CronJob deleted), followed by its ``JobDeleteRequested``.

Keys are the CronJob's ``namespace/name``; times are milliseconds on the
runtime's clock.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.resources import CronJob


class CronJobSubmitRequested(Event, frozen=True, kw_only=True):
    """Create this CronJob, or update the one of that name."""

    KEY: ClassVar[str] = "cronjob"
    REQUEST: ClassVar[bool] = True
    cronjob: str
    manifest: CronJob


class CronJobDeleteRequested(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "cronjob"
    REQUEST: ClassVar[bool] = True
    cronjob: str
    reason: str = ""


class CronJobCreated(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "cronjob"
    cronjob: str
    manifest: CronJob


class CronJobUpdated(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "cronjob"
    cronjob: str
    manifest: CronJob


class CronJobDeleted(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "cronjob"
    cronjob: str


class CronJobRefused(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "cronjob"
    cronjob: str
    reason: str


class CronJobRunStarted(Event, frozen=True, kw_only=True):
    """The run scheduled at ``scheduled`` starts: its Job ``job`` is submitted (``lastScheduleTime``)."""

    KEY: ClassVar[str] = "cronjob"
    cronjob: str
    job: str
    scheduled: int


class CronJobRunSkipped(Event, frozen=True, kw_only=True):
    """The run scheduled at ``scheduled`` did not start, and why."""

    KEY: ClassVar[str] = "cronjob"
    cronjob: str
    scheduled: int
    reason: str


class CronJobJobDeleting(Event, frozen=True, kw_only=True):
    """The controller deletes one of its Jobs (``reason``: Replace, History, CronJobDeleted)."""

    KEY: ClassVar[str] = "cronjob"
    CORRELATION: ClassVar[str] = "job"
    cronjob: str
    job: str
    reason: str


EVENTS: tuple[type[Event], ...] = (
    CronJobSubmitRequested,
    CronJobDeleteRequested,
    CronJobCreated,
    CronJobUpdated,
    CronJobDeleted,
    CronJobRefused,
    CronJobRunStarted,
    CronJobRunSkipped,
    CronJobJobDeleting,
)
