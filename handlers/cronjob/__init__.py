"""The CronJob controller: Volcano's ``batch.volcano.sh/v1alpha1`` CronJob.

Where it sits: ``CronJobHandler`` runs beside the job controller
(``eventbatch.app.cluster_handlers`` adds it); see ``handlers.cronjob.handler``
for what it decides and ``docs/jobs.md`` ("CronJobs") for how to use it.
"""

from handlers.cronjob.handler import CronJobHandler, cronjob_status

__all__ = ["CronJobHandler", "cronjob_status"]
