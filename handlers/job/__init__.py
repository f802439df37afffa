"""The job lifecycle handler (Volcano's job controller over the log).

Where it sits: ``JobHandler`` is registered with the runtime next to the
queue lifecycle and the scheduler. See ``handlers.job.handler`` for the
routing and ``docs/jobs.md`` for the behaviour it implements.
"""

from handlers.job.handler import JobHandler

__all__ = ["JobHandler"]
