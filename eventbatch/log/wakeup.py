"""Wake-ups across processes for the SQLite log: a follower learns of another process's append at once.

Where it sits: under ``eventbatch.log.sqlite.SqliteLog``. Every append through
that backend sets the log file's modification time, to the nanosecond, right
after its transaction has committed (``sqlite.touch``). A handle with a
follower waiting at the tail watches the file with inotify (``FileWatch``,
through the ``asyncinotify`` library): the change of the file's attributes
wakes its followers, which then read the log as they would after a poll. The
wake-up changes only *when* a follower looks, never what it reads: the
reader's range query decides that, as before.

- The signal comes after the commit, so a woken follower always finds the
  append; a change it was woken for and did not need (its own handle's
  append, which woke it already) costs one ``stat``.
- Where inotify is not there (not Linux, no inotify instance left, the file
  replaced under the watch) or a writer that is not this backend appends
  (the ``sqlite3`` shell), nothing breaks: followers poll every
  ``poll_interval``, as they always do besides.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class FileWatch:
    """Calls ``on_touch(mtime_ns)`` each time ``path``'s attributes change (``None``
    if the file could not be read then), until ``close()``."""

    def __init__(self, path: Path, on_touch: Callable[[int | None], None]) -> None:
        from asyncinotify import Inotify, Mask  # Linux only: ``watch`` falls back to polling elsewhere

        self.path = path
        self._on_touch = on_touch
        self._ignored = Mask.IGNORED
        self._inotify = Inotify()
        try:
            self._inotify.add_watch(path, Mask.ATTRIB)
        except BaseException:
            self._inotify.close()
            raise
        self._task = asyncio.ensure_future(self._run())
        # The descriptor is closed only once the reading task has let go of it.
        self._task.add_done_callback(lambda _: self._inotify.close())

    async def _run(self) -> None:
        try:
            async for event in self._inotify:
                if self._ignored in event.mask:  # the file was removed or replaced: polling from now on
                    return
                try:
                    modified = os.stat(self.path).st_mtime_ns
                except OSError:
                    modified = None
                self._on_touch(modified)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed watch must not stop a follower: it polls
            log.debug("watching %s failed: %s", self.path, exc)

    @property
    def watching(self) -> bool:
        return not self._task.done()

    def close(self) -> None:
        self._task.cancel()


def watch(path: Path, on_touch: Callable[[int | None], None]) -> FileWatch | None:
    """A ``FileWatch`` on ``path``, or None where the platform or the system's limits allow none."""
    try:
        return FileWatch(path, on_touch)
    except (ImportError, OSError, AttributeError) as exc:
        log.debug("no wake-ups for %s (followers poll): %s", path, exc)
        return None
