"""Pre-flight: the log and the files beside it are checked before a command runs.

Where it sits: between parsing and dispatch in ``eventbatch.cli.main``. Each
command is declared as one that reads the log, writes it, or never opens it
(``ACCESS``, by command path; a command module may declare its own with
``set_defaults(log_access=...)``). Then, before the command does anything:

- the log URL is parsed for every command (``open_log``): a bad scheme,
  option or value is refused even by a command that does not open the log;
- ``EXISTING`` (reads, or acts on what was submitted): an SQLite log must
  already be there and be an eventbatch log. Nothing is created: not the
  log, its directory, its ``-wal``/``-shm``, nor the read models beside it;
- ``CREATE`` (serve, apply, job submit, queue create, node add, simulate,
  demo): an existing
  file must be a log (or empty), never someone else's file; a missing log
  is created in a directory that must exist, except the default log's
  ``var/eventbatch/``, which is made when the log is opened;
- a snapshot store is created by serve (in an existing directory) and must
  exist for compact and replay; a read-model store named with ``--views``
  or ``EVENTBATCH_VIEWS`` must be an SQLite file, in an existing directory;
- a damaged file is refused with what is wrong with it (``DamagedFile``),
  and left as it is: the log's header and length are checked for every
  command; every page of it (``PRAGMA quick_check``) before a command that
  reads it whole anyway (``serve``, ``replay``, a command whose read models
  are still to be built), so that such a command creates nothing from a
  log it cannot read; every page of the snapshot store and of the
  read-model store, which are small, whenever they are there;
- a scheduler conf (``--scheduler-conf``, ``EVENTBATCH_SCHEDULER_CONF``) must
  load, before a command that runs the handlers opens anything.

A Kafka log cannot be checked without a broker: ``KafkaLog.start`` reports
one it cannot reach. Every refusal is a ``LogOpenError`` or ``LogUrlError``
with a one-line message.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from eventbatch.log.errors import DamagedFile, ForeignFile
from eventbatch.log.factory import is_default_path, open_log, sqlite_path
from eventbatch.settings import Settings, SettingsError
from eventbatch.snapshots import store_path
from eventbatch.sqlitefile import LOG, SNAPSHOTS, Kind, require

EXISTING, CREATE, NONE = "existing", "create", "none"
ACCESS = {
    "serve": CREATE, "simulate": CREATE, "demo": CREATE,
    "apply": CREATE, "job submit": CREATE, "queue create": CREATE, "node add": CREATE,
    "job suspend": EXISTING, "job resume": EXISTING, "job restart": EXISTING, "job terminate": EXISTING,
    "job complete": EXISTING, "job delete": EXISTING, "queue operate": EXISTING, "queue delete": EXISTING,
    "node cordon": EXISTING, "node uncordon": EXISTING, "node drain": EXISTING, "node remove": EXISTING,
    "job list": EXISTING, "job view": EXISTING, "queue list": EXISTING, "queue get": EXISTING,
    "node list": EXISTING,
    "events tail": EXISTING, "why": EXISTING, "audit job": EXISTING, "audit queue": EXISTING,
    "replay": EXISTING, "compact": EXISTING,
    "schema events": NONE, "trace import": NONE, "crds": NONE, "kubelet-sim": NONE,
}
SNAPSHOT_ACCESS = {"serve": CREATE, "compact": EXISTING, "replay": EXISTING}
VIEWS = Kind(
    "read-model store", "an eventbatch read-model store", "tracking", frozenset({"view", "position"}),
    check_pages=True,
)
WHOLE_LOG = {"serve", "replay"}  # read the log from the start (or a snapshot) on every run
NO_VIEWS = {"serve", "simulate", "demo"}  # never open the read models of the log they are given
REBUILDS_VIEWS = {"replay"}  # replaces the read-model store with a new one: a damaged one is no obstacle
VIEWS_HINT = " (it holds read models only: `eventbatch replay` rebuilds them from an uncompacted log)"
NO_LOG_HINT = "; run `eventbatch serve` or pass --log"


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every runnable command as ``("job submit", its parser)``, aliases once."""
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield from commands(sub, (*path, name))
            return
    yield " ".join(path), parser


def declare(parser: argparse.ArgumentParser) -> None:
    """Give every command its path and log access (a command's own declaration wins)."""
    for path, command in commands(parser):
        access = command.get_default("log_access") or ACCESS.get(path, EXISTING)  # undeclared: never creates
        command.set_defaults(command_path=path, log_access=access)


def preflight(args: argparse.Namespace, settings: Settings) -> None:
    """Raise ``LogUrlError`` / ``LogOpenError`` if the command cannot use its files as asked."""
    open_log(settings.log_url)  # parses and checks the URL; opens nothing
    access = getattr(args, "log_access", EXISTING)
    if access == NONE:
        return
    command = getattr(args, "command_path", "")
    views = getattr(args, "views", None) or os.environ.get("EVENTBATCH_VIEWS")
    if settings.log_url.startswith("sqlite:"):
        path = sqlite_path(settings.log_url)
        beside = None if command in NO_VIEWS else _views_path(settings, views)
        whole = command in WHOLE_LOG or (beside is not None and not beside.exists())
        if access == EXISTING:
            require(path, LOG, must_exist=True, hint=NO_LOG_HINT, check_pages=whole)
        else:
            require(path, LOG, must_exist=False, create_dirs=is_default_path(path), check_pages=whole)
        if beside is not None and beside.exists():
            _require_views(beside, command, must_exist=True)
    if command in SNAPSHOT_ACCESS:
        snapshots = getattr(args, "snapshots", None) or (settings.snapshots if command != "replay" else "")
        if snapshots:
            try:
                snapshots = store_path(snapshots)
            except ValueError as exc:
                raise ForeignFile(str(exc)) from None
            require(snapshots, SNAPSHOTS, must_exist=SNAPSHOT_ACCESS[command] == EXISTING)
    if views and hasattr(args, "views"):
        _require_views(views, command, must_exist=False)
    _check_scheduler_conf(args, settings)


def _require_views(path: str | Path, command: str, *, must_exist: bool) -> None:
    kind = replace(VIEWS, check_pages=False) if command in REBUILDS_VIEWS else VIEWS
    try:
        require(path, kind, must_exist=must_exist)
    except DamagedFile as exc:
        raise DamagedFile(f"{exc}{VIEWS_HINT}") from None


def _views_path(settings: Settings, given: str | None):
    """Where the command's read models of this SQLite log are (``eventbatch.cli.views.views_path``)."""
    from eventbatch.cli.views import views_path

    return views_path(settings, given)


def _check_scheduler_conf(args: argparse.Namespace, settings: Settings) -> None:
    given = getattr(args, "scheduler_conf", None)
    path, name = (given, "--scheduler-conf") if given else (settings.scheduler_conf, "EVENTBATCH_SCHEDULER_CONF")
    if not path:
        return
    from handlers.scheduler.conf import load_conf_file

    try:
        load_conf_file(path)
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # ConfError, or a file that is not text
        raise SettingsError(f"{name}: {path}: {exc}") from None
