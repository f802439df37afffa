"""Settings precedence and log hygiene: flags over environment over defaults,
and no credential ever reaches a log line."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from eventbatch.log.errors import ForeignFile, MissingFile
from eventbatch.log.factory import sqlite_path, sqlite_url
from eventbatch.logs import JsonFormatter, TextFormatter, configure
from eventbatch.settings import DEFAULT_LOG_URL, Settings, SettingsError, redact_url
from eventbatch.snapshots import ComponentSnapshot, SnapshotStore, store_path


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
    with pytest.raises(SettingsError, match="EVENTBATCH_DEBOUNCE_MS: expected an integer, got 'soon'"):
        Settings.from_env({"EVENTBATCH_DEBOUNCE_MS": "soon"})


@pytest.mark.parametrize(
    ("env", "flags", "message"),
    [
        ({"EVENTBATCH_LOG_LEVEL": "LOUD"}, {}, "EVENTBATCH_LOG_LEVEL: expected one of DEBUG, INFO"),
        ({}, {"log_level": "LOUD"}, "--log-level: expected one of DEBUG"),
        ({"EVENTBATCH_LOG_FORMAT": "xml"}, {}, "EVENTBATCH_LOG_FORMAT: expected one of text, json"),
        ({"EVENTBATCH_CLUSTER": "k8s"}, {}, "EVENTBATCH_CLUSTER: expected one of sim, kube, none"),
        ({"EVENTBATCH_DEBOUNCE_MS": "-5"}, {}, "EVENTBATCH_DEBOUNCE_MS: expected an integer >= 0, got -5"),
        ({"EVENTBATCH_SNAPSHOT_EVERY": "0"}, {}, "EVENTBATCH_SNAPSHOT_EVERY: expected an integer >= 1"),
        ({"EVENTBATCH_SNAPSHOTS": "kafka://k:9092/s"}, {}, "EVENTBATCH_SNAPSHOTS: .* not kafka://"),
        ({"EVENTBATCH_SNAPSHOTS": "sqlite:///s.db?x=1"}, {}, "EVENTBATCH_SNAPSHOTS: .* takes no options"),
    ],
    ids=["level-env", "level-flag", "format", "cluster", "negative-ms", "snapshot-every-zero",
         "snapshots-scheme", "snapshots-options"],
)
def test_a_setting_that_cannot_be_used_is_named_in_one_line(env: dict, flags: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env(env, **flags)
    assert "\n" not in str(caught.value)


def test_levels_are_case_insensitive_and_configure_refuses_an_unknown_one() -> None:
    assert Settings.from_env({"EVENTBATCH_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(SettingsError, match="log level"):
        configure("LOUD")


@pytest.mark.parametrize(
    ("given", "path"),
    [("var/snap.db", "var/snap.db"), ("sqlite:///srv/x/snap.db", "/srv/x/snap.db"),
     ("sqlite:////srv/x/snap.db", "/srv/x/snap.db"), ("sqlite://rel/snap.db", "rel/snap.db")],
    ids=["path", "url-absolute", "url-four-slashes", "url-relative"],
)
def test_a_snapshot_store_is_a_path_or_an_sqlite_url(given: str, path: str) -> None:
    assert store_path(given) == path
    assert Settings.from_env({"EVENTBATCH_SNAPSHOTS": given}).snapshots == path
    assert SnapshotStore(given).path == path


async def test_a_snapshot_store_url_never_makes_a_directory_named_after_its_scheme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with SnapshotStore(f"sqlite:///{tmp_path}/snap.db") as store:
        await store.save(ComponentSnapshot("h", 3, {"a": 1}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.db"]  # noqa: ASYNC240 - after the store is closed
    async with SnapshotStore(f"sqlite://{tmp_path}/snap.db") as store:
        assert (await store.load("h")).position == 3


async def test_a_snapshot_store_is_refused_in_a_missing_directory_or_on_another_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFile, match="no directory"):
        async with SnapshotStore(tmp_path / "no" / "snap.db"):
            pass
    text = tmp_path / "notes.txt"
    text.write_text("mine\n")
    with pytest.raises(ForeignFile, match="is not an eventbatch snapshot store"):
        async with SnapshotStore(text):
            pass
    assert text.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # noqa: ASYNC240 - after the refusal


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
