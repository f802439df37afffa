"""The read models of the log as pure folds: rows for QueueView, JobView,
PodGroupView, PodView, NodeView and AuditView.

Where it sits: between the log and the SQLite store (``eventbatch.readmodels``),
and behind ``eventbatch replay --to/--at``. ``ViewSet.fold`` applies one event
and marks the rows it touched; ``ViewSet.flush`` renders only the final value
of each touched row (updates to the same row within a chunk are conflated).
No I/O here: the store writes what ``flush`` returns.
"""

from projections.views.rows import TABLES, AuditRow, JobRow, NodeRow, PodGroupRow, PodRow, QueueRow
from projections.views.viewset import Changes, ViewSet

__all__ = [
    "TABLES",
    "AuditRow",
    "Changes",
    "JobRow",
    "NodeRow",
    "PodGroupRow",
    "PodRow",
    "QueueRow",
    "ViewSet",
]
