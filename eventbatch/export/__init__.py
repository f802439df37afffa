"""Export and import of the log: a range of records to a file, a file into an empty log.

Where it sits: beside the log backends (``eventbatch.log``), under the
``eventbatch events export`` / ``events import`` commands
(``eventbatch.cli.export``). A record leaves the log exactly as stored, with
its position, in one of two formats (``eventbatch.export.jsonl``,
``eventbatch.export.parquet``), and comes back the same bytes at the same
position, so that a log can move between backends (SQLite, Kafka) and other
teams' tools can read a range of it.

This module holds the formats' version and their error; what both formats
share (``Parts``, ``records``, ``Checker``, ...) is in
``eventbatch.export.common``, under this module's names, loaded on first use
(an export worker process needs none of it, nor the envelope's schemas it
loads).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventbatch.export.common import Checker, Parts, backend, rebuild, records, split, well_formed

__all__ = ["FORMAT_VERSION", "Checker", "ExportError", "Parts", "backend", "rebuild", "records", "split",
           "well_formed"]

FORMAT_VERSION = 1
"""The version of the export formats (Parquet schema metadata ``eventbatch.export``)."""


class ExportError(ValueError):
    """A file that cannot be imported, or a range that cannot be exported: one line saying why."""


def __getattr__(name: str) -> Any:
    """The names of ``eventbatch.export.common``, loaded on first use."""
    if name in __all__:
        from eventbatch.export import common

        return getattr(common, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
