"""The folds of podgroup events: PodGroupView's rows, and the queues they count in.

Where it sits: one module of ``projections.views.folds``, called by
``projections.views.viewset.ViewSet`` for each podgroup event (but
PodGroupUnschedulable, which ``ViewSet`` folds itself: in a busy log most
records are one). A podgroup keeps its job, queue, phase and minimum
(``PodGroupViewRecord``); a change to one re-renders its queue's row, and the old
queue's when it moved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.views.folds.base import Table, job_of
from projections.views.state import PodGroupViewRecord
from schemas import events as ev

if TYPE_CHECKING:
    from projections.views.viewset import ViewSet


def _group_upsert(v: ViewSet, e: ev.PodGroupCreated | ev.PodGroupUpdated, at: int, _: bool) -> tuple[str, str]:
    group = v.groups.get(e.podgroup)
    before = ""
    if group is None:
        group = v.groups[e.podgroup] = PodGroupViewRecord(e.podgroup, at)
        status = e.manifest.status
        if status is not None and status.phase:
            group.phase = status.phase
    else:
        before = group.queue
        if group.job != e.job:
            v.groups_by_job.get(group.job, {}).pop(e.podgroup, None)
    spec = e.manifest.spec
    group.job = e.job
    group.queue = spec.queue or "default"
    group.min_member = spec.min_member
    group.min_resources = dict(e.min_resources)
    v.groups_by_job.setdefault(e.job, {})[e.podgroup] = None
    v._dirty_groups.add(e.podgroup)
    if before and before != group.queue:
        v._dirty_queues.add(before)
    v._dirty_queues.add(group.queue)
    return job_of(e.job), group.queue


def _group_deleted(v: ViewSet, e: ev.PodGroupDeleted, at: int, _: bool) -> tuple[str, str]:
    group = v.groups.pop(e.podgroup, None)
    v._dirty_groups.add(e.podgroup)
    if group is None:
        return job_of(e.job), ""
    v.groups_by_job.get(group.job, {}).pop(e.podgroup, None)
    v._dirty_queues.add(group.queue)
    return job_of(e.job), group.queue


def _group_enqueued(v: ViewSet, e: ev.PodGroupEnqueued, at: int, _: bool) -> tuple[str, str]:
    group = v.groups.get(e.podgroup)
    v._dirty_groups.add(e.podgroup)
    if group is None:
        return job_of(e.job), ""
    if group.phase == "Pending":
        group.phase = "Inqueue"
    v._dirty_queues.add(group.queue)
    return job_of(e.job), group.queue


def _group_phase(v: ViewSet, e: ev.PodGroupPhaseChanged, at: int, _: bool) -> tuple[str, str]:
    group = v.groups.get(e.podgroup)
    v._dirty_groups.add(e.podgroup)
    if group is None:
        return job_of(e.job), ""
    if not e.previous or e.previous == group.phase:
        group.phase = e.phase
    v._dirty_queues.add(group.queue)
    return job_of(e.job), group.queue


TABLE: Table = Table()
TABLE.on(ev.PodGroupCreated, _group_upsert)
TABLE.on(ev.PodGroupUpdated, _group_upsert)
TABLE.on(ev.PodGroupDeleted, _group_deleted)
TABLE.on(ev.PodGroupEnqueued, _group_enqueued)
TABLE.on(ev.PodGroupPhaseChanged, _group_phase)
