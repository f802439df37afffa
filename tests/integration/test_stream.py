"""``eventbatch.stream`` as another team's program uses it, on a real SQLite file and the real broker.

Following the log from a starting point (a position, a time, the end), filtering
by type and key, committing under a consumer group and resuming after a restart
(a new handle, as a new process has) with no event twice and none lost; and the
example program ``examples/consumers/python/wait_times.py`` against the report
``eventbatch simulate`` computes from the same log by its own code.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from contextlib import aclosing
from pathlib import Path

import pytest

from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from eventbatch.stream import Consumer, StreamError, open_consumer
from schemas.envelope import Envelope
from tests.support.events import RECORDED_AT, mixed_batch

ROOT = Path(__file__).resolve().parents[2]
WAIT_TIMES = ROOT / "examples" / "consumers" / "python" / "wait_times.py"
DEADLINE_S = 30.0

BACKENDS = ["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)]


@pytest.fixture(params=BACKENDS)
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    return f"kafka://{bootstrap}/eventbatch-test-{uuid.uuid4().hex[:12]}"


async def appended(url: str, batches: list[list[Envelope]]) -> list[Envelope]:
    """Append each batch through a handle of its own; the envelopes with their positions."""
    out: list[Envelope] = []
    async with open_log(url) as log:
        for batch in batches:
            positions = await log.append(batch)
            out += [envelope.at(position) for envelope, position in zip(batch, positions, strict=True)]
    return out


async def take(consumer: Consumer, count: int) -> list[Envelope]:
    """The next ``count`` events the consumer hands out, within the deadline."""
    got: list[Envelope] = []

    async def run() -> None:
        async with aclosing(consumer.events()) as events:
            async for envelope in events:
                got.append(envelope)
                if len(got) == count:
                    return

    await asyncio.wait_for(run(), DEADLINE_S)
    return got


async def everything(consumer: Consumer) -> list[Envelope]:
    return [envelope async for envelope in consumer]


def ids(events: list[Envelope]) -> list[tuple[int, str, str]]:
    return [(e.position, e.type, e.key) for e in events]


async def test_a_follower_gets_what_is_appended_after_it_began(log_url: str) -> None:
    history = await appended(log_url, [mixed_batch("old", 4)])
    async with open_consumer(log_url, start="end") as stream:
        assert await stream.begin() == 4
        follower = asyncio.create_task(take(stream, 10))
        later = await appended(log_url, [mixed_batch("new", 6), mixed_batch("newer", 4)])
        got = await follower
    assert ids(got) == ids(later)
    assert [e.position for e in history] == [0, 1, 2, 3]


async def test_filters_by_type_by_key_and_by_key_prefix(log_url: str) -> None:
    events = await appended(log_url, [mixed_batch("a", 9), mixed_batch("b", 9)])

    async def matching(**kwargs: object) -> list[Envelope]:
        async with open_consumer(log_url, follow=False, **kwargs) as stream:  # type: ignore[arg-type]  # the filter keywords
            return await everything(stream)

    bound = await matching(types={"PodBound"})
    assert ids(bound) == ids([e for e in events if e.type == "PodBound"])
    assert len(bound) == 6
    one_pod = events[4].key
    assert ids(await matching(keys={one_pod})) == ids([e for e in events if e.key == one_pod])
    of_b = await matching(types={"PodRequested", "PodStarted"}, key_prefix="ml-training/b-")
    assert ids(of_b) == ids([e for e in events if e.type in ("PodRequested", "PodStarted") and e.key.startswith("ml-training/b-")])
    assert len(of_b) == 6
    # What is handed out is the whole event, payload decoded
    assert all(e.payload.pod == e.key for e in of_b)  # type: ignore[attr-defined]  # pod events


async def test_a_group_resumes_where_it_committed_with_no_event_twice_and_none_lost(log_url: str) -> None:
    events = await appended(log_url, [mixed_batch("a", 12), mixed_batch("b", 18)])
    seen: list[Envelope] = []
    # The first run reads 12 events, commits after each, and stops (its process ends here).
    async with open_consumer(log_url, group="billing") as first:
        async with aclosing(first.events()) as stream:
            async for envelope in stream:
                seen.append(envelope)
                await first.commit()
                if len(seen) == 12:
                    break
    # A restart: a new handle, told to start from the beginning; the group's position wins.
    async with open_consumer(log_url, group="billing", start=0, follow=False) as second:
        rest = await everything(second)
        assert second.resumed
        assert await second.commit() == 30
    assert ids(seen + rest) == ids(events)
    assert [e.position for e in rest] == list(range(12, 30))

    # Later events go to the group's next run, and only those; another group starts on its own.
    more = await appended(log_url, [mixed_batch("c", 5)])
    async with open_consumer(log_url, group="billing", follow=False) as third:
        assert ids(await everything(third)) == ids(more)
    async with open_consumer(log_url, group="audit", follow=False) as other:
        assert len(await everything(other)) == 35
        assert not other.resumed


async def test_a_group_named_like_the_pipelines_own_positions_leaves_them_alone(log_url: str) -> None:
    await appended(log_url, [mixed_batch("a", 3)])
    async with open_log(log_url) as log:
        await log.set_consumer_position("writer", 1)
        consumer = Consumer(log, group="writer", follow=False)
        assert len(await everything(consumer)) == 3
        assert await consumer.commit() == 3
        assert await log.get_consumer_position("writer") == 1  # the fence's newest claim, untouched
        assert await log.get_consumer_position("stream.writer") == 3


async def test_a_filtered_group_commits_past_what_it_filtered_out(log_url: str) -> None:
    events = await appended(log_url, [mixed_batch("a", 10)])
    async with open_consumer(log_url, group="binds", types={"PodBound"}, follow=False) as first:
        got = await everything(first)
        assert await first.commit() == 10  # the records after the last PodBound were read too
    assert ids(got) == ids([e for e in events if e.type == "PodBound"])
    more = await appended(log_url, [mixed_batch("b", 6)])
    async with open_consumer(log_url, group="binds", types={"PodBound"}, follow=False) as second:
        assert ids(await everything(second)) == ids([e for e in more if e.type == "PodBound"])


async def test_starts_at_the_first_event_recorded_at_or_after_a_time(log_url: str) -> None:
    events = await appended(log_url, [mixed_batch("a", 10)])  # recorded at RECORDED_AT + 0..9
    async with open_consumer(log_url, since=RECORDED_AT + 7, follow=False) as stream:
        assert ids(await everything(stream)) == ids(events[7:])
    async with open_consumer(log_url, since=RECORDED_AT + 1000, follow=False) as stream:
        assert await stream.begin() == 10
        assert await everything(stream) == []


async def test_a_bad_request_is_refused_before_the_log_is_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    with pytest.raises(StreamError, match="unknown event type.*JobPhaseChange\\b"):
        async with open_consumer(url, types={"JobPhaseChange"}):
            pass
    assert not (tmp_path / "events.db").exists()
    log: EventLog = open_log(url)
    with pytest.raises(StreamError, match="0 or more"):
        Consumer(log, start=-1)
    async with log:
        await log.append(mixed_batch("a", 2))
        consumer = Consumer(log, follow=False)
        assert len(await everything(consumer)) == 2
        with pytest.raises(StreamError, match="needs a consumer group"):
            await consumer.commit()


# --- the example program ----------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env={**os.environ, **(env or {})}
    )


def simulated(log_url: str) -> dict[str, dict[str, float]]:
    """Run the fair-share example on ``log_url``; the wait percentiles its report computes."""
    result = run("-m", "eventbatch", "--log", log_url, "simulate", "--json", str(ROOT / "examples" / "fair-share.yaml"))
    assert result.returncode == 0, result.stderr
    waits: dict[str, dict[str, float]] = json.loads(result.stdout)["waits"]
    return waits


def wait_times(log_url: str, *args: str) -> dict[str, dict[str, int]]:
    result = run(str(WAIT_TIMES), "--log", log_url, "--json", *args)
    assert result.returncode == 0, result.stderr
    table: dict[str, dict[str, int]] = json.loads(result.stdout)
    return table


def as_report(table: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    return {q: {k: float(v) if k != "jobs" else v for k, v in row.items() if k != "waiting"} for q, row in table.items()}


@pytest.mark.slow
def test_the_wait_times_example_agrees_with_the_simulation_report(log_url: str) -> None:
    report = simulated(log_url)
    assert set(report) == {"batch", "research"} and report["research"]["p50"] != report["research"]["p90"]
    table = wait_times(log_url)
    assert as_report(table) == report
    assert all(row["waiting"] == 0 for row in table.values())
    assert as_report(wait_times(log_url, "--queue", "research")) == {"research": report["research"]}

    printed = run(str(WAIT_TIMES), "--log", log_url)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0].split() == ["QUEUE", "JOBS", "WAITING", "P50", "P90", "P99", "MAX"]
    assert lines[2].split() == ["research", "8", "0", "1.0s", "602.0s", "602.0s", "602.0s"]


def test_the_wait_times_example_refuses_a_missing_log_in_one_line(tmp_path: Path) -> None:
    result = run(str(WAIT_TIMES), "--log", f"sqlite:///{tmp_path}/none.db")
    assert result.returncode == 2
    assert result.stderr == f"wait_times: error: no log at {tmp_path}/none.db (pass --log)\n"
    assert list(tmp_path.iterdir()) == []
    bad = run(str(WAIT_TIMES), "--log", f"sqlite:///{tmp_path}/none.db", "--since", "yesterday")
    assert (bad.returncode, bad.stderr.count("\n")) == (2, 1)
    assert "not a time: 'yesterday'" in bad.stderr

