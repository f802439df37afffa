"""The ``eventbatch`` command line: parser and dispatch.

Where it sits: the user's edge. Intents typed here (submit a job, create a
queue) are validated by ``schemas.loaders`` and appended to the log; views
read the log. Each sub-command lives in its own module of this package.

Every user error ends the same way: one line ``eventbatch: error: ...`` on
stderr and exit status 2, before the command has created or changed
anything. That covers argparse's own errors (``Parser``), settings
(``SettingsError``), log URLs (``LogUrlError``), the pre-flight checks of the
log and the files beside it (``eventbatch.cli.logcheck``), a log or broker
that cannot be opened (``LogOpenError``), a read from a position the log no
longer holds (``LogTruncated``), a path the user gave that the file system
refuses (missing, exists, not a directory, permission), an unusable
kubeconfig, and a command's ``CliError``. Other exceptions are bugs and keep
their traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from typing import NoReturn

from eventbatch import __version__
from eventbatch.app import install_uvloop
from eventbatch.log.codec import FormatError
from eventbatch.log.errors import LogOpenError
from eventbatch.log.factory import LogUrlError
from eventbatch.log.port import LogTruncated
from eventbatch.logs import configure
from eventbatch.settings import Settings, SettingsError


class Parser(argparse.ArgumentParser):
    """argparse, with each error on one line that names the problem and the help to read."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"eventbatch: error: {_one_line(message)} (see `{self.prog} --help`)\n")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _parser() -> argparse.ArgumentParser:
    from eventbatch.cli import (
        audit,
        compact,
        completion,
        demo,
        events,
        intents,
        kube,
        nodes,
        replay,
        serve,
        simulate,
        trace,
        ui,
        why,
    )
    from eventbatch.cli.logcheck import declare

    parser = Parser(
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
        "sqlite://var/eventbatch/events.db; only its directory is created, any other must exist), "
        "kafka://HOST:PORT/TOPIC, memory:// (env EVENTBATCH_LOG)",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR, CRITICAL (env EVENTBATCH_LOG_LEVEL)")
    parser.add_argument("--log-format", choices=["text", "json"], help="env EVENTBATCH_LOG_FORMAT")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (simulate, demo, serve, intents, nodes, events, why, trace, replay, audit, compact, kube, completion, ui):
        module.register(commands)
    declare(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from eventbatch.cli.logcheck import preflight

    parser = _parser()
    args = parser.parse_args(argv)
    args.log_url_given = bool(args.log_url or os.environ.get("EVENTBATCH_LOG"))
    try:
        settings = Settings.from_env(
            log_url=args.log_url, log_level=args.log_level, log_format=args.log_format
        )
        preflight(args, settings)
        configure(settings.log_level, settings.log_format)
        install_uvloop()
        return asyncio.run(args.run(args, settings)) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        sys.stderr.close()
        return 0
    except (SettingsError, LogUrlError, LogOpenError, LogTruncated, FormatError) as exc:
        return _user_error(_one_line(str(exc)))
    except CliError as exc:
        return _user_error(str(exc))
    except _PATH_ERRORS as exc:  # e.g. crds --output-dir naming a file
        return _user_error(f"{exc.filename}: {exc.strerror}" if exc.filename else _one_line(str(exc)))
    except ExceptionGroup as group:  # serve's tasks: a damaged log met by one of them is still one line
        user, rest = group.split((SettingsError, LogUrlError, LogOpenError, LogTruncated, FormatError, CliError))
        if user is None or rest is not None:
            raise
        first: BaseException = user
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        return _user_error(_one_line(str(first)))
    except Exception as exc:
        if not _kubeconfig_error(exc):
            raise
        return _user_error(f"kubeconfig: {_one_line(str(exc))}")


_PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def _kubeconfig_error(exc: Exception) -> bool:
    """A kubeconfig the Kubernetes client cannot use (only if the client was loaded at all)."""
    module = sys.modules.get("kubernetes_asyncio.config.config_exception")
    return module is not None and isinstance(exc, module.ConfigException)


def _user_error(message: str) -> int:
    """Print the error; exit 2 at once if a file or connection left open would hold the process."""
    print(f"eventbatch: error: {message}", file=sys.stderr)
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)  # e.g. an SQLite connection's thread, never closed on the way out: a hang otherwise
    return 2


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""
