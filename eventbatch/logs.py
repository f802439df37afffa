"""Structured logging for every eventbatch process.

Where it sits: configured once by the CLI from ``Settings``. ``json`` gives one
JSON object per line (time, level, logger, message and any ``extra=`` fields);
``text`` is for people. Values whose key looks secret (password, token, key,
secret, credentials) are masked, and credentials inside URLs are redacted
(``eventbatch.settings.redact_url``) in the message, in every ``extra=``
value (nested ones too) and in a traceback, whatever the format. An unknown level or format is a ``SettingsError``
(``Settings.from_env`` refuses it before this is called).
"""

from __future__ import annotations

import json
import logging
import re
import sys

from eventbatch.settings import LOG_FORMATS, LOG_LEVELS, SettingsError, redact_url

_SECRET_KEY = re.compile(r"(pass(word)?|token|secret|private[_-]?key|credential|api[_-]?key)", re.I)
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def _clean(key: str, value: object) -> object:
    if _SECRET_KEY.search(key):
        return "***"
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean("", v) for v in value]
    return value


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: _clean(k, v) for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_url(record.getMessage()),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = redact_url(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{record.levelname:<7} {record.name}: {redact_url(record.getMessage())}"
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        text = f"{base} {extras}" if extras else base
        if record.exc_info:
            text += "\n" + redact_url(self.formatException(record.exc_info))
        return text


def configure(level: str = "INFO", fmt: str = "text") -> None:
    if level.upper() not in LOG_LEVELS:
        raise SettingsError(f"log level: expected one of {', '.join(LOG_LEVELS)}, got {level!r}")
    if fmt not in LOG_FORMATS:
        raise SettingsError(f"log format: expected one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
