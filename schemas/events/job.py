"""Job events: user intents about jobs and the job controller's decisions.

Where it sits: intents (``JobSubmitted``, ``JobUpdated``, ``JobDeleteRequested``,
``JobCommandIssued``) are appended at the edge after validation; the job
lifecycle handler answers them with phase changes, podgroups and the exact
pods, services, config maps and secrets the actuator must create or delete
(``docs/jobs.md`` says what each decision asks of the actuator).

Keys are ``namespace/name`` of the job; pods are ``namespace/pod-name``.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
    """The job moved to ``phase``.

    ``action`` is the lifecycle action that caused the move (``RestartTask``,
    ``AbortJob``, ... or ``SyncJob`` for a move the pod counts caused) and
    ``task`` the task it targeted, so a task restart is counted against that
    task's ``maxRetry``.
    """

    phase: str
    previous: str = ""
    reason: str = ""
    message: str = ""
    retry_count: int = 0
    version: int = 0
    action: str = ""
    task: str = ""


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


# --- resources the job plugins need (svc, ssh) -------------------------------


class JobResourceEvent(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "name"
    CORRELATION: ClassVar[str] = "job"
    name: str  # namespace/name of the resource
    job: str


class ServiceRequested(JobResourceEvent, frozen=True, kw_only=True):
    """This exact Service (a core/v1 Service manifest) must exist."""

    manifest: dict[str, Any]


class ServiceDeletionRequested(JobResourceEvent, frozen=True, kw_only=True):
    pass


class ConfigMapRequested(JobResourceEvent, frozen=True, kw_only=True):
    """A ConfigMap with exactly this ``data`` must exist (created or replaced)."""

    data: dict[str, str]
    labels: dict[str, str] = {}


class ConfigMapDeletionRequested(JobResourceEvent, frozen=True, kw_only=True):
    pass


class SecretRequested(JobResourceEvent, frozen=True, kw_only=True):
    """An SSH key-pair Secret must exist; the actuator generates the keys.

    The private key never appears on the log: the actuator creates the Secret
    once (an existing one is kept) with keys ``id_rsa``, ``id_rsa.pub``,
    ``authorized_keys`` (the public key) and ``config`` (the text given here).
    """

    key_type: str = "rsa"
    key_bits: int = 2048
    config: str = ""
    labels: dict[str, str] = {}


class SecretDeletionRequested(JobResourceEvent, frozen=True, kw_only=True):
    pass


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
    ServiceRequested,
    ServiceDeletionRequested,
    ConfigMapRequested,
    ConfigMapDeletionRequested,
    SecretRequested,
    SecretDeletionRequested,
)
