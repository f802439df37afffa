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
  ``connect_timeout`` (seconds to wait for a broker at start, default 10);
  security: ``security_protocol`` (PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL),
  ``sasl_mechanism`` (PLAIN|SCRAM-SHA-256|SCRAM-SHA-512), the user and
  password in the URL's userinfo (``kafka://USER:PASSWORD@host:port/topic``)
  or ``sasl_username`` and ``sasl_password_file``, and ``ssl_cafile``,
  ``ssl_certfile``, ``ssl_keyfile`` (PEM files, checked here).

A URL it cannot use (no scheme, an unknown one, an unknown option, a bad
value) raises ``LogUrlError`` before anything is opened; its message shows
the URL with any password masked (``eventbatch.settings.redact_url``). Only
the default log's directory (``var/eventbatch``) is created when missing;
any other SQLite log must be put in a directory that exists.

The log is returned unstarted: ``async with open_log(url) as log: ...``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from eventbatch.log.port import EventLog
from eventbatch.settings import redact_url

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


def _synchronous(text: str) -> str:
    """``normal`` or ``full``: ``off`` could lose a batch whose append returned (docs/log.md)."""
    if text.lower() not in ("normal", "full"):
        raise ValueError(f"synchronous must be one of normal, full, not {text!r}")
    return text.lower()


_SQLITE_OPTIONS: dict[str, Callable[[str], Any]] = {
    "synchronous": _synchronous,
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
    "security_protocol": lambda text: _one_of("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")(text).upper(),
    "sasl_mechanism": lambda text: _one_of("plain", "scram-sha-256", "scram-sha-512")(text).upper(),
    "sasl_username": str,
    "sasl_password_file": str,
    "ssl_cafile": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
}
_SECURITY = ("security_protocol", "sasl_mechanism", "sasl_username", "sasl_password_file",
             "ssl_cafile", "ssl_certfile", "ssl_keyfile")


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
        raise LogUrlError(f"not a log URL: {redact_url(url)!r} (expected {URL_FORMS})")
    rest, _, query = rest.partition("?")
    try:
        return _build(redact_url(url), scheme, rest, query, url)
    except LogUrlError:
        raise
    except ValueError as exc:  # a backend refusing an option's value
        raise LogUrlError(f"{redact_url(url)!r}: {exc}") from None


def _build(url: str, scheme: str, rest: str, query: str, given: str) -> EventLog:
    """``url`` is the URL as it may be shown (passwords masked), ``given`` as it was given."""
    if scheme == "memory":
        from eventbatch.log.memory import MemoryLog

        if rest:
            raise LogUrlError(f"{url!r}: memory:// names no path (expected memory://)")
        return MemoryLog(**_options(url, query, {"chunk": _at_least(1)}))
    if scheme == "sqlite":
        from eventbatch.log.sqlite import SqliteLog

        path = sqlite_path(given)
        return SqliteLog(str(path), create_dirs=is_default_path(path), **_options(url, query, _SQLITE_OPTIONS))
    if scheme == "kafka":
        from eventbatch.log.kafka import KafkaLog

        parts = urlsplit(given)
        topic = parts.path.strip("/")
        if not parts.netloc or not topic or "/" in topic:
            raise LogUrlError(f"{url!r} must name brokers and one topic: kafka://HOST:PORT/TOPIC")
        userinfo, _, brokers = parts.netloc.rpartition("@")
        _check_brokers(url, brokers)
        options = _options(url, query, _KAFKA_OPTIONS)
        security = _kafka_security(url, userinfo, {k: options.pop(k) for k in _SECURITY if k in options})
        return KafkaLog(brokers, topic, **options, **security)
    raise LogUrlError(f"unknown log scheme {scheme!r} in {url!r} (expected {URL_FORMS})")


def _check_brokers(url: str, brokers: str) -> None:
    """Every ``HOST:PORT`` names a host and a port from 1 to 65535."""
    for broker in brokers.split(","):
        host, colon, port = broker.rpartition(":")
        if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise LogUrlError(f"{url!r}: broker {broker!r} is not HOST:PORT (a port from 1 to 65535)")


def _kafka_security(url: str, userinfo: str, given: dict[str, str]) -> dict[str, Any]:
    """The client's TLS and SASL settings from the URL: every file read, every combination checked."""
    user, colon, password = userinfo.partition(":")
    user, password = unquote(user), unquote(password)
    if user and "sasl_username" in given:
        raise LogUrlError(f"{url!r}: the user is given twice (in the URL and as sasl_username)")
    if colon and "sasl_password_file" in given:
        raise LogUrlError(f"{url!r}: the password is given twice (in the URL and as sasl_password_file)")
    user = user or given.get("sasl_username", "")
    if "sasl_password_file" in given:
        password = _read(url, "sasl_password_file", given["sasl_password_file"]).rstrip("\r\n")
    credentials = bool(user or password or colon)
    tls = [name for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if name in given]
    protocol = given.get("security_protocol", "PLAINTEXT")
    if "security_protocol" not in given and (credentials or "sasl_mechanism" in given):
        raise LogUrlError(
            f"{url!r}: a user, password or sasl_mechanism needs security_protocol=SASL_SSL "
            f"(or SASL_PLAINTEXT, which sends the password unencrypted)"
        )
    if protocol.startswith("SASL"):
        if not user or not password:
            raise LogUrlError(
                f"{url!r}: security_protocol={protocol} needs a user and a password "
                f"(kafka://USER:PASSWORD@HOST:PORT/TOPIC, or sasl_username= and sasl_password_file=)"
            )
    elif credentials or "sasl_mechanism" in given:
        raise LogUrlError(f"{url!r}: a user, password or sasl_mechanism needs security_protocol=SASL_SSL or SASL_PLAINTEXT")
    if tls and not protocol.endswith("SSL"):
        raise LogUrlError(f"{url!r}: {tls[0]} needs security_protocol=SSL or SASL_SSL")
    if "ssl_keyfile" in given and "ssl_certfile" not in given:
        raise LogUrlError(f"{url!r}: ssl_keyfile needs ssl_certfile (the client certificate)")
    security: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        security["ssl_context"] = _ssl_context(url, given)
    if protocol.startswith("SASL"):
        security.update(sasl_mechanism=given.get("sasl_mechanism", "PLAIN"), sasl_username=user, sasl_password=password)
    return security


def _read(url: str, name: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise LogUrlError(f"{url!r}: {name}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _ssl_context(url: str, given: dict[str, str]) -> Any:
    """A client TLS context: the CA to trust (default: the system's), the client certificate and key."""
    import ssl

    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if name in given:
            _read(url, name, given[name])
    try:
        context = ssl.create_default_context(cafile=given.get("ssl_cafile"))
        if "ssl_certfile" in given:
            context.load_cert_chain(given["ssl_certfile"], given.get("ssl_keyfile"))
    except (ssl.SSLError, OSError) as exc:
        raise LogUrlError(f"{url!r}: cannot use the TLS files: {' '.join(str(exc).split())}") from None
    return context


def _options(url: str, query: str, known: dict[str, Callable[[str], Any]]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise LogUrlError(f"malformed options {redact_url('?' + query)[1:]!r} in {url!r} (expected ?NAME=VALUE&NAME=VALUE)") from None
    for name, value in pairs:
        if name not in known:
            raise LogUrlError(f"unknown option {name!r} in {url!r} (known: {', '.join(sorted(known)) or 'none'})")
        try:
            options[name] = known[name](value)
        except ValueError as exc:
            raise LogUrlError(f"bad value for {name!r} in {url!r}: {exc}") from None
    return options
