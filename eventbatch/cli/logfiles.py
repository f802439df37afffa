"""A new log for each run of ``demo`` and ``simulate``; never an old one rewritten.

Where it sits: the command line, before a command that writes a whole log
of its own opens it. The rule every command keeps: none deletes, truncates
or rewrites a log, except ``compact``, which removes only what snapshots
cover. So a command that wants a log of its own takes a new file each run:

- without ``--log`` (or ``EVENTBATCH_LOG``): ``fresh_log`` claims the first
  free name of ``DIR/NAME.db``, ``DIR/NAME-2.db``, ``DIR/NAME-3.db`` ... by
  creating it exclusively (an empty file is an empty log), so an earlier
  run's log stays as it was and two runs at once never share a file. Read
  models left by a log of the same name that is gone are derived from a log
  that no longer exists: they are removed so the new log's are rebuilt;
- with an explicit log, ``require_empty`` refuses one that already holds
  events, in one line (exit status 2), before anything is appended.
"""

from __future__ import annotations

import os
from pathlib import Path

from eventbatch.cli import CliError
from eventbatch.log.factory import sqlite_url
from eventbatch.log.port import EventLog
from eventbatch.settings import redact_url

_SIDE = ("-wal", "-shm", "-journal")


def fresh_log(directory: Path, name: str) -> str:
    """The URL of a new, empty SQLite log file in ``directory``, claimed for this run."""
    directory.mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        path = directory / (f"{name}.db" if number == 1 else f"{name}-{number}.db")
        number += 1
        if any(Path(f"{path}{side}").exists() for side in _SIDE):
            continue  # what is left of a log that was being written: not ours
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        url = sqlite_url(path)
        _drop_stale_views(url)
        return url


def _drop_stale_views(url: str) -> None:
    """Read models kept for a log of this URL were built from a log that is gone."""
    if os.environ.get("EVENTBATCH_VIEWS"):
        return  # a store the user chose is theirs to manage
    from types import SimpleNamespace

    from eventbatch.cli.views import views_path

    views = views_path(SimpleNamespace(log_url=url))
    for suffix in ("", *_SIDE, ".rebuild", *(f".rebuild{side}" for side in _SIDE)):
        Path(f"{views}{suffix}").unlink(missing_ok=True)


async def require_empty(log: EventLog, command: str) -> None:
    """Refuse a log given with ``--log`` that already holds events: ``command`` writes a log of its own."""
    end = await log.end_position()
    if end > 0:
        raise CliError(
            f"{redact_url(log.url)} already holds {end:,} event(s); {command} writes a log of its own and does "
            f"not add to or rewrite one: give --log a new log, or leave --log out for a new file per run"
        )
