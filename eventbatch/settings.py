"""Settings: every knob of the runtime, from flags and environment, in one place.

Where it sits: read once by the CLI, handed to the composition root
(``eventbatch.app``). Precedence: command-line flag, then ``EVENTBATCH_*``
environment variable, then the embedded default (SQLite log under ``./var``,
simulated cluster). ``redacted()`` is what may be logged: credentials inside
URLs are masked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

DEFAULT_LOG_URL = "sqlite://var/eventbatch/events.db"  # relative to the working directory

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@]*):(?P<secret>[^@/]*)@")


def redact_url(url: str) -> str:
    """``kafka://user:pw@host`` -> ``kafka://user:***@host``."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


@dataclass(frozen=True)
class Settings:
    log_url: str = DEFAULT_LOG_URL
    cluster: str = "sim"
    scheduler_conf: str = ""  # path to a Volcano scheduler conf; empty = default conf
    log_level: str = "INFO"
    log_format: str = "text"  # "text" | "json"
    debounce_ms: int = 50
    schedule_period_ms: int = 1000
    sim_startup_ms: int = 1000  # simulated kubelet: bind -> running
    snapshots: str = ""  # SQLite file of handler snapshots ("" = none: a restart replays the log)
    snapshot_every: int = 10_000  # events between two snapshots of each handler

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Defaults, then ``EVENTBATCH_<FIELD>`` variables, then non-None overrides (flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        env_names = {"log_url": "EVENTBATCH_LOG"}
        for f in fields(cls):
            raw = environ.get(env_names.get(f.name, f"EVENTBATCH_{f.name.upper()}"))
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    def redacted(self) -> dict[str, object]:
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["log_url"] = redact_url(self.log_url)
        return out


def _coerce(name: str, raw: str, kind: object) -> object:
    if kind in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"EVENTBATCH_{name.upper()}: expected an integer, got {raw!r}") from None
    return raw
