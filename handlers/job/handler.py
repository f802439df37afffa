"""The job controller: Volcano Job semantics as a pure handler over the log.

Where it sits: one of the handlers the runtime drives (``handlers.base``).
Its state is the jobs projection (``projections.jobs``); for each event it
finds the job concerned, opens a ``Draft`` over a private copy of that job
and routes the event: requests to ``intents``, pod observations through the
lifecycle ``policies`` into the state machine (``states``), the scheduler's
PodGroup decisions and timer firings likewise. Whatever changed, it then
cancels timers that no longer apply and arms PodPending timeouts for new
pods. The decisions come back as one list, in the order they were taken.
"""

from __future__ import annotations

from handlers.base import Handler
from handlers.job import intents
from handlers.job.draft import SYNC, Draft
from handlers.job.names import name_submission
from handlers.job.policies import apply_policies, pod_request
from handlers.job.states import execute
from handlers.job.timers import settle_timers
from projections.dispatch import FoldTable
from projections.jobs import HANDLER, JobsState, fold, initial_state, new_record, owner_of
from schemas.envelope import Envelope
from schemas.events import (
    JobCommandRequested,
    JobDeleteRefused,
    JobDeleteRequested,
    JobRemoved,
    JobSubmitRefused,
    JobSubmitRequested,
    JobUpdateRefused,
    JobUpdateRequested,
    PodCreated,
    PodDeleted,
    PodEvicted,
    PodFailed,
    PodGroupEnqueued,
    PodGroupPhaseChanged,
    PodReady,
    PodRestarted,
    PodStarted,
    PodSucceeded,
    PodUnknown,
    TimerFired,
)
from schemas.events.base import Event
from schemas.events.pod import PodEvent
from schemas.events.scheduler import PodGroupDecision


def _pod_event(d: Draft, ev: PodEvent) -> None:
    apply_policies(d, pod_request(d, ev))


def _sync(d: Draft, ev: PodGroupDecision) -> None:
    execute(d, SYNC)


# The route of each event class the controller answers, looked up by the
# payload's class; ``on`` checks that a route takes the class it is keyed by.
ROUTES: FoldTable[Draft, [], None] = FoldTable()
ROUTES.on(JobSubmitRequested, intents.on_submitted)
ROUTES.on(JobUpdateRequested, intents.on_updated)
ROUTES.on(JobCommandRequested, intents.on_command)
ROUTES.on(JobDeleteRequested, intents.on_delete)
ROUTES.on(TimerFired, intents.on_timer)
for _decision in (PodGroupEnqueued, PodGroupPhaseChanged):
    ROUTES.on(_decision, _sync)
for _observation in (
    PodCreated,
    PodStarted,
    PodReady,
    PodSucceeded,
    PodFailed,
    PodRestarted,
    PodEvicted,
    PodUnknown,
    PodDeleted,
):
    ROUTES.on(_observation, _pod_event)
_routes = ROUTES.folds


class JobHandler(Handler[JobsState]):
    """Decides pods, PodGroups, phases, timers and plugin resources for Volcano Jobs."""

    name = HANDLER
    # Its fold of its own decisions reads their trigger (causation), never where they landed.
    position_free_decisions = True

    def initial(self) -> JobsState:
        return initial_state()

    def fold(self, state: JobsState, envelope: Envelope) -> JobsState:
        return fold(state, envelope)

    def decide(self, state: JobsState, envelope: Envelope) -> list[Event]:
        ev = envelope.payload
        route = _routes.get(type(ev))
        if route is None:
            return []
        key = owner_of(state, ev)
        if isinstance(ev, PodDeleted) and key is None:
            key = _deleted_owner(state, envelope)
        record = state.jobs.get(key) if key else None
        if isinstance(ev, JobSubmitRequested):
            if not ev.manifest.metadata.name:  # generateName: the controller names it
                ev = name_submission(state, ev, envelope.position)
                record = state.jobs.get(ev.job)
            if record is not None:
                return [JobSubmitRefused(job=ev.job, reason=f"job {ev.job} already exists ({record.phase})")]
            record = new_record(ev.job, ev.manifest, envelope)
        elif record is None:
            return _unknown_job(ev)
        draft = Draft(state=state, trigger=envelope, job=record.clone())
        route(draft, ev)
        if not any(isinstance(e, JobRemoved) for e in draft.decisions):
            settle_timers(draft)
        return draft.decisions


def _deleted_owner(state: JobsState, envelope: Envelope) -> str | None:
    """The job whose pod this PodDeleted removed (the fold dropped it from the index)."""
    if state.deleted_owner is not None and state.deleted_owner[0] == envelope.position:
        return state.deleted_owner[1]
    return None


def _unknown_job(ev: Event) -> list[Event]:
    if isinstance(ev, JobCommandRequested):
        return [intents.refusal(ev.job, ev, f"job {ev.job} not found")]
    if isinstance(ev, JobUpdateRequested):
        return [JobUpdateRefused(job=ev.job, reason=f"job {ev.job} not found")]
    if isinstance(ev, JobDeleteRequested):
        return [JobDeleteRefused(job=ev.job, reason=f"job {ev.job} not found")]
    return []
