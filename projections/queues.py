"""Queue state folded from the log: each queue's spec, state and live podgroups.

Where it sits: the projection the queue lifecycle handler decides on, and the
source of a queue's state for anyone else (e.g. the CLI). Pure and
deterministic: one small function per event type, facts only (a queue
exists from the controller's ``QueueCreated``, not from the request).

A podgroup is *live* from ``PodGroupCreated`` until it completes
(``PodGroupPhaseChanged`` to Completed, its job reaching a final phase), is
deleted, or its job is removed. A queue with live podgroups cannot be closed
at once (it goes Closing) nor deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from projections.dispatch import FoldTable
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.resources import Queue

FINAL_JOB_PHASES = frozenset({"Completed", "Failed", "Terminated", "Aborted"})


@dataclass
class QueueLifecycleRecord:
    """The queue controller's record of one queue: its spec, lifecycle state and live podgroups."""

    name: str
    manifest: Queue
    state: str = ""  # "" until the queue lifecycle decided; then Open / Closing / Closed
    created_at: int = 0
    podgroups: dict[str, str] = field(default_factory=dict)  # podgroup -> job (insertion order)


@dataclass
class QueuesState:
    queues: dict[str, QueueLifecycleRecord] = field(default_factory=dict)
    podgroup_queue: dict[str, str] = field(default_factory=dict)  # live podgroup -> queue
    job_podgroup: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    # Live podgroups whose queue does not exist (yet): queue -> podgroup -> job.
    unhomed: dict[str, dict[str, str]] = field(default_factory=dict)


def _queue_created(state: QueuesState, event: ev.QueueCreated, env: Envelope) -> None:
    if event.queue in state.queues:
        return
    info = state.queues[event.queue] = QueueLifecycleRecord(event.queue, event.manifest, created_at=env.recorded_at)
    state.deleted.discard(event.queue)
    # Podgroups created before their queue (a job and its queue applied
    # together) belong to it from now on: it cannot be deleted under them.
    info.podgroups.update(state.unhomed.pop(event.queue, {}))


def _queue_updated(state: QueuesState, event: ev.QueueUpdated, _: Envelope) -> None:
    info = state.queues.get(event.queue)
    if info is not None:
        info.manifest = event.manifest


def _queue_state_changed(state: QueuesState, event: ev.QueueStateChanged, _: Envelope) -> None:
    info = state.queues.get(event.queue)
    if info is not None:
        info.state = event.state


def _queue_deleted(state: QueuesState, event: ev.QueueDeleted, _: Envelope) -> None:
    if state.queues.pop(event.queue, None) is not None:
        state.deleted.add(event.queue)


def _podgroup_created(state: QueuesState, event: ev.PodGroupCreated, _: Envelope) -> None:
    queue = event.manifest.spec.queue or "default"
    state.podgroup_queue[event.podgroup] = queue
    state.job_podgroup[event.job] = event.podgroup
    info = state.queues.get(queue)
    if info is not None:
        info.podgroups[event.podgroup] = event.job
    else:
        state.unhomed.setdefault(queue, {})[event.podgroup] = event.job


def _drop_podgroup(state: QueuesState, podgroup: str) -> None:
    queue = state.podgroup_queue.pop(podgroup, None)
    info = state.queues.get(queue) if queue is not None else None
    if info is not None:
        info.podgroups.pop(podgroup, None)
    elif queue in state.unhomed:
        state.unhomed[queue].pop(podgroup, None)
        if not state.unhomed[queue]:
            del state.unhomed[queue]


def _podgroup_gone(state: QueuesState, event: ev.PodGroupDeleted, _: Envelope) -> None:
    _drop_podgroup(state, event.podgroup)


def _podgroup_phase(state: QueuesState, event: ev.PodGroupPhaseChanged, _: Envelope) -> None:
    if event.phase == "Completed":
        _drop_podgroup(state, event.podgroup)


def _job_phase(state: QueuesState, event: ev.JobPhaseChanged, _: Envelope) -> None:
    if event.phase in FINAL_JOB_PHASES and event.job in state.job_podgroup:
        _drop_podgroup(state, state.job_podgroup[event.job])


def _job_removed(state: QueuesState, event: ev.JobRemoved, _: Envelope) -> None:
    podgroup = state.job_podgroup.pop(event.job, None)
    if podgroup is not None:
        _drop_podgroup(state, podgroup)


_TABLE: FoldTable[QueuesState, [Envelope], None] = FoldTable()
_TABLE.on(ev.QueueCreated, _queue_created)
_TABLE.on(ev.QueueUpdated, _queue_updated)
_TABLE.on(ev.QueueStateChanged, _queue_state_changed)
_TABLE.on(ev.QueueDeleted, _queue_deleted)
_TABLE.on(ev.PodGroupCreated, _podgroup_created)
_TABLE.on(ev.PodGroupDeleted, _podgroup_gone)
_TABLE.on(ev.PodGroupPhaseChanged, _podgroup_phase)
_TABLE.on(ev.JobPhaseChanged, _job_phase)
_TABLE.on(ev.JobRemoved, _job_removed)
FOLDS = _TABLE.folds


def fold(state: QueuesState, envelope: Envelope) -> QueuesState:
    apply = FOLDS.get(type(envelope.payload))
    if apply is not None:
        apply(state, envelope.payload, envelope)
    return state
