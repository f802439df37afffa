"""A job's Volcano ``JobStatus``, rendered from the jobs projection.

Where it sits: read side of ``projections.jobs``. The kube adapter writes it
back to the Job's status subresource; the CLI and replay show it at any log
position. Times come from the log (``recorded_at``), never from a clock: a
running job's ``runningDuration`` is measured up to the latest event folded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from schemas.resources import Condition, Job, JobState, JobStatus, TaskState

if TYPE_CHECKING:
    from projections.job_records import Counts, JobsState


def rfc3339(ms: int) -> str:
    """``2026-11-28T09:47:00Z`` for a time in milliseconds since the epoch."""
    return _rfc3339(ms // 1000)


@lru_cache(maxsize=4096)  # job times cluster: a replay renders the same seconds again and again
def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(ms: int) -> str:
    """A duration written the way Go's ``time.Duration`` prints it (``1h2m3.5s``)."""
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    secs = f"{seconds}.{millis:03d}".rstrip("0").rstrip(".") if millis else str(seconds)
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{secs}s"


def job_status(state: JobsState, job_key: str) -> JobStatus | None:
    """The status Volcano would show for ``job_key``, or None if no such job."""
    rec = state.jobs.get(job_key)
    return status_of(rec, state.now) if rec is not None else None


class StatusSource(Protocol):
    """What ``status_of`` reads of a job: the job controller's ``JobRecord`` has it, and so
    does the read models' ``JobViewRecord``."""

    manifest: Job
    phase: str
    reason: str
    message: str
    transition_at: int
    version: int
    retry_count: int
    running_since: int | None
    finished_at: int | None
    conditions: list[tuple[str, int]]

    def counts(self) -> Counts: ...

    def task_phase_counts(self) -> dict[str, dict[str, int]]: ...


def status_of(rec: StatusSource, now: int) -> JobStatus:
    """The JobStatus of a job record (``JobRecord``, or the read models' ``JobViewRecord``),
    a running job's time measured up to ``now``."""
    counts = rec.counts()
    duration = None
    if rec.running_since is not None:
        end = rec.finished_at if rec.finished_at is not None else now
        duration = go_duration(max(0, end - rec.running_since))
    controlled = {f"plugin-{plugin}": plugin for plugin in sorted(rec.manifest.spec.plugins)}
    return JobStatus(
        state=JobState(
            phase=rec.phase,
            reason=rec.reason,
            message=rec.message,
            last_transition_time=rfc3339(rec.transition_at) if rec.phase else None,
        ),
        min_available=rec.manifest.spec.min_available,
        task_status_count={task: TaskState(phase=phases) for task, phases in rec.task_phase_counts().items()},
        pending=counts.pending,
        running=counts.running,
        succeeded=counts.succeeded,
        failed=counts.failed,
        terminating=counts.terminating,
        unknown=counts.unknown,
        version=rec.version,
        retry_count=rec.retry_count,
        running_duration=duration,
        controlled_resources=controlled,
        conditions=[Condition(status=phase, last_transition_time=rfc3339(at)) for phase, at in rec.conditions],
    )
