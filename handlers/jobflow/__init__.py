"""The JobFlow controller: JobTemplates, JobFlows and the Jobs of their steps.

Where it sits: ``JobFlowHandler`` runs beside the job controller, the queue
controller and the scheduler (``eventbatch.app.cluster_handlers`` adds it).
See ``handlers.jobflow.handler`` for what it decides and ``docs/jobs.md``
(JobFlow) for how to use it.
"""

from handlers.jobflow.handler import JobFlowHandler

__all__ = ["JobFlowHandler"]
