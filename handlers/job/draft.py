"""The batch being decided for one trigger, over a private copy of the job.

Where it sits: the job controller's ``decide`` opens a ``Draft`` per trigger.
Every decision goes through ``emit``, which records it and folds it into the
copy at once (with the same fold the projection uses), so a later step in
the same batch sees what an earlier one decided: a pod asked to be deleted
already counts as Terminating, a phase change is already the phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from projections.job_apply import apply_decision
from projections.job_records import JobRecord, JobsState
from schemas.envelope import Envelope
from schemas.events import JobPhaseChanged, TimerFired
from schemas.events.base import Event


@dataclass(frozen=True)
class Request:
    """Why the controller acts now: a policy event, an action, and what they concern.

    ``event`` is a lifecycle-policy event (``PodFailed``, ``TaskCompleted``,
    ...) or empty for a plain sync; ``action`` is the action to run.
    """

    action: str = "SyncJob"
    event: str = ""
    task: str = ""
    pod: str = ""
    exit_code: int | None = None
    reason: str = ""
    message: str = ""


SYNC = Request()


@dataclass
class Draft:
    state: JobsState
    trigger: Envelope
    job: JobRecord
    decisions: list[Event] = field(default_factory=list)
    new_pods: list[str] = field(default_factory=list)

    @property
    def now(self) -> int:
        ev = self.trigger.payload
        return ev.now if isinstance(ev, TimerFired) else self.trigger.recorded_at

    def emit(self, event: Event) -> None:
        self.decisions.append(event)
        apply_decision(self.job, event, self.trigger.recorded_at, self.trigger.position)

    def set_phase(
        self,
        phase: str,
        *,
        reason: str,
        message: str = "",
        action: str = "SyncJob",
        task: str = "",
        retry: int = 0,
        version: int = 0,
    ) -> None:
        """Move the job to ``phase``; ``retry``/``version`` add to the counters."""
        self.emit(
            JobPhaseChanged(
                job=self.job.key,
                phase=phase,
                previous=self.job.phase,
                reason=reason,
                message=message,
                retry_count=self.job.retry_count + retry,
                version=self.job.version + version,
                action=action,
                task=task,
            )
        )
