"""The JobFlow controller: JobTemplates, JobFlows, and the Jobs of their steps, decided from the log.

Where it sits: a handler (``handlers.base``) beside the job controller
(``eventbatch.app.cluster_handlers`` adds it). Its requests come from the CLI,
a scenario's workload and the kube watch (``schemas.events.jobflow``). It
decides what Volcano's jobflow controller does
(``pkg/controllers/jobflow``), from facts on the log only:

- ``JobTemplateSubmitRequested`` -> ``JobTemplateCreated``, or
  ``JobTemplateUpdated`` when the spec changed (nothing when it did not);
  ``JobTemplateDeleteRequested`` -> ``JobTemplateDeleted``, or refused for a
  template that is not there.
- ``JobFlowSubmitRequested`` -> ``JobFlowCreated``, then at once what the flow
  can do (below). Refused (``JobFlowRefused``, naming the field): a flow whose
  JobTemplate is not in the JobFlow's namespace, and a changed spec of an
  existing JobFlow (Volcano's controller ignores updates; here they are
  refused rather than silently kept). The same spec again: nothing.
- A step whose Job does not exist, whose template exists and whose every
  target's Job is Completed (or which has no targets) gets
  ``JobFlowStepSubmitted`` and the ``JobSubmitRequested`` of its Job
  (``schemas.jobflow.step_job``: ``<jobflow>-<flow>``, labelled and owned as
  Volcano makes it); the job controller answers that request as any Job's.
  A target's Job is found by its name, as Volcano's ``judge`` does. A step
  whose Job is refused waits until its template changes.
- The phase moves as Volcano's state machine moves it after each sync
  (``state/pending.go``, ``running.go``): Pending -> Running once a Job runs or
  completes and none failed; Pending or Running -> Failed once a Job is Failed
  or Terminated; Running -> Succeed once every flow's Job is Completed. A
  JobFlow that Succeeded with ``jobRetainPolicy: delete`` has its Jobs
  deleted (``JobDeleteRequested``). Steps are submitted only while the
  JobFlow is Pending or Running.
- ``JobFlowDeleteRequested`` -> ``JobFlowDeleted`` and a ``JobDeleteRequested``
  for each Job it made that still exists (they are owned by it).

The handler is pure and folds facts only, so a refused request changes
nothing. ``waiting`` and ``status`` read the state for ``eventbatch why`` and
the kube status writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from handlers.base import reads
from projections.dispatch import FoldTable
from schemas.envelope import Envelope
from schemas.events import (
    JobCreated,
    JobDeleteRequested,
    JobFlowCreated,
    JobFlowDeleted,
    JobFlowDeleteRequested,
    JobFlowPhaseChanged,
    JobFlowRefused,
    JobFlowStepSubmitted,
    JobFlowSubmitRequested,
    JobPhaseChanged,
    JobRemoved,
    JobSubmitRefused,
    JobSubmitRequested,
    JobTemplateCreated,
    JobTemplateDeleted,
    JobTemplateDeleteRequested,
    JobTemplateRefused,
    JobTemplateSubmitRequested,
    JobTemplateUpdated,
)
from schemas.events.base import Event
from schemas.jobflow import step_job, step_job_name, targets_of
from schemas.resources import JobFlow, JobTemplate

HANDLER = "jobflow-controller"
REQUIRED_PHASE = "Completed"  # what a target's Job must reach (Volcano's judge)
PENDING, RUNNING, SUCCEED, FAILED = "Pending", "Running", "Succeed", "Failed"
# Volcano's JobFlowStatus lists, by the Job phase each gathers
STATUS_LISTS = {
    "Pending": "pendingJobs",
    "Running": "runningJobs",
    "Completed": "completedJobs",
    "Failed": "failedJobs",
    "Terminated": "terminatedJobs",
}
# Job phases Volcano's getAllJobStatus knows (the others are "unKnowJobs")
_KNOWN_PHASES = frozenset({"Pending", "Running", "Completing", "Completed", "Terminating", "Terminated", "Failed"})


@dataclass
class FlowRecord:
    """The controller's record of one JobFlow."""

    manifest: JobFlow
    phase: str = ""
    submitted: dict[str, str] = field(default_factory=dict)  # step -> its Job, once submitted
    refused: dict[str, str] = field(default_factory=dict)  # step -> why its Job was refused

    @property
    def key(self) -> str:
        return f"{self.manifest.metadata.namespace or 'default'}/{self.manifest.metadata.name}"

    def step_job(self, step: str) -> str:
        return f"{self.manifest.metadata.namespace or 'default'}/{step_job_name(self.manifest.metadata.name, step)}"


