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

from projections.views.folds.base import Fold, resources
from projections.views.state import QueueViewRecord

if TYPE_CHECKING:
    from projections.views.viewset import ViewSet


def _queue_upsert(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
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


def _queue_state(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    queue = v.queues.get(e.queue)
    if queue is not None:
        queue.state = e.state
    v._dirty_queues.add(e.queue)
    return "", e.queue


def _queue_deleted(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    v.queues.pop(e.queue, None)
    v._dirty_queues.add(e.queue)
    return "", e.queue


def _queue_other(v: ViewSet, e, at: int, _: bool) -> tuple[str, str]:
    v._dirty_queues.add(e.queue)
    return "", e.queue


FOLDS: dict[str, Fold] = {
    "QueueCreated": _queue_upsert,
    "QueueUpdated": _queue_upsert,
    "QueueStateChanged": _queue_state,
    "QueueDeleted": _queue_deleted,
    "QueueCreateRequested": _queue_other,
    "QueueUpdateRequested": _queue_other,
    "QueueDeleteRequested": _queue_other,
    "QueueCommandRequested": _queue_other,
    "QueueRequestRefused": _queue_other,
}
