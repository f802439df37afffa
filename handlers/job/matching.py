"""Which lifecycle policy answers an event: task policies first, then the job's.

Where it sits: used by the job controller's policy step (``handlers.job.
policies``) and its timers (``handlers.job.timers``). A policy matches when
one of its events is the event (or ``*``), or when its ``exitCode`` is the
exit code of the failed container. The first match wins, as in Volcano.
"""

from __future__ import annotations

from projections.job_records import JobRecord
from schemas.resources import LifecyclePolicy

POD_FAILED = "PodFailed"
POD_EVICTED = "PodEvicted"
POD_PENDING = "PodPending"
UNKNOWN = "Unknown"
TASK_COMPLETED = "TaskCompleted"
TASK_FAILED = "TaskFailed"
JOB_UPDATED = "JobUpdated"
ANY = "*"


def events_of(policy: LifecyclePolicy) -> list[str]:
    return list(policy.events) or ([policy.event] if policy.event else [])


def match_policy(
    job: JobRecord, task: str, event: str, exit_code: int | None = None, *, timed_only: bool = False
) -> LifecyclePolicy | None:
    """The first policy of ``task`` and then of the job that answers ``event``."""
    spec = job.task(task)
    candidates = [*(spec.policies if spec is not None else []), *job.manifest.spec.policies]
    for policy in candidates:
        if timed_only and not policy.timeout:
            continue
        events = events_of(policy)
        if event and (event in events or ANY in events):
            return policy
        if policy.exit_code is not None and exit_code is not None and policy.exit_code == exit_code:
            return policy
    return None
