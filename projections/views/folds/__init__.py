"""One fold per event type, a module per read model: ``FOLDS``, the table ``ViewSet`` dispatches on.

Where it sits: between ``projections.views.viewset.ViewSet`` (which decodes
each record, looks its type up here and keeps the timelines) and the records
of ``projections.views.state``. Each module folds the events of one kind of
object into the rows that show it: ``nodes`` (NodeView, PriorityClassView),
``queues`` (QueueView), ``podgroups`` (PodGroupView), ``jobs`` (JobView) and
``pods`` (PodView, and what pods hold on nodes and count in their jobs).
Each fold returns the (job, queue) timelines the event joins; an event no
view reads (``generic``) only joins the timeline of the job it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.views import wire
from projections.views.folds import jobs, nodes, podgroups, pods, queues
from projections.views.folds.base import Fold
from schemas.events.base import Event

if TYPE_CHECKING:
    from projections.views.viewset import ViewSet

# Keyed by the event classes (what ``ViewSet.fold`` is given) and by their lean twins
# (``projections.views.wire``: what ``ViewSet.fold_records`` decodes), one lookup by ``type(event)``.
FOLDS: dict[type, Fold] = {}
for _module in (nodes, queues, podgroups, jobs, pods):
    for _cls, _fold in _module.TABLE.folds.items():
        if _cls in FOLDS:
            raise ValueError(f"{_module.__name__} folds {_cls.__name__} again")
        FOLDS[_cls] = FOLDS[wire.TWINS[_cls.__name__]] = _fold

_JOB_FIELDS: dict[type, str] = {}


def generic(v: ViewSet, e: Event) -> tuple[str, str]:
    """An event no view reads: it only joins the timeline of the job it names."""
    kind = type(e)
    name = _JOB_FIELDS.get(kind)
    if name is None:
        fields = getattr(kind, "__struct_fields__", ())
        name = _JOB_FIELDS[kind] = "job" if "job" in fields else "owner" if "owner" in fields else ""
    job = getattr(e, name) if name else ""
    return (job if "/" in job else ""), ""
