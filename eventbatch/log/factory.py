"""Choose and build an ``EventLog`` backend from its URL.

Where it sits: called once by the composition root, the CLI and the tools
with the configured log URL; the rest of the system sees only the port.

- ``memory://`` — in-memory, for unit tests;
- ``sqlite:///abs/path/events.db`` (``sqlite://rel/path.db`` for a relative
  path), options ``synchronous`` (normal|full), ``poll_interval`` (seconds),
  ``busy_timeout`` (seconds), ``chunk`` (rows per read query);
- ``kafka://host:port[,host:port...]/topic``, options ``partitions`` (must be
  1: the order is total), ``replication``, ``max_batch_bytes``, ``poll_ms``,
  ``fetch_max_bytes``, ``compression`` (gzip|snappy|lz4|zstd, if installed),
  ``connect_timeout`` (seconds to wait for a broker at start, default 10).

A URL it cannot use (no scheme, an unknown one, an unknown option, a bad
value) raises ``LogUrlError`` before anything is opened. Only the default
log's directory (``var/eventbatch``) is created when missing; any other
SQLite log must be put in a directory that exists.

The log is returned unstarted: ``async with open_log(url) as log: ...``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from eventbatch.log.port import EventLog

DEFAULT_SQLITE_PATH = Path("var/eventbatch/events.db")  # the default log (eventbatch.settings), under the working directory
URL_FORMS = "memory://, sqlite:///ABSOLUTE/PATH, sqlite://RELATIVE/PATH or kafka://HOST:PORT/TOPIC"


class LogUrlError(ValueError):
    """A log URL that cannot be used; ``str()`` says why, in one line."""


def _at_least(low: float, kind: Callable[[str], Any] = int) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < low:
            raise ValueError(f"must be {'an integer' if kind is int else 'a number'} >= {low:g}, not {text!r}")
        return value

    return convert


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a number > 0, not {text!r}")
    return value


def _one_of(*names: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text.lower() not in names:
            raise ValueError(f"must be one of {', '.join(names)}, not {text!r}")
        return text.lower()

    return convert


_SQLITE_OPTIONS: dict[str, Callable[[str], Any]] = {
    "synchronous": str,  # SqliteLog checks it
    "poll_interval": _positive_float,
    "busy_timeout": _at_least(0, float),
    "chunk": _at_least(1),
}

_KAFKA_OPTIONS: dict[str, Callable[[str], Any]] = {
    "partitions": int,
    "replication": _at_least(1),
    "max_batch_bytes": _at_least(1),
    "poll_ms": _at_least(1),
    "fetch_max_bytes": _at_least(1),
    "compression": _one_of("gzip", "snappy", "lz4", "zstd"),
    "connect_timeout": _at_least(0, float),
}


def sqlite_path(url: str) -> Path:
    """The database file of a ``sqlite://`` URL: ``sqlite:///abs/path`` or ``sqlite://rel/path``."""
    rest = url.partition("://")[2].partition("?")[0]
    if not rest or rest == "/":
        raise LogUrlError(f"{url!r} names no database file (expected sqlite:///ABSOLUTE/PATH or sqlite://RELATIVE/PATH)")
    return Path("/" + rest.lstrip("/") if rest.startswith("/") else rest)


def sqlite_url(path: str | Path) -> str:
    """The URL of a database file, relative paths kept relative."""
    text = str(path)
    return f"sqlite:///{text.lstrip('/')}" if text.startswith("/") else f"sqlite://{text}"


def is_default_path(path: Path) -> bool:
    """Whether ``path`` is the default log's file (whose directory may be created)."""
    return os.path.abspath(path) == os.path.abspath(DEFAULT_SQLITE_PATH)


def open_log(url: str) -> EventLog:
    """The (unstarted) log the URL names; ``LogUrlError`` for a URL it cannot use."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise LogUrlError(f"not a log URL: {url!r} (expected {URL_FORMS})")
    rest, _, query = rest.partition("?")
    try:
        return _build(url, scheme, rest, query)
    except LogUrlError:
        raise
    except ValueError as exc:  # a backend refusing an option's value
        raise LogUrlError(f"{url!r}: {exc}") from None


def _build(url: str, scheme: str, rest: str, query: str) -> EventLog:
    if scheme == "memory":
        from eventbatch.log.memory import MemoryLog

        if rest:
            raise LogUrlError(f"{url!r}: memory:// names no path (expected memory://)")
        return MemoryLog(**_options(url, query, {"chunk": _at_least(1)}))
    if scheme == "sqlite":
        from eventbatch.log.sqlite import SqliteLog

        path = sqlite_path(url)
        return SqliteLog(str(path), create_dirs=is_default_path(path), **_options(url, query, _SQLITE_OPTIONS))
    if scheme == "kafka":
        from eventbatch.log.kafka import KafkaLog

        parts = urlsplit(url)
        topic = parts.path.strip("/")
        if not parts.netloc or not topic or "/" in topic:
            raise LogUrlError(f"{url!r} must name brokers and one topic: kafka://HOST:PORT/TOPIC")
        _check_brokers(url, parts.netloc.rpartition("@")[2])
        return KafkaLog(parts.netloc, topic, **_options(url, query, _KAFKA_OPTIONS))
    raise LogUrlError(f"unknown log scheme {scheme!r} in {url!r} (expected {URL_FORMS})")


def _check_brokers(url: str, brokers: str) -> None:
    """Every ``HOST:PORT`` names a host and a port from 1 to 65535."""
    for broker in brokers.split(","):
        host, colon, port = broker.rpartition(":")
        if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise LogUrlError(f"{url!r}: broker {broker!r} is not HOST:PORT (a port from 1 to 65535)")


def _options(url: str, query: str, known: dict[str, Callable[[str], Any]]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise LogUrlError(f"malformed options {query!r} in {url!r} (expected ?NAME=VALUE&NAME=VALUE)") from None
    for name, value in pairs:
        if name not in known:
            raise LogUrlError(f"unknown option {name!r} in {url!r} (known: {', '.join(sorted(known)) or 'none'})")
        try:
            options[name] = known[name](value)
        except ValueError as exc:
            raise LogUrlError(f"bad value for {name!r} in {url!r}: {exc}") from None
    return options
