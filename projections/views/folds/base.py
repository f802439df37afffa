"""What the folds of ``projections.views.folds`` share: their signature and two small rules.

Where it sits: imported by every module of ``projections.views.folds``. A fold
takes the ``ViewSet``, the event, its ``recorded_at`` and whether the job
controller's part may count it (``jobs_see``: False for a duplicate of a
decision already folded); it updates the records of
``projections.views.state``, marks the rows it touched, and returns the
(job, queue) timelines the event joins ("" for none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from projections.dispatch import FoldTable
from schemas.quantity import QuantityError, to_resources

if TYPE_CHECKING:
    from projections.views.viewset import ViewSet

# ``fold(view_set, event, recorded_at, jobs_see) -> (job, queue)``; each module's table is keyed by
# the event classes (``projections.dispatch``), ``projections.views.folds.FOLDS`` by their twins too.
Table = FoldTable["ViewSet", [int, bool], tuple[str, str]]
Fold = Callable[["ViewSet", Any, int, bool], tuple[str, str]]


def job_of(name: str) -> str:
    """``name`` if it names a job (``namespace/name``), else "" (no timeline)."""
    return name if "/" in name else ""


def resources(quantities: Mapping[str, str]) -> dict[str, int]:
    """The amounts of ``quantities``, or none if one cannot be read (the row shows none)."""
    try:
        return to_resources(quantities)
    except QuantityError:
        return {}
