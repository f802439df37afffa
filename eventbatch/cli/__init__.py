"""The ``eventbatch`` command line: parser and dispatch.

Where it sits: the user's edge. Intents typed here (submit a job, create a
queue) are validated by ``schemas.loaders`` and appended to the log; views
read the log. Each sub-command lives in its own module of this package.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from eventbatch import __version__
from eventbatch.app import install_uvloop
from eventbatch.logs import configure
from eventbatch.settings import Settings


def _parser() -> argparse.ArgumentParser:
    from eventbatch.cli import audit, compact, demo, events, intents, kube, nodes, replay, serve, simulate, trace, why

    parser = argparse.ArgumentParser(
        prog="eventbatch",
        description=(
            "Event-sourced batch scheduling for Kubernetes: Volcano-compatible jobs and "
            "queues, gang and fair-share scheduling, every decision on one ordered log."
        ),
    )
    parser.add_argument("--version", action="version", version=f"eventbatch {__version__}")
    parser.add_argument(
        "--log",
        dest="log_url",
        help="event log URL: sqlite://RELATIVE/PATH or sqlite:///ABSOLUTE/PATH (default "
        "sqlite://var/eventbatch/events.db), "
        "kafka://HOST:PORT/TOPIC, memory:// (env EVENTBATCH_LOG)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (env EVENTBATCH_LOG_LEVEL)")
    parser.add_argument("--log-format", choices=["text", "json"], help="env EVENTBATCH_LOG_FORMAT")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (simulate, demo, serve, intents, nodes, events, why, trace, replay, audit, compact, kube):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.log_url_given = bool(args.log_url or os.environ.get("EVENTBATCH_LOG"))
    try:
        settings = Settings.from_env(
            log_url=args.log_url, log_level=args.log_level, log_format=args.log_format
        )
    except ValueError as exc:
        parser.error(str(exc))
    configure(settings.log_level, settings.log_format)
    install_uvloop()
    try:
        return asyncio.run(args.run(args, settings)) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        sys.stderr.close()
        return 0
    except CliError as exc:
        print(f"eventbatch: error: {exc}", file=sys.stderr)
        return 2


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""
