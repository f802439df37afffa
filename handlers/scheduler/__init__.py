"""The gang and fair-share scheduler: sessions, actions, plugins, Volcano's conf.

Where it sits: a handler (``SchedulerHandler``) over the cluster projection;
it answers ``SchedulingRequested`` with one batch of decisions. See
docs/scheduler.md.
"""

from handlers.scheduler.conf import DEFAULT_CONF, ConfError, SchedulerConf
from handlers.scheduler.handler import SchedulerHandler, is_relevant, load_conf, load_conf_file, run_session

__all__ = [
    "DEFAULT_CONF",
    "ConfError",
    "SchedulerConf",
    "SchedulerHandler",
    "is_relevant",
    "load_conf",
    "load_conf_file",
    "run_session",
]
