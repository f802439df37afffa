"""The pure handlers: the job, queue and node controllers and the scheduler.

Each folds the log into its own state and decides on each event
(``handlers.base.Handler``); the runtime (``eventbatch.runtime``) drives them.
"""
