"""Settings: every knob of the runtime, from flags and environment, in one place.

Where it sits: read once by the CLI, handed to the composition root
(``eventbatch.app``). Precedence: command-line flag, then ``EVENTBATCH_*``
environment variable, then the embedded default (SQLite log under ``./var``,
simulated cluster). ``redacted()`` is what may be logged: credentials inside
URLs are masked. A value that cannot be used (an unknown level, format,
cluster or API groups, a malformed or negative number, a snapshot store given as a URL of
another scheme) raises ``SettingsError`` naming the variable or the flag, in
one line, before anything runs. The log URL itself is checked by
``eventbatch.log.factory.open_log``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

DEFAULT_LOG_URL = "sqlite://var/eventbatch/events.db"  # relative to the working directory
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
CLUSTERS = ("sim", "kube", "none")
# The API groups of the custom resources (eventbatch.kube.crds.groups): Volcano's own
# (batch/scheduling/bus/flow/topology.volcano.sh), where eventbatch replaces Volcano, or the project's
# (*.eventbatch.io), to run beside an installed Volcano. docs/kubernetes.md says why
# Volcano's are the default.
API_GROUPS = ("volcano", "eventbatch")
DEFAULT_API_GROUPS = "volcano"
_MINIMUM = {"snapshot_every": 1}  # other numbers are durations in ms, 0 or more

# userinfo up to the last "@" of the URL's authority (a password may hold "@", ":" or "/"
# that was not percent-encoded), and the value of any option named like a password
_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^\s]*?)@(?=[^@\s]*$|[^@\s?]*[/?])")
_SECRET_OPTION = re.compile(r"(?P<name>[?&][a-z_]*(?:pass(?:word)?|secret|token)[a-z_]*=)(?P<secret>[^&\s]*)", re.I)
MASK = "***"


def redact_url(url: str) -> str:
    """``kafka://user:pw@host/t`` -> ``kafka://user:***@host/t``; ``?sasl_password=pw`` -> ``?sasl_password=***``.

    Works on any text (a log line, an error message): every URL in it is
    masked. A password that was not percent-encoded is masked whole, up to
    the last ``@`` before the host, whatever it holds.
    """
    text = _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    return _SECRET_OPTION.sub(lambda m: f"{m['name']}{MASK}", text)


class SettingsError(ValueError):
    """A setting that cannot be used; ``str()`` names it and says why, in one line."""


@dataclass(frozen=True)
class Settings:
    log_url: str = DEFAULT_LOG_URL
    cluster: str = "sim"
    scheduler_conf: str = ""  # path to a Volcano scheduler conf; empty = default conf
    log_level: str = "INFO"
    log_format: str = "text"  # "text" | "json"
    debounce_ms: int = 50  # the longest a burst of events is gathered before a session
    min_debounce_ms: int = 2  # the shortest (the window follows the cost of the latest session)
    sim_startup_ms: int = 1000  # simulated kubelet: bind -> running
    snapshots: str = ""  # SQLite file of handler snapshots ("" = none: a restart replays the log)
    snapshot_every: int = 10_000  # events between two snapshots of each handler
    api_groups: str = DEFAULT_API_GROUPS  # "volcano" | "eventbatch": the groups served with --cluster kube

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, then ``EVENTBATCH_<FIELD>`` variables, then non-None overrides (flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        given: dict[str, str] = {}  # where each value came from, for the error message
        for f in fields(cls):
            name = env_name(f.name)
            raw = environ.get(name)
            if raw is not None and raw != "":
                values[f.name] = _coerce(name, raw, f.type)
                given[f.name] = name
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
                given[key] = f"--{key.replace('_', '-')}".replace("--log-url", "--log")
        return replace(cls(), **_checked(values, given))

    def redacted(self) -> dict[str, object]:
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["log_url"] = redact_url(self.log_url)
        return out


def env_name(field: str) -> str:
    """The environment variable of a setting: ``EVENTBATCH_LOG`` for the log URL, else ``EVENTBATCH_<FIELD>``."""
    return "EVENTBATCH_LOG" if field == "log_url" else f"EVENTBATCH_{field.upper()}"


def _coerce(name: str, raw: str, kind: object) -> object:
    if kind in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    return raw


def _checked(values: dict[str, object], given: dict[str, str]) -> dict[str, Any]:
    """``values`` normalised (level upper-cased, snapshot URL to its path), or ``SettingsError``.
    Each value is then of its field's type (Any: a dict cannot say so per key)."""
    from eventbatch.snapshots import store_path

    out = dict(values)

    def one_of(key: str, choices: tuple[str, ...], normal=str) -> None:
        if key in out:
            value = normal(out[key])
            if value not in choices:
                raise SettingsError(f"{given[key]}: expected one of {', '.join(choices)}, got {out[key]!r}")
            out[key] = value

    one_of("log_level", LOG_LEVELS, lambda v: str(v).upper())
    one_of("log_format", LOG_FORMATS)
    one_of("cluster", CLUSTERS)
    one_of("api_groups", API_GROUPS)
    for key, value in values.items():
        if isinstance(value, int) and value < _MINIMUM.get(key, 0):
            raise SettingsError(f"{given[key]}: expected an integer >= {_MINIMUM.get(key, 0)}, got {value}")
    if out.get("snapshots"):
        try:
            out["snapshots"] = store_path(str(out["snapshots"]))
        except ValueError as exc:
            raise SettingsError(f"{given['snapshots']}: {exc}") from None
    return out