@dataclass
class JobFlowsState:
    templates: dict[str, JobTemplate] = field(default_factory=dict)
    flows: dict[str, FlowRecord] = field(default_factory=dict)
    jobs: dict[str, str] = field(default_factory=dict)  # every live Job -> its phase ("" before the first)
    # a step's Job key -> the JobFlows that name it (their own step, or a target)
    watchers: dict[str, set[str]] = field(default_factory=dict)
    owner: dict[str, tuple[str, str]] = field(default_factory=dict)  # Job submitted by a flow -> (jobflow, step)


# --- fold: facts only -------------------------------------------------------------


def _template_upsert(state: JobFlowsState, e: JobTemplateCreated | JobTemplateUpdated, _: Envelope) -> None:
    state.templates[e.template] = e.manifest


def _template_deleted(state: JobFlowsState, e: JobTemplateDeleted, _: Envelope) -> None:
    state.templates.pop(e.template, None)


def _flow_created(state: JobFlowsState, e: JobFlowCreated, _: Envelope) -> None:
    record = FlowRecord(e.manifest)
    state.flows[e.jobflow] = record
    for flow in e.manifest.spec.flows:
        state.watchers.setdefault(record.step_job(flow.name), set()).add(e.jobflow)


def _flow_deleted(state: JobFlowsState, e: JobFlowDeleted, _: Envelope) -> None:
    record = state.flows.pop(e.jobflow, None)
    if record is None:
        return
    for flow in record.manifest.spec.flows:
        job = record.step_job(flow.name)
        named = state.watchers.get(job)
        if named is not None:
            named.discard(e.jobflow)
            if not named:
                del state.watchers[job]


def _step_submitted(state: JobFlowsState, e: JobFlowStepSubmitted, _: Envelope) -> None:
    record = state.flows.get(e.jobflow)
    if record is not None:
        record.submitted[e.step] = e.job
        record.refused.pop(e.step, None)
        state.owner[e.job] = (e.jobflow, e.step)


def _flow_phase(state: JobFlowsState, e: JobFlowPhaseChanged, _: Envelope) -> None:
    record = state.flows.get(e.jobflow)
    if record is not None:
        record.phase = e.phase


def _job_created(state: JobFlowsState, e: JobCreated, _: Envelope) -> None:
    state.jobs[e.job] = ""


def _job_phase(state: JobFlowsState, e: JobPhaseChanged, _: Envelope) -> None:
    if e.job in state.jobs:
        state.jobs[e.job] = e.phase


def _job_removed(state: JobFlowsState, e: JobRemoved, _: Envelope) -> None:
    state.jobs.pop(e.job, None)
    owned = state.owner.pop(e.job, None)
    if owned is not None and (record := state.flows.get(owned[0])) is not None:
        record.submitted.pop(owned[1], None)


def _job_refused(state: JobFlowsState, e: JobSubmitRefused, _: Envelope) -> None:
    owned = state.owner.get(e.job)
    if owned is None or e.job in state.jobs:
        return
    del state.owner[e.job]
    record = state.flows.get(owned[0])
    if record is not None:
        record.submitted.pop(owned[1], None)
        record.refused[owned[1]] = e.reason


_FOLDS: FoldTable[JobFlowsState, [Envelope], None] = FoldTable()
_FOLDS.on(JobTemplateCreated, _template_upsert)
_FOLDS.on(JobTemplateUpdated, _template_upsert)
_FOLDS.on(JobTemplateDeleted, _template_deleted)
_FOLDS.on(JobFlowCreated, _flow_created)
_FOLDS.on(JobFlowDeleted, _flow_deleted)
_FOLDS.on(JobFlowStepSubmitted, _step_submitted)
_FOLDS.on(JobFlowPhaseChanged, _flow_phase)
_FOLDS.on(JobCreated, _job_created)
_FOLDS.on(JobPhaseChanged, _job_phase)
_FOLDS.on(JobRemoved, _job_removed)
_FOLDS.on(JobSubmitRefused, _job_refused)
FOLDS = _FOLDS.folds


# --- what a flow waits for ----------------------------------------------------------


def template_key(record: FlowRecord, step: str) -> str:
    return f"{record.manifest.metadata.namespace or 'default'}/{step}"


