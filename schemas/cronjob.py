"""Volcano's CronJob (``batch.volcano.sh/v1alpha1``): defaults, admission, and the Job each run creates.

Where it sits: at the edge beside ``schemas.admission`` and ``schemas.defaults``
(this module registers the CronJob's rules with their ``validate`` and
``apply_defaults``, so ``schemas.loaders`` admits a CronJob like any kind), and
under the CronJob controller (``handlers.cronjob``), which calls ``job_for``
to build the Job of one scheduled run. Pure.

Defaults are those of Volcano's CRD: ``concurrencyPolicy`` Allow, ``suspend``
false, ``successfulJobsHistoryLimit`` 3, ``failedJobsHistoryLimit`` 1, and
the namespace ``default``. Admission is Volcano's webhook
(``pkg/webhooks/admission/cronjobs/validate``) and CRD: a schedule in cron
form (``schemas.cron``) without ``TZ``/``CRON_TZ`` (the zone goes in
``timeZone``, an IANA name, not ``Local``), a name of at most 52 characters so
that ``<name>-<minutes>`` stays a valid Job name, the limits and the deadline
not below 0, a known concurrency policy, and ``jobTemplate`` admitted as a Job
would be (its errors under ``spec.jobTemplate``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from msgspec.structs import replace

from schemas.admission import validate, validate_job
from schemas.admission_rules import Checker, Violation, check_metadata, check_name
from schemas.cron import CronError, parse, zone_of
from schemas.defaults import apply_defaults
from schemas.resources import CronJob, Job, ObjectMeta, OwnerReference

__all__ = [
    "CONCURRENCY_POLICIES",
    "SCHEDULED_TIMESTAMP",
    "job_for",
    "job_name",
    "validate_cron_job",
]

CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
DEFAULT_SUCCESSFUL_LIMIT = 3
DEFAULT_FAILED_LIMIT = 1
# Volcano: a Job is "<cronjob>-<minutes since the epoch>", at most 63 characters.
MAX_NAME = 52
SCHEDULED_TIMESTAMP = "volcano.sh/cronjob-scheduled-timestamp"


@apply_defaults.register
def _cron_job(cron: CronJob) -> CronJob:
    spec = cron.spec
    spec = replace(
        spec,
        concurrency_policy=spec.concurrency_policy or "Allow",
        suspend=False if spec.suspend is None else spec.suspend,
        successful_jobs_history_limit=(
            DEFAULT_SUCCESSFUL_LIMIT if spec.successful_jobs_history_limit is None
            else spec.successful_jobs_history_limit
        ),
        failed_jobs_history_limit=(
            DEFAULT_FAILED_LIMIT if spec.failed_jobs_history_limit is None else spec.failed_jobs_history_limit
        ),
    )
    meta = cron.metadata if cron.metadata.namespace else replace(cron.metadata, namespace="default")
    return replace(cron, metadata=meta, spec=spec)


@validate.register
def validate_cron_job(cron: CronJob) -> list[Violation]:
    c = Checker()
    meta, spec = cron.metadata, cron.spec
    check_name(c, ("metadata", "name"), meta.name, subdomain=True, max_length=MAX_NAME)
    if meta.namespace:
        check_name(c, ("metadata", "namespace"), meta.namespace)
    check_metadata(c, meta)
    if not spec.schedule:
        c.add(("spec", "schedule"), "required field is missing")
    elif "TZ" in spec.schedule:
        c.add(("spec", "schedule"), "must not contain TZ or CRON_TZ: the time zone goes in spec.timeZone")
    else:
        try:
            parse(spec.schedule)
        except CronError as exc:
            c.add(("spec", "schedule"), f"not a valid cron expression: {exc}")
    if spec.time_zone is not None:
        if not spec.time_zone:
            c.add(("spec", "timeZone"), "must be unset or a time zone name, not empty")
        elif spec.time_zone.lower() == "local":
            c.add(("spec", "timeZone"), "must be an IANA time zone name, not Local")
        else:
            try:
                zone_of(spec.time_zone)
            except CronError as exc:
                c.add(("spec", "timeZone"), str(exc))
    if spec.concurrency_policy not in CONCURRENCY_POLICIES:
        c.add(("spec", "concurrencyPolicy"), f"{spec.concurrency_policy!r} is not one of {', '.join(CONCURRENCY_POLICIES)}")
    for at, value in (
        ("startingDeadlineSeconds", spec.starting_deadline_seconds),
        ("successfulJobsHistoryLimit", spec.successful_jobs_history_limit),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ):
        if value is not None:
            c.at_least(("spec", at), value, 0)
    template = Job(
        metadata=ObjectMeta(
            name=meta.name or "cronjob", namespace=meta.namespace,
            labels=spec.job_template.metadata.labels, annotations=spec.job_template.metadata.annotations,
        ),
        spec=spec.job_template.spec,
    )
    defaulted = apply_defaults(template)
    assert isinstance(defaulted, Job)
    for v in validate_job(defaulted):
        if v.path.startswith("metadata.name"):
            continue
        c.violations.append(Violation(f"spec.jobTemplate.{v.path}" if v.path else "spec.jobTemplate", v.reason))
    return c.violations


def job_name(cron: CronJob, scheduled_ms: int) -> str:
    """The Job of the run at ``scheduled_ms``: ``<cronjob>-<minutes since the epoch>``, as Volcano names it."""
    return f"{cron.metadata.name}-{scheduled_ms // 60_000}"


def job_for(cron: CronJob, scheduled_ms: int, group: str = "batch.volcano.sh") -> Job:
    """The admitted Job one run of ``cron`` at ``scheduled_ms`` creates: the template's spec,
    labels and annotations, the scheduled time (RFC 3339 in the CronJob's zone) as an
    annotation, and the CronJob as its controller."""
    zone = ZoneInfo(cron.spec.time_zone) if cron.spec.time_zone else UTC
    when = datetime.fromtimestamp(scheduled_ms // 1000, zone).isoformat()
    if when.endswith("+00:00"):
        when = when[: -len("+00:00")] + "Z"
    template = cron.spec.job_template
    owner = OwnerReference(
        api_version=f"{group}/v1alpha1", kind="CronJob", name=cron.metadata.name, uid=cron.metadata.uid,
        controller=True, block_owner_deletion=True,
    )
    job = Job(
        api_version=f"{group}/v1alpha1",
        metadata=ObjectMeta(
            name=job_name(cron, scheduled_ms),
            namespace=cron.metadata.namespace or "default",
            labels=dict(template.metadata.labels),
            annotations={**template.metadata.annotations, SCHEDULED_TIMESTAMP: when},
            owner_references=[owner],
        ),
        spec=template.spec,
    )
    defaulted = apply_defaults(job)
    assert isinstance(defaulted, Job)
    return defaulted
