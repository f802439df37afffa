"""Job events: user intents about jobs and the job controller's decisions.

Where it sits: intents (``JobSubmitted``, ``JobUpdated``, ``JobDeleteRequested``,
``JobCommandIssued``) are appended at the edge after validation; the job
lifecycle handler answers them with phase changes, podgroups and the exact
pods, services and secrets the actuator must create or delete.

Keys are ``namespace/name`` of the job; pods are ``namespace/pod-name``.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.resources import Command, Job, Pod, PodGroup, Resources


class JobEvent(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "job"
    job: str


class JobSubmitted(JobEvent, frozen=True, kw_only=True):
    manifest: Job


class JobUpdated(JobEvent, frozen=True, kw_only=True):
    manifest: Job


class JobDeleteRequested(JobEvent, frozen=True, kw_only=True):
    reason: str = ""


class JobCommandIssued(JobEvent, frozen=True, kw_only=True):
    """A Command (AbortJob, ResumeJob, RestartJob, ...) aimed at a job."""

    command: Command


class JobCommandRefused(JobEvent, frozen=True, kw_only=True):
    command: str
    action: str
    reason: str


class JobUpdateRefused(JobEvent, frozen=True, kw_only=True):
    reason: str


class JobPhaseChanged(JobEvent, frozen=True, kw_only=True):
    phase: str
    previous: str = ""
    reason: str = ""
    message: str = ""
    retry_count: int = 0
    version: int = 0


class JobRemoved(JobEvent, frozen=True, kw_only=True):
    """The job and everything it owns are gone (deleted, or TTL expired)."""

    reason: str = ""


class PodGroupCreated(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "podgroup"
    CORRELATION: ClassVar[str] = "job"
    podgroup: str
    job: str
    manifest: PodGroup
    min_resources: Resources = {}


class PodGroupUpdated(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "podgroup"
    CORRELATION: ClassVar[str] = "job"
    podgroup: str
    job: str
    manifest: PodGroup
    min_resources: Resources = {}


class PodGroupDeleted(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "podgroup"
    CORRELATION: ClassVar[str] = "job"
    podgroup: str
    job: str


class PodRequested(Event, frozen=True, kw_only=True):
    """The job controller decided this exact pod must exist."""

    KEY: ClassVar[str] = "pod"
    CORRELATION: ClassVar[str] = "job"
    pod: str
    job: str
    podgroup: str
    task: str
    index: int
    manifest: Pod
    requests: Resources = {}
    priority: int = 0


class PodDeletionRequested(Event, frozen=True, kw_only=True):
    """The job controller decided this pod must go (kill, restart, scale down)."""

    KEY: ClassVar[str] = "pod"
    CORRELATION: ClassVar[str] = "job"
    pod: str
    job: str
    reason: str = ""


EVENTS: tuple[type[Event], ...] = (
    JobSubmitted,
    JobUpdated,
    JobDeleteRequested,
    JobCommandIssued,
    JobCommandRefused,
    JobUpdateRefused,
    JobPhaseChanged,
    JobRemoved,
    PodGroupCreated,
    PodGroupUpdated,
    PodGroupDeleted,
    PodRequested,
    PodDeletionRequested,
)
