"""The CronJob controller: Volcano's CronJob as a handler over the log.

Where it sits: a handler (``handlers.base``) beside the job controller
(``eventbatch.app.cluster_handlers`` adds it). Requests come from the CLI, a
scenario's workload and the kube watch (``schemas.events.cronjob``). It
decides what Volcano's ``pkg/controllers/cronjob`` does on each sync, with
time taken only from events (the trigger's ``recorded_at``, ``TimerFired.now``):

- ``CronJobSubmitRequested`` -> ``CronJobCreated`` (or ``CronJobUpdated``
  when the spec changed; nothing when it did not), then a sync.
- ``CronJobDeleteRequested`` -> the armed timer cancelled, every Job it owns
  deleted (as Kubernetes' garbage collector deletes a CronJob's Jobs), and
  ``CronJobDeleted``; ``CronJobRefused`` for a CronJob that does not exist.
- A sync: finished Jobs beyond the history limits are deleted, oldest
  first (``CronJobJobDeleting`` + ``JobDeleteRequested``); unless
  suspended, the most recent scheduled time not yet run (from the last
  run, or the CronJob's creation; no earlier than ``startingDeadlineSeconds``
  ago) is run: ``CronJobRunStarted`` + ``JobSubmitRequested`` of the Job
  ``<cronjob>-<minutes since the epoch>`` (``schemas.cronjob.job_for``),
  which the job controller answers as any submitted Job. Forbid skips it
  while a Job of the CronJob is active (``CronJobRunSkipped``; it is run
  later if it is still the latest unmet time, within the deadline, when the
  active Job finishes); Replace deletes the active Jobs first. A run whose
  time fell before the deadline is recorded as skipped. The next scheduled
  time is armed as a timer (``TimerScheduled``), answered by ``TimerFired``.
- A sync runs on the CronJob's own requests, on its timer, and when one of
  its Jobs finishes, is removed or is refused.

It folds facts only (its own ``CronJob*`` facts and timers, the job
controller's ``JobCreated``/``JobPhaseChanged``/``JobRemoved``/
``JobSubmitRefused`` for the Jobs it started), so a refused request changes
nothing. ``cronjob_status`` gives the status Volcano writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from msgspec.structs import replace

from handlers.base import reads
from projections.dispatch import FoldTable
from schemas.cron import CronError, Schedule, parse
from schemas.cronjob import job_for, job_name
from schemas.envelope import Envelope
from schemas.events import (
    CronJobCreated,
    CronJobDeleted,
    CronJobDeleteRequested,
    CronJobJobDeleting,
    CronJobRefused,
    CronJobRunSkipped,
    CronJobRunStarted,
    CronJobSubmitRequested,
    CronJobUpdated,
    JobCreated,
    JobDeleteRequested,
    JobPhaseChanged,
    JobRemoved,
    JobSubmitRefused,
    JobSubmitRequested,
    TimerCancelled,
    TimerFired,
    TimerScheduled,
)
from schemas.events.base import Event
from schemas.resources import CronJob, key_of

HANDLER = "cronjob-controller"
PURPOSE = "cronjob"
FINISHED = frozenset({"Completed", "Failed", "Terminated"})
# Scheduled times looked at in one sync at most (Volcano warns past 100 missed).
_MAX_MISSED = 10_000


@dataclass
class RunRecord:
    """One run of a CronJob: its Job and when it was scheduled."""

    job: str
    scheduled: int
    created: int = -1  # when the job controller created the Job; -1 until then
    phase: str = ""
    finished_at: int = -1
    deleting: bool = False

    @property
    def active(self) -> bool:
        return self.phase not in FINISHED and not self.deleting


@dataclass
class CronRecord:
    """The controller's record of one CronJob (``...Record``: a fold's state of one object)."""

    manifest: CronJob
    created_at: int
    last_schedule: int | None = None
    last_successful: int | None = None
    runs: dict[str, RunRecord] = field(default_factory=dict)  # job -> run, in the order started
    timer: str = ""  # the armed timer
    timer_at: int = -1
    fired_position: int = -1  # the position of the TimerFired of the armed timer
    skipped: int | None = None  # the latest scheduled time reported as skipped


@dataclass
class CronJobsState:
    cronjobs: dict[str, CronRecord] = field(default_factory=dict)
    owner_of: dict[str, str] = field(default_factory=dict)  # job -> the CronJob that started it
    gone: tuple[str, str] | None = None  # (job, its CronJob) of the run the latest event ended


# --- fold: facts only -------------------------------------------------------------


def _created(state: CronJobsState, e: CronJobCreated, env: Envelope) -> None:
    state.cronjobs[e.cronjob] = CronRecord(e.manifest, created_at=env.recorded_at)


def _updated(state: CronJobsState, e: CronJobUpdated, _: Envelope) -> None:
    record = state.cronjobs.get(e.cronjob)
    if record is not None:
        record.manifest = e.manifest


def _deleted(state: CronJobsState, e: CronJobDeleted, _: Envelope) -> None:
    record = state.cronjobs.pop(e.cronjob, None)
    if record is not None:
        for job in record.runs:
            if state.owner_of.get(job) == e.cronjob:
                del state.owner_of[job]


def _run_started(state: CronJobsState, e: CronJobRunStarted, _: Envelope) -> None:
    record = state.cronjobs.get(e.cronjob)
    if record is not None:
        record.last_schedule = e.scheduled
        record.runs[e.job] = RunRecord(e.job, e.scheduled)
        state.owner_of[e.job] = e.cronjob


def _run_skipped(state: CronJobsState, e: CronJobRunSkipped, _: Envelope) -> None:
    record = state.cronjobs.get(e.cronjob)
    if record is not None:
        record.skipped = e.scheduled


def _deleting(state: CronJobsState, e: CronJobJobDeleting, _: Envelope) -> None:
    run = _run(state, e.job)
    if run is not None:
        run.deleting = True


def _run(state: CronJobsState, job: str) -> RunRecord | None:
    cron = state.owner_of.get(job)
    record = state.cronjobs.get(cron) if cron is not None else None
    return record.runs.get(job) if record is not None else None


def _job_created(state: CronJobsState, e: JobCreated, env: Envelope) -> None:
    run = _run(state, e.job)
    if run is not None:
        run.created = env.recorded_at


def _job_phase(state: CronJobsState, e: JobPhaseChanged, env: Envelope) -> None:
    run = _run(state, e.job)
    if run is None:
        return
    run.phase = e.phase
    if e.phase in FINISHED and run.finished_at < 0:
        run.finished_at = env.recorded_at
    if e.phase == "Completed":
        record = state.cronjobs[state.owner_of[e.job]]
        if record.last_successful is None or env.recorded_at > record.last_successful:
            record.last_successful = env.recorded_at


def _job_gone(state: CronJobsState, e: JobRemoved | JobSubmitRefused, _: Envelope) -> None:
    if isinstance(e, JobSubmitRefused):
        run = _run(state, e.job)
        if run is None or run.created >= 0:  # a refused resubmission of a Job that exists
            return
    cron = state.owner_of.pop(e.job, None)
    record = state.cronjobs.get(cron) if cron is not None else None
    if cron is not None and record is not None:
        record.runs.pop(e.job, None)
        state.gone = (e.job, cron)


def _timer_scheduled(state: CronJobsState, e: TimerScheduled, _: Envelope) -> None:
    record = state.cronjobs.get(e.owner) if e.purpose == PURPOSE else None
    if record is not None:
        record.timer, record.timer_at = e.timer, e.fire_at


def _timer_cancelled(state: CronJobsState, e: TimerCancelled, _: Envelope) -> None:
    record = state.cronjobs.get(e.owner)
    if record is not None and record.timer == e.timer:
        record.timer, record.timer_at = "", -1


def _timer_fired(state: CronJobsState, e: TimerFired, env: Envelope) -> None:
    record = state.cronjobs.get(e.owner) if e.purpose == PURPOSE else None
    if record is not None and record.timer == e.timer:
        record.fired_position = env.position
        record.timer, record.timer_at = "", -1


_FOLDS: FoldTable[CronJobsState, [Envelope], None] = FoldTable()
_FOLDS.on(CronJobCreated, _created)
_FOLDS.on(CronJobUpdated, _updated)
_FOLDS.on(CronJobDeleted, _deleted)
_FOLDS.on(CronJobRunStarted, _run_started)
_FOLDS.on(CronJobRunSkipped, _run_skipped)
_FOLDS.on(CronJobJobDeleting, _deleting)
_FOLDS.on(JobCreated, _job_created)
_FOLDS.on(JobPhaseChanged, _job_phase)
_FOLDS.on(JobRemoved, _job_gone)
_FOLDS.on(JobSubmitRefused, _job_gone)
_FOLDS.on(TimerScheduled, _timer_scheduled)
_FOLDS.on(TimerCancelled, _timer_cancelled)
_FOLDS.on(TimerFired, _timer_fired)
FOLDS = _FOLDS.folds


# --- decide -----------------------------------------------------------------------


def _schedule(cron: CronJob) -> Schedule | None:
    try:
        return parse(cron.spec.schedule, cron.spec.time_zone or "")
    except CronError:  # admission checked it; a schedule that cannot run runs never
        return None


def _times(schedule: Schedule, after: int, until: int) -> list[int]:
    """The scheduled times in ``(after, until]``, the latest ``_MAX_MISSED`` at most."""
    out: list[int] = []
    t = schedule.next_after(after)
    while t is not None and t <= until:
        out.append(t)
        if len(out) > _MAX_MISSED:
            del out[0]
        t = schedule.next_after(t)
    return out


def _delete(key: str, run: RunRecord, reason: str) -> list[Event]:
    return [
        CronJobJobDeleting(cronjob=key, job=run.job, reason=reason),
        JobDeleteRequested(job=run.job, reason=f"CronJob {key}: {reason}"),
    ]


def _history(key: str, record: CronRecord) -> list[Event]:
    """Delete the oldest finished Jobs beyond the history limits (Volcano's removeOldestJobs)."""
    spec = record.manifest.spec
    out: list[Event] = []
    for phase, limit in (("Completed", spec.successful_jobs_history_limit), ("Failed", spec.failed_jobs_history_limit)):
        if limit is None:
            continue
        done = sorted(
            (r for r in record.runs.values() if r.phase == phase and not r.deleting),
            key=lambda r: (r.created < 0, r.created, r.job.split("/", 1)[1]),
        )
        for run in done[: max(len(done) - limit, 0)]:
            out += _delete(key, run, "History")
    return out


def sync(key: str, record: CronRecord, now: int) -> list[Event]:
    """What one sync of the CronJob decides at ``now``, on the state ``record`` holds."""
    out = _history(key, record)
    cron = record.manifest
    schedule = _schedule(cron)
    if cron.spec.suspend or schedule is None:
        if record.timer:
            out.append(TimerCancelled(timer=record.timer, owner=key))
        return out
    since = record.last_schedule if record.last_schedule is not None else record.created_at
    missed = _times(schedule, since, now)
    deadline = cron.spec.starting_deadline_seconds
    earliest = now - deadline * 1000 if deadline is not None else None
    due = [t for t in missed if earliest is None or t >= earliest]
    if missed and not due and record.skipped != missed[-1]:
        out.append(CronJobRunSkipped(cronjob=key, scheduled=missed[-1], reason=(
            f"missed its starting deadline: {_time(missed[-1])} is more than {deadline}s before {_time(now)}"
        )))
    if due:
        out += _run_at(key, record, due[-1])
    following = schedule.next_after(now)
    if following is not None and following != record.timer_at:
        if record.timer:
            out.append(TimerCancelled(timer=record.timer, owner=key))
        out.append(TimerScheduled(timer=f"cronjob:{key}:{following}", fire_at=following, owner=key, purpose=PURPOSE))
    return out


def _run_at(key: str, record: CronRecord, scheduled: int) -> list[Event]:
    cron = record.manifest
    namespace = key.split("/", 1)[0]
    job = f"{namespace}/{job_name(cron, scheduled)}"
    if job in record.runs or record.last_schedule == scheduled:
        return []
    active = [r for r in record.runs.values() if r.active]
    out: list[Event] = []
    policy = cron.spec.concurrency_policy
    if active and policy == "Forbid":
        if record.skipped == scheduled:
            return []
        names = ", ".join(r.job for r in active)
        return [CronJobRunSkipped(cronjob=key, scheduled=scheduled, reason=(
            f"concurrencyPolicy Forbid: {names} still active at {_time(scheduled)}"
        ))]
    if active and policy == "Replace":
        for run in active:
            out += _delete(key, run, "Replace")
    manifest = job_for(cron, scheduled, group=cron.api_version.split("/", 1)[0])
    out.append(CronJobRunStarted(cronjob=key, job=job, scheduled=scheduled))
    out.append(JobSubmitRequested(job=job, manifest=manifest))
    return out


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _on_submit(state: CronJobsState, e: CronJobSubmitRequested, now: int) -> list[Event]:
    manifest = e.manifest
    if key_of(manifest.metadata) != e.cronjob:
        return [CronJobRefused(cronjob=e.cronjob, reason=f"the manifest is CronJob {key_of(manifest.metadata)}")]
    if manifest.status is not None:  # the status is the controller's to write
        manifest = replace(manifest, status=None)
    current = state.cronjobs.get(e.cronjob)
    if current is None:
        record = CronRecord(manifest, created_at=now)
        return [CronJobCreated(cronjob=e.cronjob, manifest=manifest), *sync(e.cronjob, record, now)]
    if current.manifest.spec == manifest.spec and current.manifest.metadata.labels == manifest.metadata.labels:
        return []
    updated = CronRecord(**{**current.__dict__, "manifest": manifest})
    return [CronJobUpdated(cronjob=e.cronjob, manifest=manifest), *sync(e.cronjob, updated, now)]


def _on_delete(state: CronJobsState, e: CronJobDeleteRequested) -> list[Event]:
    record = state.cronjobs.get(e.cronjob)
    if record is None:
        return [CronJobRefused(cronjob=e.cronjob, reason=f"cronjob {e.cronjob} not found")]
    out: list[Event] = []
    if record.timer:
        out.append(TimerCancelled(timer=record.timer, owner=e.cronjob))
    for run in record.runs.values():
        if not run.deleting:
            out += _delete(e.cronjob, run, "CronJobDeleted")
    out.append(CronJobDeleted(cronjob=e.cronjob))
    return out


def cronjob_status(state: CronJobsState, key: str) -> dict[str, Any] | None:
    """The status Volcano writes on the CronJob: ``active`` (references to its running
    Jobs), ``lastScheduleTime``, ``lastSuccessfulTime``; None for an unknown CronJob."""
    record = state.cronjobs.get(key)
    if record is None:
        return None
    group = record.manifest.api_version
    status: dict[str, Any] = {}
    active = [
        {"apiVersion": group, "kind": "Job", "namespace": run.job.split("/", 1)[0], "name": run.job.split("/", 1)[1]}
        for run in record.runs.values()
        if run.active
    ]
    if active:
        status["active"] = active
    if record.last_schedule is not None:
        status["lastScheduleTime"] = _time(record.last_schedule)
    if record.last_successful is not None:
        status["lastSuccessfulTime"] = _time(record.last_successful)
    return status


def _answer_submit(state: CronJobsState, e: CronJobSubmitRequested, envelope: Envelope) -> list[Event]:
    return _on_submit(state, e, envelope.recorded_at)


def _answer_delete(state: CronJobsState, e: CronJobDeleteRequested, _: Envelope) -> list[Event]:
    return _on_delete(state, e)


def _answer_timer(state: CronJobsState, e: TimerFired, envelope: Envelope) -> list[Event]:
    record = state.cronjobs.get(e.owner) if e.purpose == PURPOSE else None
    if record is None or record.fired_position != envelope.position:
        return []
    return sync(e.owner, record, e.now)


def _answer_job_end(
    state: CronJobsState, e: JobPhaseChanged | JobRemoved | JobSubmitRefused, envelope: Envelope
) -> list[Event]:
    """A sync of the CronJob whose Job finished, was removed or was refused."""
    if isinstance(e, JobPhaseChanged) and e.phase not in FINISHED:
        return []
    cron = state.owner_of.get(e.job)
    if cron is None and state.gone is not None and state.gone[0] == e.job:
        cron = state.gone[1]
    record = state.cronjobs.get(cron) if cron is not None else None
    if cron is None or record is None:
        return []
    return sync(cron, record, envelope.recorded_at)


# What the controller answers, each with its function: its requests, its timers, its Jobs' ends.
_DECIDES: FoldTable[CronJobsState, [Envelope], list[Event]] = FoldTable()
_DECIDES.on(CronJobSubmitRequested, _answer_submit)
_DECIDES.on(CronJobDeleteRequested, _answer_delete)
_DECIDES.on(TimerFired, _answer_timer)
_DECIDES.on(JobPhaseChanged, _answer_job_end)
_DECIDES.on(JobRemoved, _answer_job_end)
_DECIDES.on(JobSubmitRefused, _answer_job_end)
DECIDES = _DECIDES.folds


class CronJobHandler:
    """Runs CronJobs: a Job at each scheduled time, under the concurrency policy and history limits."""

    name = HANDLER
    interests = reads(FOLDS, DECIDES)  # the facts it folds and the events it answers

    def initial(self) -> CronJobsState:
        return CronJobsState()

    def fold(self, state: CronJobsState, envelope: Envelope) -> CronJobsState:
        step = FOLDS.get(type(envelope.payload))
        if step is not None:
            step(state, envelope.payload, envelope)
        return state

    def decide(self, state: CronJobsState, envelope: Envelope) -> list[Event]:
        answer = DECIDES.get(type(envelope.payload))
        return answer(state, envelope.payload, envelope) if answer is not None else []
