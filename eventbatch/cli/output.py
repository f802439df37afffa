"""Output helpers for the CLI: aligned tables for people, JSON/YAML for machines."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import msgspec
import yaml

LIST_OUTPUTS = ["text", "wide", "json", "yaml"]
"""``-o`` of the list commands: a table, a wider table (kubectl's ``-o wide``: more columns), or data."""


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], out=None) -> None:
    out = out or sys.stdout
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def emit(data: object, fmt: str, out=None) -> None:
    """Write ``data`` (msgspec-encodable) as json or yaml."""
    out = out or sys.stdout
    plain = msgspec.to_builtins(data)
    if fmt == "yaml":
        out.write(yaml.safe_dump(plain, sort_keys=False))
    else:
        out.write(msgspec.json.format(msgspec.json.encode(plain), indent=2).decode() + "\n")
