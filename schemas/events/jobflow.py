"""JobFlow and JobTemplate events: requests about them and the JobFlow controller's facts.

Where it sits: the CLI (``eventbatch apply -f``), a scenario's workload and the
kube watch (``eventbatch.kube.flows``) append the requests after admission
(``schemas.jobflow``); the JobFlow controller (``handlers.jobflow``) answers
each with facts or a refusal, which changes nothing. When every target of a
step has its Job Completed, the controller decides ``JobFlowStepSubmitted``
and, in the same batch, the ``JobSubmitRequested`` of the step's Job, which
the job controller answers as it answers any Job. The JobFlow's phase
(``Pending``, ``Running``, ``Succeed``, ``Failed``, as Volcano writes it)
moves with ``JobFlowPhaseChanged``.

Keys are ``namespace/name`` of the JobFlow or the JobTemplate.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.resources import JobFlow, JobTemplate

# --- requests --------------------------------------------------------------------------


class JobTemplateSubmitRequested(Event, frozen=True, kw_only=True):
    """Create this JobTemplate, or replace the spec of the one of that name."""

    KEY: ClassVar[str] = "template"
    REQUEST: ClassVar[bool] = True
    template: str
    manifest: JobTemplate


class JobTemplateDeleteRequested(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "template"
    REQUEST: ClassVar[bool] = True
    template: str


class JobFlowSubmitRequested(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "jobflow"
    REQUEST: ClassVar[bool] = True
    jobflow: str
    manifest: JobFlow


class JobFlowDeleteRequested(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "jobflow"
    REQUEST: ClassVar[bool] = True
    jobflow: str


# --- the JobFlow controller's answers ----------------------------------------------------


class JobTemplateCreated(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "template"
    template: str
    manifest: JobTemplate


class JobTemplateUpdated(Event, frozen=True, kw_only=True):
    """The template's spec is now this one; Jobs already made from it keep theirs."""

    KEY: ClassVar[str] = "template"
    template: str
    manifest: JobTemplate


class JobTemplateDeleted(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "template"
    template: str


class JobTemplateRefused(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "template"
    template: str
    reason: str


class JobFlowCreated(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "jobflow"
    jobflow: str
    manifest: JobFlow


class JobFlowRefused(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "jobflow"
    jobflow: str
    reason: str


class JobFlowDeleted(Event, frozen=True, kw_only=True):
    """The JobFlow is gone; the Jobs it made are deleted with it (they are owned by it)."""

    KEY: ClassVar[str] = "jobflow"
    jobflow: str


class JobFlowStepSubmitted(Event, frozen=True, kw_only=True):
    """Step ``step`` of the JobFlow has its Job ``job`` submitted (its targets' Jobs were
    Completed, or it has none), made from JobTemplate ``template``."""

    KEY: ClassVar[str] = "jobflow"
    jobflow: str
    step: str
    job: str
    template: str


class JobFlowPhaseChanged(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "jobflow"
    jobflow: str
    phase: str
    previous: str = ""


EVENTS: tuple[type[Event], ...] = (
    JobTemplateSubmitRequested,
    JobTemplateDeleteRequested,
    JobFlowSubmitRequested,
    JobFlowDeleteRequested,
    JobTemplateCreated,
    JobTemplateUpdated,
    JobTemplateDeleted,
    JobTemplateRefused,
    JobFlowCreated,
    JobFlowRefused,
    JobFlowDeleted,
    JobFlowStepSubmitted,
    JobFlowPhaseChanged,
)
