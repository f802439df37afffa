"""The podgroup controller: PodGroups and plain pods that other operators create.

Where it sits: ``PodGroupHandler`` runs beside the job controller, the queue
controller and the scheduler (``eventbatch.app.cluster_handlers`` adds it).
See ``handlers.podgroup.handler`` for what it decides and
``docs/operators.md`` for how Kubeflow, Spark and other operators use it.
"""

from handlers.podgroup.handler import PodGroupHandler

__all__ = ["PodGroupHandler"]
