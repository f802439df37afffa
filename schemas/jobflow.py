"""JobFlow and JobTemplate (``flow.volcano.sh/v1alpha1``): defaulting, admission, and
the Job a flow's step becomes.

Where it sits: beside ``schemas.defaults`` and ``schemas.admission`` at the
edge (``schemas.loaders`` imports this module, which registers both kinds with
``apply_defaults`` and ``validate``), and under the JobFlow controller
(``handlers.jobflow``), which calls ``step_job`` to make a step's Job.

What Volcano does, and so what is done here:

* A JobTemplate holds a Job spec. Its spec is defaulted and checked as a Job's
  is (Volcano checks it only when the Job made from it is created; a template
  that could never make an admissible Job is refused here instead).
* A JobFlow lists flows: ``name`` is a JobTemplate in the JobFlow's namespace
  and the step's name; ``dependsOn.targets`` names other flows. Volcano's
  validating webhook (``pkg/webhooks/admission/jobflows/validate``) refuses a
  target that is not a flow ("vertex is not defined") and a cycle ("jobflow
  Flow is not DAG"); both are refused here naming the field. Beyond Volcano,
  a JobFlow needs at least one flow, flow names are unique (Volcano keeps
  only the last of two flows of one name), and the Job a step makes
  (``<jobflow>-<flow>``) must have a valid Job name.
* ``dependsOn.probe`` (HTTP, TCP and task-status probes) and ``patch`` are
  accepted and kept, as Volcano's CRD accepts them; Volcano's controller
  reads neither (a step waits for its targets' Jobs to be Completed, and is
  made from its template alone), so neither changes what runs.
* ``jobRetainPolicy`` is ``retain`` or ``delete`` (empty keeps the Jobs).

``step_job`` names and labels the Job as Volcano's controller does
(``pkg/controllers/jobflow/jobflow_controller_action.go``): name
``<jobflow>-<flow>``, labels and annotations ``volcano.sh/createdByJobTemplate``
and ``volcano.sh/createdByJobFlow`` (``<namespace>.<name>``), and the JobFlow as
its controller owner.
"""

from __future__ import annotations

import graphlib

from msgspec.structs import replace

from schemas.admission import Violation, validate
from schemas.admission_rules import Checker, Path, check_metadata, check_name
from schemas.defaults import apply_defaults
from schemas.resources import Flow, Job, JobFlow, JobTemplate, ObjectMeta, OwnerReference

__all__ = [
    "CREATED_BY_JOB_FLOW",
    "CREATED_BY_JOB_TEMPLATE",
    "RETAIN_POLICIES",
    "step_job",
    "step_job_name",
    "targets_of",
    "validate_job_flow",
    "validate_job_template",
]

CREATED_BY_JOB_TEMPLATE = "volcano.sh/createdByJobTemplate"
CREATED_BY_JOB_FLOW = "volcano.sh/createdByJobFlow"
RETAIN_POLICIES = ("retain", "delete")
_MAX_JOB_NAME = 63  # a Job's name is part of its pods' names (schemas.admission)
_MAX_TASK_NAME = 253
_MAX_PHASE = 63


def step_job_name(jobflow: str, flow: str) -> str:
    """The name of the Job a flow's step makes: ``<jobflow>-<flow>``, as Volcano's ``getJobName``."""
    return f"{jobflow}-{flow}"


def targets_of(flow: Flow) -> list[str]:
    """The flows ``flow`` waits for, as written."""
    return list(flow.depends_on.targets) if flow.depends_on is not None else []


def _object_string(namespace: str, name: str) -> str:
    return f"{namespace}.{name}"


def step_job(jobflow: JobFlow, template: JobTemplate, flow: str, api_version: str = "") -> Job:
    """The Job of ``jobflow``'s step ``flow``, made from ``template`` as Volcano's controller makes it;
    its owner reference names ``api_version``, by default the JobFlow's own (``flow.volcano.sh/v1alpha1``
    or, in the project's API groups, ``flow.eventbatch.io/v1alpha1``)."""
    namespace = jobflow.metadata.namespace or "default"
    marks = {
        CREATED_BY_JOB_TEMPLATE: _object_string(namespace, template.metadata.name),
        CREATED_BY_JOB_FLOW: _object_string(namespace, jobflow.metadata.name),
    }
    owner = OwnerReference(
        api_version=api_version or jobflow.api_version,
        kind="JobFlow",
        name=jobflow.metadata.name,
        uid=jobflow.metadata.uid,
        controller=True,
        block_owner_deletion=True,
    )
    meta = ObjectMeta(
        name=step_job_name(jobflow.metadata.name, flow),
        namespace=namespace,
        labels=marks,
        annotations=marks,
        owner_references=[owner],
    )
    return Job(metadata=meta, spec=template.spec)


