"""Which lifecycle policy answers an event: task policies first, then the job's.

Where it sits: used by the job controller's policy step (``handlers.job.
policies``) and its timers (``handlers.job.timers``). A policy matches when
one of its events is the event (or ``*``), or when its ``exitCode`` is the
exit code of the failed container. The first match wins, as in Volcano.
"""

from __future__ import annotations

import re

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

_UNITS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")


def duration_ms(text: str) -> int:
    """Milliseconds in a Go duration such as ``"90s"``, ``"1h30m"`` or ``"500ms"``."""
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match[1]) * _UNITS[match[2]]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration (expected e.g. 90s, 10m, 1h30m)")
    return int(total)


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
