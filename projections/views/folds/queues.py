"""The folds of queue events: QueueView's rows and the queues' timelines.

Where it sits: one module of ``projections.views.folds``, called by
``projections.views.viewset.ViewSet`` for each queue event. A queue keeps its
spec and state (``QueueViewRecord``); what it has allocated and what waits in it is
counted from the podgroups and pods when its row is rendered
(``projections.views.render``). Requests and refusals change no queue, but
they join its timeline and re-render its row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.views.folds.base import Table, resources
from projections.views.state import QueueViewRecord
from schemas import events as ev

if TYPE_CHECKING:
    from projections.views.viewset import ViewSet


# The requests and refusals about a queue: they join its timeline and re-render its row.
QueueRequest = (
    ev.QueueCreateRequested | ev.QueueUpdateRequested | ev.QueueDeleteRequested | ev.QueueCommandRequested
    | ev.QueueRequestRefused
)


def _queue_upsert(v: ViewSet, e: ev.QueueCreated | ev.QueueUpdated, at: int, _: bool) -> tuple[str, str]:
    queue = v.queues.get(e.queue)
    if queue is None:
        queue = v.queues[e.queue] = QueueViewRecord(e.queue)
        if e.manifest.status is not None and e.manifest.status.state:
            queue.state = e.manifest.status.state
    spec = e.manifest.spec
    queue.weight = max(spec.weight, 1)
    queue.capability = resources(spec.capability)
    queue.guarantee = resources(spec.guarantee.resource)
    queue.deserved = resources(spec.deserved)
    queue.parent = spec.parent
    v._dirty_queues.add(e.queue)
    return "", e.queue


def _queue_state(v: ViewSet, e: ev.QueueStateChanged, at: int, _: bool) -> tuple[str, str]:
    queue = v.queues.get(e.queue)
    if queue is not None:
        queue.state = e.state
    v._dirty_queues.add(e.queue)
    return "", e.queue


def _queue_deleted(v: ViewSet, e: ev.QueueDeleted, at: int, _: bool) -> tuple[str, str]:
    v.queues.pop(e.queue, None)
    v._dirty_queues.add(e.queue)
    return "", e.queue


def _queue_other(v: ViewSet, e: QueueRequest, at: int, _: bool) -> tuple[str, str]:
    v._dirty_queues.add(e.queue)
    return "", e.queue


TABLE: Table = Table()
TABLE.on(ev.QueueCreated, _queue_upsert)
TABLE.on(ev.QueueUpdated, _queue_upsert)
TABLE.on(ev.QueueStateChanged, _queue_state)
TABLE.on(ev.QueueDeleted, _queue_deleted)
TABLE.on(ev.QueueCreateRequested, _queue_other)
TABLE.on(ev.QueueUpdateRequested, _queue_other)
TABLE.on(ev.QueueDeleteRequested, _queue_other)
TABLE.on(ev.QueueCommandRequested, _queue_other)
TABLE.on(ev.QueueRequestRefused, _queue_other)
