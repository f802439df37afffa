"""Choose and build an ``EventLog`` backend from its URL.

Where it sits: called once by the composition root, the CLI and the tools
with the configured log URL; the rest of the system sees only the port.

- ``memory://`` — in-memory, for unit tests;
- ``sqlite:///abs/path/events.db`` (``sqlite://rel/path.db`` for a relative
  path), options ``synchronous`` (normal|full), ``poll_interval`` (seconds),
  ``busy_timeout`` (seconds), ``chunk`` (rows per read query);
- ``kafka://host:port[,host:port...]/topic``, options ``partitions`` (must be
  1: the order is total), ``replication``, ``max_batch_bytes``, ``poll_ms``,
  ``fetch_max_bytes``, ``compression`` (gzip|snappy|lz4|zstd, if installed).

The log is returned unstarted: ``async with open_log(url) as log: ...``.
"""

from __future__ import annotations

from pathlib import Path

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from eventbatch.log.port import EventLog

_SQLITE_OPTIONS: dict[str, Callable[[str], Any]] = {
    "synchronous": str,
    "poll_interval": float,
    "busy_timeout": float,
    "chunk": int,
}

_KAFKA_OPTIONS: dict[str, Callable[[str], Any]] = {
    "partitions": int,
    "replication": int,
    "max_batch_bytes": int,
    "poll_ms": int,
    "fetch_max_bytes": int,
    "compression": str,
}


def sqlite_path(url: str) -> Path:
    """The database file of a ``sqlite://`` URL: ``sqlite:///abs/path`` or ``sqlite://rel/path``."""
    rest = url.partition("://")[2].partition("?")[0]
    if not rest or rest == "/":
        raise ValueError(f"{url!r} names no database file (expected sqlite:///PATH)")
    return Path("/" + rest.lstrip("/") if rest.startswith("/") else rest)


def sqlite_url(path: str | Path) -> str:
    """The URL of a database file, relative paths kept relative."""
    text = str(path)
    return f"sqlite:///{text.lstrip('/')}" if text.startswith("/") else f"sqlite://{text}"


def open_log(url: str) -> EventLog:
    """The (unstarted) log the URL names; ``ValueError`` for a URL it cannot use."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a log URL: {url!r} (expected memory://, sqlite:///PATH or kafka://HOST:PORT/TOPIC)")
    rest, _, query = rest.partition("?")
    if scheme == "memory":
        from eventbatch.log.memory import MemoryLog

        return MemoryLog(**_options(url, query, {"chunk": int}))
    if scheme == "sqlite":
        from eventbatch.log.sqlite import SqliteLog

        return SqliteLog(str(sqlite_path(url)), **_options(url, query, _SQLITE_OPTIONS))
    if scheme == "kafka":
        from eventbatch.log.kafka import KafkaLog

        parts = urlsplit(url)
        topic = parts.path.strip("/")
        if not parts.netloc or not topic or "/" in topic:
            raise ValueError(f"{url!r} must name brokers and one topic: kafka://HOST:PORT/TOPIC")
        return KafkaLog(parts.netloc, topic, **_options(url, query, _KAFKA_OPTIONS))
    raise ValueError(f"unknown log scheme {scheme!r} in {url!r} (expected memory, sqlite or kafka)")


def _options(url: str, query: str, known: dict[str, Callable[[str], Any]]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
        if name not in known:
            raise ValueError(f"unknown option {name!r} in {url!r} (known: {', '.join(sorted(known)) or 'none'})")
        try:
            options[name] = known[name](value)
        except ValueError as exc:
            raise ValueError(f"bad value for {name!r} in {url!r}: {exc}") from None
    return options