def waiting(state: JobFlowsState, record: FlowRecord, step: str) -> list[str]:
    """Why ``step`` of ``record`` has no Job yet: one line per thing it waits for, or
    ``[]`` when it has one (or is about to be submitted)."""
    job = record.step_job(step)
    if job in state.jobs or step in record.submitted:
        return []
    if record.phase in (SUCCEED, FAILED):
        return [f"jobflow {record.key} is {record.phase}: no more steps are submitted"]
    out: list[str] = []
    if step in record.refused:
        out.append(f"its Job {job} was refused ({record.refused[step]}); it is submitted again when "
                   f"JobTemplate {template_key(record, step)} changes")
    elif template_key(record, step) not in state.templates:
        out.append(f"JobTemplate {template_key(record, step)} does not exist")
    flow = next(f for f in record.manifest.spec.flows if f.name == step)
    for target in targets_of(flow):
        target_job = record.step_job(target)
        phase = state.jobs.get(target_job)
        if phase is None:
            out.append(f"dependency {target}: its Job {target_job} does not exist yet (needs {REQUIRED_PHASE})")
        elif phase != REQUIRED_PHASE:
            out.append(f"dependency {target}: its Job {target_job} is {phase or 'not started'} (needs {REQUIRED_PHASE})")
    return out


def status(state: JobFlowsState, key: str) -> dict[str, object] | None:
    """The JobFlow's status as Volcano's controller writes it (``getAllJobStatus``): its
    Jobs by phase, each Job's state, and ``state.phase``; None for an unknown JobFlow."""
    record = state.flows.get(key)
    if record is None:
        return None
    lists: dict[str, list[str]] = {name: [] for name in STATUS_LISTS.values()}
    unknown: list[str] = []
    job_status: list[dict[str, str]] = []
    for flow in record.manifest.spec.flows:
        job = record.step_job(flow.name)
        if state.owner.get(job, ("", ""))[0] != key or job not in state.jobs:
            continue
        phase = state.jobs[job]
        name = job.split("/", 1)[1]
        if phase in STATUS_LISTS:
            lists[STATUS_LISTS[phase]].append(name)
        elif phase not in _KNOWN_PHASES:
            unknown.append(name)
        job_status.append({"name": name, "state": phase} if phase else {"name": name})
    out: dict[str, object] = {k: v for k, v in lists.items() if v}
    if unknown:
        out["unKnowJobs"] = unknown
    if job_status:
        out["jobStatusList"] = job_status
    out["state"] = {"phase": record.phase or PENDING}
    return out


# --- decide -----------------------------------------------------------------------


def _owned(state: JobFlowsState, record: FlowRecord) -> list[tuple[str, str]]:
    """(job, phase) of the Jobs ``record`` made that exist, in flow order."""
    out = []
    for flow in record.manifest.spec.flows:
        job = record.step_job(flow.name)
        if state.owner.get(job, ("", ""))[0] == record.key and job in state.jobs:
            out.append((job, state.jobs[job]))
    return out


def _next_phase(phase: str, phases: list[str], flows: int) -> str:
    """One sync of Volcano's state machine."""
    failed = any(p in ("Failed", "Terminated") for p in phases)
    if phase in ("", PENDING):
        if any(p in ("Running", "Completed") for p in phases) and not any(p == "Failed" for p in phases):
            return RUNNING
        return FAILED if failed else PENDING
    if phase == RUNNING:
        if sum(p == "Completed" for p in phases) == flows:
            return SUCCEED
        return FAILED if failed else RUNNING
    return phase


def _advance(state: JobFlowsState, record: FlowRecord, *, retry: str = "") -> list[Event]:
    """What one sync of ``record`` decides: the steps to submit, then the phase moves,
    then (Succeeded, delete policy) the Jobs to delete. ``retry``: a template whose
    refused steps are submitted again. Reads ``state``, never changes it."""
    out: list[Event] = []
    key, manifest = record.key, record.manifest
    if record.phase in ("", PENDING, RUNNING):
        for flow in manifest.spec.flows:
            step = flow.name
            job = record.step_job(step)
            if job in state.jobs or step in record.submitted:
                continue
            template = state.templates.get(template_key(record, step))
            if template is None or (step in record.refused and template_key(record, step) != retry):
                continue
            if any(state.jobs.get(record.step_job(t)) != REQUIRED_PHASE for t in targets_of(flow)):
                continue
            made = step_job(manifest, template, step)
            out.append(JobFlowStepSubmitted(jobflow=key, step=step, job=job, template=template_key(record, step)))
            out.append(JobSubmitRequested(job=job, manifest=made))
    phases = [phase for _, phase in _owned(state, record)]
    phase = record.phase
    for _ in range(2):  # Pending -> Running -> Succeed can follow in one sync of a fast flow
        after = _next_phase(phase, phases, len(manifest.spec.flows))
        if after == phase and phase != "":
            break
        out.append(JobFlowPhaseChanged(jobflow=key, phase=after, previous=phase))
        phase = after
        if after == SUCCEED and manifest.spec.job_retain_policy == "delete":
            out.extend(JobDeleteRequested(job=job, reason=f"jobflow {key} succeeded (jobRetainPolicy: delete)")
                       for job, _ in _owned(state, record))
    return out


