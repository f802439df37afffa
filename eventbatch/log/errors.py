"""Why a log, or a file kept beside it, cannot be opened or used as asked.

Where it sits: raised by the backends (``eventbatch.log.sqlite``,
``eventbatch.log.kafka``), the snapshot store and the command line's
pre-flight checks (``eventbatch.cli.logcheck``, ``eventbatch.sqlitefile``);
the command line prints the message as one line and exits 2. Each message
names the file or the broker and says what is wrong with it, so it is fit
for a user as it stands. ``DamagedFile`` and ``StoreFull`` can also come
later, from a read or an append on a file that opened well.
"""

from __future__ import annotations


class LogOpenError(Exception):
    """A log or store that cannot be opened as asked; ``str()`` is one line for the user."""


class MissingFile(LogOpenError):
    """The file is not there (and must be), or its directory is not (and will not be made)."""


class ForeignFile(LogOpenError):
    """The path holds something else: a directory, a text file, another program's database."""


class BrokerUnreachable(LogOpenError):
    """No Kafka broker answered within the connect timeout."""


class DamagedFile(LogOpenError):
    """An SQLite file that is damaged: truncated, a broken header or page, not a database after all."""


class StoreFull(LogOpenError):
    """An append refused because the disk (or the file's size limit) is full; nothing of it was written."""
