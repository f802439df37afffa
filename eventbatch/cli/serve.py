"""``eventbatch serve``: run every processor against the configured log.

Where it sits: the long-running process. It builds the pipeline in the
composition root and follows the log with the job controller, the scheduler,
the timer service and the scheduling trigger until interrupted.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from eventbatch.app import open_pipeline
from eventbatch.cli import CliError

log = logging.getLogger(__name__)


def register(commands) -> None:
    serve = commands.add_parser("serve", help="run the handlers, timers and scheduler on the log")
    serve.add_argument(
        "--cluster",
        choices=["sim", "none"],
        help="cluster adapter: 'sim' (simulated kubelet on the wall clock; the default, "
        "env EVENTBATCH_CLUSTER) or 'none' (decisions only, no actuator)",
    )
    serve.add_argument("--scheduler-conf", help="Volcano scheduler conf file (actions, tiers)")
    serve.set_defaults(run=_serve)


async def _serve(args, settings) -> int:
    if args.scheduler_conf:
        settings = replace(settings, scheduler_conf=args.scheduler_conf)
    if args.cluster:
        settings = replace(settings, cluster=args.cluster)
    try:
        pipeline = await open_pipeline(settings)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    log.info("serving", extra={"settings": settings.redacted()})
    try:
        await pipeline.run()
    finally:
        await pipeline.log.stop()
    return 0
