"""Settings precedence and log hygiene: flags over environment over defaults,
and no credential ever reaches a log line."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from eventbatch.log.factory import sqlite_path, sqlite_url
from eventbatch.logs import JsonFormatter, TextFormatter
from eventbatch.settings import DEFAULT_LOG_URL, Settings, redact_url


def test_defaults_are_the_embedded_ones() -> None:
    settings = Settings.from_env({})
    assert settings.log_url == DEFAULT_LOG_URL
    assert sqlite_path(settings.log_url) == Path("var/eventbatch/events.db")  # under the working directory
    assert settings.cluster == "sim"


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {"EVENTBATCH_LOG": "kafka://k:9092/events", "EVENTBATCH_DEBOUNCE_MS": "5"}
    assert Settings.from_env(env).log_url == "kafka://k:9092/events"
    assert Settings.from_env(env).debounce_ms == 5
    assert Settings.from_env(env, log_url="memory://").log_url == "memory://"
    assert Settings.from_env(env, log_url=None).log_url == "kafka://k:9092/events"


def test_a_malformed_number_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="EVENTBATCH_DEBOUNCE_MS: expected an integer, got 'soon'"):
        Settings.from_env({"EVENTBATCH_DEBOUNCE_MS": "soon"})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("kafka://svc:s3cret@broker:9092/events", "kafka://svc:***@broker:9092/events"),
        ("sqlite:///var/events.db", "sqlite:///var/events.db"),
        ("kafka://broker:9092/events", "kafka://broker:9092/events"),
    ],
    ids=["password", "no-credentials", "host-port"],
)
def test_urls_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert Settings(log_url=url).redacted()["log_url"] == shown


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_log_lines_never_carry_secrets(formatter: logging.Formatter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("eventbatch.test.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "connecting to kafka://svc:hunter2@broker:9092/t",
            extra={"sasl_password": "hunter2", "api_token": "tok-123", "position": 42},
        )
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "hunter2" not in line and "tok-123" not in line
    assert "42" in line and "svc:***@broker" in line
    if isinstance(formatter, JsonFormatter):
        entry = json.loads(line)
        assert entry["position"] == 42 and entry["sasl_password"] == "***"


@pytest.mark.parametrize(
    ("path", "url"),
    [("var/events.db", "sqlite://var/events.db"), ("/tmp/x/events.db", "sqlite:///tmp/x/events.db")],
    ids=["relative", "absolute"],
)
def test_sqlite_urls_keep_relative_paths_relative(path: str, url: str) -> None:
    assert sqlite_url(path) == url
    assert sqlite_path(url) == Path(path)
