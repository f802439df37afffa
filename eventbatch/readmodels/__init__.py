"""The read models in SQLite: rows of ``projections.views`` with their log position.

Where it sits: the read side of the pipeline. ``Projector`` folds the log in
chunks into a ``ViewSet`` and hands each chunk's final rows to
``ReadModelStore``, which writes them and the position in one transaction.
The CLI's list, view and audit commands read the store; ``eventbatch replay``
rebuilds it from position 0.
"""

from eventbatch.readmodels.projector import Projector, ViewsAhead
from eventbatch.readmodels.store import ReadModelStore

__all__ = ["Projector", "ReadModelStore", "ViewsAhead"]