# --- defaulting --------------------------------------------------------------------


@apply_defaults.register
def _job_template(template: JobTemplate) -> JobTemplate:
    """The namespace, and the spec defaulted as a Job's (``schemas.defaults``)."""
    job = apply_defaults(Job(metadata=template.metadata, spec=template.spec))
    assert isinstance(job, Job)
    return replace(template, metadata=job.metadata, spec=job.spec)


@apply_defaults.register
def _job_flow(jobflow: JobFlow) -> JobFlow:
    meta = jobflow.metadata
    return jobflow if meta.namespace else replace(jobflow, metadata=replace(meta, namespace="default"))


# --- admission -----------------------------------------------------------------------


@validate.register
def validate_job_template(template: JobTemplate) -> list[Violation]:
    """A JobTemplate's rules are a Job's: its name, metadata and spec (same field paths)."""
    return validate(Job(metadata=template.metadata, spec=template.spec))


@validate.register
def validate_job_flow(jobflow: JobFlow) -> list[Violation]:
    c = Checker()
    meta, spec = jobflow.metadata, jobflow.spec
    check_name(c, ("metadata", "name"), meta.name, subdomain=True, max_length=_MAX_JOB_NAME)
    if meta.namespace:
        check_name(c, ("metadata", "namespace"), meta.namespace)
    check_metadata(c, meta)
    if spec.job_retain_policy and spec.job_retain_policy not in RETAIN_POLICIES:
        c.add(("spec", "jobRetainPolicy"), f"{spec.job_retain_policy!r} is not one of retain, delete")
    if not spec.flows:
        c.add(("spec", "flows"), "a jobflow needs at least one flow")
    first: dict[str, int] = {}
    for i, flow in enumerate(spec.flows):
        at: Path = ("spec", "flows", i)
        if not check_name(c, (*at, "name"), flow.name, subdomain=True, what="flow (JobTemplate) name"):
            continue
        if flow.name in first:
            c.add((*at, "name"), f"duplicate flow name {flow.name!r} (also spec.flows[{first[flow.name]}])")
            continue
        first[flow.name] = i
        if meta.name:
            check_name(c, (*at, "name"), step_job_name(meta.name, flow.name), subdomain=True,
                       max_length=_MAX_JOB_NAME, what="Job name (<jobflow>-<flow>)")
        if flow.depends_on is not None and flow.depends_on.probe is not None:
            _check_probe(c, (*at, "dependsOn", "probe"), flow)
    names = {f.name for f in spec.flows}
    for i, flow in enumerate(spec.flows):
        for j, target in enumerate(targets_of(flow)):
            if target not in names:
                c.add(("spec", "flows", i, "dependsOn", "targets", j),
                      f"flow {target!r} is not defined in spec.flows (jobflow Flow is not DAG: vertex is not defined)")
    cycle = _find_cycle(spec.flows)
    if cycle:
        index = next(i for i, f in enumerate(spec.flows) if f.name == cycle[0])
        c.add(("spec", "flows", index, "dependsOn", "targets"),
              f"flows depend on each other in a cycle: {' -> '.join(cycle)} (jobflow Flow is not DAG)")
    return c.violations


def _check_probe(c: Checker, at: Path, flow: Flow) -> None:
    assert flow.depends_on is not None and flow.depends_on.probe is not None
    probe = flow.depends_on.probe
    ports: list[tuple[str, int, int, str]] = [("httpGetList", k, h.port, h.task_name) for k, h in enumerate(probe.http_get_list)]
    ports += [("tcpSocketList", k, t.port, t.task_name) for k, t in enumerate(probe.tcp_socket_list)]
    for kind, k, port, task_name in ports:
        if not 0 <= port <= 65535:
            c.add((*at, kind, k, "port"), "must be between 0 and 65535")
        if len(task_name) > _MAX_TASK_NAME:
            c.add((*at, kind, k, "taskName"), f"longer than {_MAX_TASK_NAME} characters")
    for k, status in enumerate(probe.task_status_list):
        if len(status.task_name) > _MAX_TASK_NAME:
            c.add((*at, "taskStatusList", k, "taskName"), f"longer than {_MAX_TASK_NAME} characters")
        if len(status.phase) > _MAX_PHASE:
            c.add((*at, "taskStatusList", k, "phase"), f"longer than {_MAX_PHASE} characters")


def _find_cycle(flows: list[Flow]) -> list[str]:
    """The first dependency cycle ``[a, b, ..., a]`` among flows that exist, or ``[]``
    (a target naming no flow is reported on its own)."""
    names = {f.name for f in flows}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for flow in flows:
        sorter.add(flow.name)
    for flow in flows:
        for target in targets_of(flow):
            if target in names:
                sorter.add(target, flow.name)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []
