"""``open_log`` picks the backend and its options from the log URL, and refuses what it cannot use;
a backend refuses, at start, a file that is not a log or a broker it cannot reach, in one line."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from eventbatch.log.errors import BrokerUnreachable, ForeignFile, MissingFile
from eventbatch.log.factory import LogUrlError, open_log
from eventbatch.log.kafka import KafkaLog
from eventbatch.log.memory import MemoryLog
from eventbatch.log.sqlite import SqliteLog


@pytest.mark.parametrize(
    "url, kind, attributes",
    [
        ("memory://", MemoryLog, {}),
        ("sqlite:///var/eventbatch/events.db", SqliteLog, {"url": "sqlite:///var/eventbatch/events.db"}),
        ("sqlite:////tmp/x/events.db", SqliteLog, {"url": "sqlite:///tmp/x/events.db"}),
        ("sqlite://data/events.db", SqliteLog, {"url": "sqlite://data/events.db"}),
        ("sqlite:///e.db?synchronous=full&poll_interval=0.2", SqliteLog, {"synchronous": "FULL", "poll_interval": 0.2}),
        ("kafka://k1:9092/events", KafkaLog, {"bootstrap": "k1:9092", "topic": "events"}),
        ("kafka://k1:9092,k2:9092/events?partitions=1&replication=3", KafkaLog,
         {"bootstrap": "k1:9092,k2:9092", "replication": 3, "url": "kafka://k1:9092,k2:9092/events"}),
        ("kafka://k1:9092/events?max_batch_bytes=1048576", KafkaLog, {"max_batch_bytes": 2**20}),
        ("kafka://k1:9092/events", KafkaLog, {"connect_timeout": 10.0}),
        ("kafka://[::1]:9092/events?connect_timeout=0.5", KafkaLog, {"connect_timeout": 0.5}),
        ("sqlite://var/eventbatch/events.db", SqliteLog, {"create_dirs": True}),
        ("sqlite://elsewhere/events.db", SqliteLog, {"create_dirs": False}),
    ],
    ids=["memory", "sqlite-absolute", "sqlite-four-slashes", "sqlite-relative", "sqlite-options",
         "kafka", "kafka-brokers", "kafka-batch-limit", "kafka-connect-default", "kafka-connect-timeout",
         "default-log-makes-its-directory", "other-log-does-not"],
)
def test_a_url_names_a_backend_and_its_options(url: str, kind: type, attributes: dict) -> None:
    log = open_log(url)

    assert isinstance(log, kind)
    assert {name: getattr(log, name) for name in attributes} == attributes


@pytest.mark.parametrize(
    "url, message",
    [
        ("events.db", "not a log URL"),
        ("postgres://db/events", "unknown log scheme"),
        ("sqlite://", "names no database file"),
        ("sqlite:///e.db?fsync=always", "unknown option 'fsync'"),
        ("sqlite:///e.db?poll_interval=soon", "bad value for 'poll_interval'"),
        ("kafka://k1:9092", "must name brokers and one topic"),
        ("kafka://k1:9092/a/b", "must name brokers and one topic"),
        ("kafka://k1:9092/events?partitions=3", "needs one partition"),
        ("sqlite:/events.db", "not a log URL"),
        ("sqlite:///e.db?synchronous", "malformed options"),
        ("sqlite:///e.db?chunk=0", "'chunk'.*must be an integer >= 1"),
        ("sqlite:///e.db?poll_interval=nan", "'poll_interval'.*must be a number > 0"),
        ("sqlite:///e.db?busy_timeout=-1", "'busy_timeout'.*>= 0"),
        ("memory://?chunk=0", "'chunk'"),
        ("memory://somewhere", "memory:// names no path"),
        ("kafka://k1/events", "broker 'k1' is not HOST:PORT"),
        ("kafka://k1:99999/events", "broker 'k1:99999' is not HOST:PORT"),
        ("kafka://k1:9092/events?compression=rar", "'compression'.*must be one of gzip"),
        ("kafka://k1:9092/events?connect_timeout=soon", "'connect_timeout'"),
    ],
    ids=["no-scheme", "unknown-scheme", "sqlite-no-path", "unknown-option", "bad-value",
         "kafka-no-topic", "kafka-two-topics", "kafka-partitions", "one-slash", "option-without-value",
         "chunk-zero", "poll-nan", "busy-negative", "memory-chunk-zero", "memory-path", "kafka-no-port",
         "kafka-port-range", "kafka-compression", "kafka-connect-timeout"],
)
def test_a_url_it_cannot_use_is_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(LogUrlError, match=message) as caught:
        open_log(url)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


def _files(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "notes.txt"
    text.write_text("not a log\n")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    conn.close()
    folder = tmp_path / "folder"
    folder.mkdir()
    return {"text": text, "other": other, "folder": folder}


def _state(root: Path) -> dict[str, tuple]:
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.parametrize(
    ("name", "message"),
    [("text", "is not an eventbatch log \\(not an SQLite database\\)"),
     ("other", "is not an eventbatch log \\(an SQLite database with tables accounts but no 'events'\\)"),
     ("folder", "is a directory, not an eventbatch log")],
    ids=["text-file", "other-database", "directory"],
)
async def test_a_file_that_is_not_a_log_is_refused_and_left_as_it_was(tmp_path: Path, name: str, message: str) -> None:
    path = _files(tmp_path)[name]
    before = _state(tmp_path)
    threads = threading.active_count()
    with pytest.raises(ForeignFile, match=message):
        async with open_log(f"sqlite://{path}"):
            pass
    assert _state(tmp_path) == before  # not written, no -wal or -shm beside it
    assert threading.active_count() == threads  # no connection left open to hold the process


async def test_a_log_in_a_missing_directory_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    with pytest.raises(MissingFile, match="no directory .*/no/such"):
        async with open_log(f"sqlite://{tmp_path}/no/such/events.db"):
            pass
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 - the test's own check, after the log is closed


async def test_the_default_log_makes_its_directory_and_an_empty_file_becomes_a_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_log("sqlite://var/eventbatch/events.db") as log:
        assert await log.append([]) == []
    assert (tmp_path / "var" / "eventbatch" / "events.db").is_file()
    (tmp_path / "empty.db").touch()
    async with open_log("sqlite://empty.db") as log:
        assert await log.end_position() == 0


async def test_an_unreachable_broker_is_retried_for_the_connect_timeout_then_named(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(BrokerUnreachable) as caught:
        async with open_log("kafka://127.0.0.1:1/events?connect_timeout=0.6"):
            pass
    seconds = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith("cannot reach Kafka broker 127.0.0.1:1: ") and "in 0.6s" in message
    assert "\n" not in message
    assert 0.6 <= seconds < 3
    assert int(message.split(" attempt(s)")[0].rsplit("(", 1)[1]) > 1  # retried, not given up at once


async def test_a_broker_that_comes_up_within_the_timeout_is_waited_for() -> None:
    """The first attempts find nothing listening; a later one connects (then the fake broker hangs up)."""
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    attempts: list[float] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(time.monotonic())
        writer.close()

    async def start_late() -> asyncio.Server:
        await asyncio.sleep(0.5)
        return await asyncio.start_server(hang_up, "127.0.0.1", port)

    late = asyncio.create_task(start_late())
    with pytest.raises(BrokerUnreachable):
        async with open_log(f"kafka://127.0.0.1:{port}/events?connect_timeout=1.5"):
            pass
    server = await late
    server.close()
    await server.wait_closed()
    assert attempts, "no attempt reached the broker once it listened"

