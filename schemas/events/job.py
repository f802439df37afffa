"""Job events: user requests about jobs and the job controller's facts.

Where it sits: requests (``JobSubmitRequested``, ``JobUpdateRequested``,
``JobDeleteRequested``, ``JobCommandRequested``) are appended at the edge
after validation and change nothing by themselves. The job lifecycle handler
owns jobs: it answers each request with facts (``JobCreated``, ``JobUpdated``,
``JobCommandAccepted``, phase changes, podgroups and the exact pods,
services, config maps and secrets the actuator must create or delete; see
``docs/jobs.md``) or with a refusal (``JobSubmitRefused``, ``JobUpdateRefused``,
``JobCommandRefused``, ``JobDeleteRefused``), which changes nothing either.

Keys are ``namespace/name`` of the job; pods are ``namespace/pod-name``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from schemas.events.base import Event
from schemas.resources import Command, Job, Pod, PodGroup, Resources


class JobEvent(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "job"
    job: str


# --- requests: appended at the edge, answered by the job controller --------------


class JobSubmitRequested(JobEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True
    manifest: Job


class JobUpdateRequested(JobEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True
    manifest: Job


class JobDeleteRequested(JobEvent, frozen=True, kw_only=True):
    REQUEST: ClassVar[bool] = True
    reason: str = ""


class JobCommandRequested(JobEvent, frozen=True, kw_only=True):
    """A Command (AbortJob, ResumeJob, RestartJob, ...) aimed at a job."""

    REQUEST: ClassVar[bool] = True
    command: Command


# --- the job controller's answers -------------------------------------------------


class JobCreated(JobEvent, frozen=True, kw_only=True):
    """The job exists, with this manifest (the accepted submission)."""

    manifest: Job


class JobUpdated(JobEvent, frozen=True, kw_only=True):
    """The job's manifest is now this one (an accepted update).

    Version 2: in version 1 this tag named the request, now ``JobUpdateRequested``.
    """

    VERSION: ClassVar[int] = 2
    manifest: Job


class JobCommandAccepted(JobEvent, frozen=True, kw_only=True):
    """The command ``command`` (its id) runs; a command runs at most once."""

    command: str
    action: str


class JobSubmitRefused(JobEvent, frozen=True, kw_only=True):
    reason: str


class JobCommandRefused(JobEvent, frozen=True, kw_only=True):
    command: str
    action: str
    reason: str


class JobUpdateRefused(JobEvent, frozen=True, kw_only=True):
    reason: str


class JobDeleteRefused(JobEvent, frozen=True, kw_only=True):
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
    """The job controller decided this exact pod must exist, or the podgroup
    controller accepted a pod another operator created (``job`` is empty then).

    ``uid`` is set when the pod exists already in the cluster (another
    controller created it): the actuator creates nothing, it only binds it.
    """

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
    uid: str = ""


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
    JobSubmitRequested,
    JobUpdateRequested,
    JobDeleteRequested,
    JobCommandRequested,
    JobCreated,
    JobUpdated,
    JobCommandAccepted,
    JobSubmitRefused,
    JobCommandRefused,
    JobUpdateRefused,
    JobDeleteRefused,
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