def _on_template(state: JobFlowsState, e: JobTemplateSubmitRequested) -> list[Event]:
    current = state.templates.get(e.template)
    manifest = e.manifest if e.manifest.status is None else JobTemplate(
        api_version=e.manifest.api_version, metadata=e.manifest.metadata, spec=e.manifest.spec)
    if current is None:
        decided: Event = JobTemplateCreated(template=e.template, manifest=manifest)
    elif current.spec == manifest.spec:
        return []
    else:
        decided = JobTemplateUpdated(template=e.template, manifest=manifest)
    # what the flows that were waiting for this template can do now
    after = JobFlowsState(templates={**state.templates, e.template: manifest}, flows=state.flows,
                          jobs=state.jobs, watchers=state.watchers, owner=state.owner)
    out: list[Event] = [decided]
    for key in sorted(state.flows):
        record = state.flows[key]
        if any(template_key(record, f.name) == e.template for f in record.manifest.spec.flows):
            out.extend(_advance(after, record, retry=e.template))
    return out


def _on_template_delete(state: JobFlowsState, e: JobTemplateDeleteRequested) -> list[Event]:
    if e.template not in state.templates:
        return [JobTemplateRefused(template=e.template, reason=f"jobtemplate {e.template} not found")]
    return [JobTemplateDeleted(template=e.template)]


def _on_flow(state: JobFlowsState, e: JobFlowSubmitRequested) -> list[Event]:
    manifest = e.manifest
    if manifest.status is not None:  # the status is the controller's to write
        manifest = JobFlow(api_version=manifest.api_version, metadata=manifest.metadata, spec=manifest.spec)
    current = state.flows.get(e.jobflow)
    if current is not None:
        if current.manifest.spec == manifest.spec:
            return []
        return [JobFlowRefused(jobflow=e.jobflow, reason=f"spec: jobflow {e.jobflow} exists and its spec cannot change "
                                                         "(Volcano's controller does not read updates)")]
    namespace = e.jobflow.split("/", 1)[0]
    for i, flow in enumerate(manifest.spec.flows):
        if f"{namespace}/{flow.name}" not in state.templates:
            return [JobFlowRefused(jobflow=e.jobflow,
                                   reason=f"spec.flows[{i}].name: jobtemplate {namespace}/{flow.name} not found")]
    record = FlowRecord(manifest)
    return [JobFlowCreated(jobflow=e.jobflow, manifest=manifest), *_advance(state, record)]


def _on_flow_delete(state: JobFlowsState, e: JobFlowDeleteRequested) -> list[Event]:
    record = state.flows.get(e.jobflow)
    if record is None:
        return [JobFlowRefused(jobflow=e.jobflow, reason=f"jobflow {e.jobflow} not found")]
    out: list[Event] = [JobFlowDeleted(jobflow=e.jobflow)]
    out.extend(JobDeleteRequested(job=job, reason=f"jobflow {e.jobflow} deleted") for job, _ in _owned(state, record))
    return out


def _on_job(state: JobFlowsState, job: str) -> list[Event]:
    out: list[Event] = []
    for key in sorted(state.watchers.get(job, ())):
        out.extend(_advance(state, state.flows[key]))
    return out


def _on_job_news(state: JobFlowsState, e: JobCreated | JobPhaseChanged | JobRemoved) -> list[Event]:
    return _on_job(state, e.job) if e.job in state.watchers else []


# What the controller answers, each with its function: its requests, and what happens to the
# Jobs a flow names.
_DECIDES: FoldTable[JobFlowsState, [], list[Event]] = FoldTable()
_DECIDES.on(JobTemplateSubmitRequested, _on_template)
_DECIDES.on(JobTemplateDeleteRequested, _on_template_delete)
_DECIDES.on(JobFlowSubmitRequested, _on_flow)
_DECIDES.on(JobFlowDeleteRequested, _on_flow_delete)
_DECIDES.on(JobCreated, _on_job_news)
_DECIDES.on(JobPhaseChanged, _on_job_news)
_DECIDES.on(JobRemoved, _on_job_news)
DECIDES = _DECIDES.folds


class JobFlowHandler:
    """Decides JobTemplates, JobFlows and the Jobs of their steps."""

    name = HANDLER
    interests = reads(FOLDS, DECIDES)  # the facts it folds and the events it answers

    def initial(self) -> JobFlowsState:
        return JobFlowsState()

    def fold(self, state: JobFlowsState, envelope: Envelope) -> JobFlowsState:
        step = FOLDS.get(type(envelope.payload))
        if step is not None:
            step(state, envelope.payload, envelope)
        return state

    def decide(self, state: JobFlowsState, envelope: Envelope) -> list[Event]:
        answer = DECIDES.get(type(envelope.payload))
        return answer(state, envelope.payload) if answer is not None else []
