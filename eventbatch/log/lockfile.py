"""The lock beside an SQLite log that lets one pipeline write it at a time.

Where it sits: taken by the composition root (``eventbatch.app.open_pipeline``)
before ``eventbatch serve`` claims an SQLite log. It is an exclusive
``flock`` on ``<log>.lock`` (``events.db`` -> ``events.db.lock``), held for the
life of the process: the kernel drops it when the process ends in any way,
SIGKILL included, so a lock is never left behind by a crash. The file holds
the holder's pid, for the message a second ``serve`` gets. The file itself
stays (removing it would let two processes lock two different files).

Only pipelines take it: ``serve``, and ``simulate`` and ``demo`` on their
own fresh log (``eventbatch.log.sole_writer``). The commands that append requests (``apply``,
``job submit``, ``queue create``, ...) do not, and keep working while
``serve`` runs.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path

from eventbatch.log.errors import LogOpenError

log = logging.getLogger(__name__)


class WriterBusy(LogOpenError, ValueError):
    """Another pipeline holds the log; ``str()`` is the one-line refusal (exit 2)."""


def lock_path(log_path: str | Path) -> Path:
    return Path(f"{log_path}.lock")


class WriterLock:
    def __init__(self, log_path: str | Path, url: str, *, command: str = "serve") -> None:
        self.path = lock_path(log_path)
        self.url = url
        self.command = command  # what holds it, for the message another one gets
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True if this process holds it now."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {self.command}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the process holding the lock ('?' if it wrote none yet)."""
        return self._holder()[0]

    def _holder(self) -> tuple[str, str]:
        try:
            pid, _, command = self.path.read_text().strip().partition(" ")
        except OSError:
            return "?", "serve"
        return (pid if pid.isdigit() else "?"), (command if command.isalpha() else "serve")

    def refusal(self) -> WriterBusy:
        pid, command = self._holder()
        if self.command != "serve":
            return WriterBusy(
                f"another eventbatch {command} (pid {pid}) is writing {self.url}; {self.command} needs a log "
                "of its own"
            )
        return WriterBusy(
            f"another eventbatch {command} (pid {pid}) is writing {self.url}; run one serve per log "
            "(or pass --standby to wait and take over when it stops)"
        )

    async def acquire(self, *, standby: bool = False, poll_s: float = 0.2) -> None:
        """Take the lock; if another process holds it, raise ``WriterBusy`` or, as a
        standby, wait until it is free (the holder stops or dies)."""
        if self.try_acquire():
            return
        if not standby:
            raise self.refusal()
        log.warning("standing by: another serve is writing the log", extra={"log": self.url, "pid": self.holder()})
        # A blocking flock in a thread could not be cancelled.
        while not self.try_acquire():  # noqa: ASYNC110 - flock has no async form and nothing to wait on: polled
            await asyncio.sleep(poll_s)
        log.warning("the log is free: taking over", extra={"log": self.url})

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock
