"""The one contract every ``EventLog`` backend passes.

Where it sits: ``tests/contract/test_<backend>_log.py`` subclass
``EventLogContract`` and say how to create a fresh log (``create_log``) and
how to open a second handle on the same log (``reopen``, by default
``open_log(log.url)``). A backend is done when it passes every test here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog, LogTruncated
from schemas.envelope import Envelope
from tests.support.events import mixed_batch, node_added, pod_bound, pod_requested, wrap

ROOT = Path(__file__).resolve().parents[2]
GUARD = 60  # seconds; a hung follower fails the test instead of hanging the suite


async def read_until(log: EventLog, end: int, start: int = 0) -> list[Envelope]:
    """Follow the log from ``start`` until the event before ``end`` arrived."""
    events: list[Envelope] = []
    if end <= start:
        return events
    async with asyncio.timeout(GUARD), contextlib.aclosing(log.read(start, follow=True)) as reader:
        async for envelope in reader:
            events.append(envelope)
            if envelope.position >= end - 1:
                break
    return events


async def read_all(log: EventLog, start: int = 0) -> list[Envelope]:
    async with asyncio.timeout(GUARD):
        return [envelope async for envelope in log.read(start)]


def unknown_record(tag: str) -> bytes:
    """A well-formed record of an event type this build does not know."""
    return msgspec.json.encode(
        {"type": tag, "key": "default/teleporter", "recorded_at": 1, "payload": {"type": tag, "to": "mars"}}
    )


def contiguous_batches(events: list[Envelope]) -> dict[str, list[list[int]]]:
    """Per writer (the job of a PodBound), the positions of each batch it wrote."""
    runs: dict[str, list[list[int]]] = {}
    for envelope in events:
        writer, batch = envelope.payload.job, envelope.payload.rule
        batches = runs.setdefault(writer, [])
        if not batches or batches[-1][0] != batch:
            batches.append([batch])
        batches[-1].append(envelope.position)
    return runs


def writer_batch(writer: str, batch: int, size: int) -> list[Envelope]:
    """A batch whose events say who wrote them and in which batch (``rule``)."""
    return [
        wrap(msgspec.structs.replace(pod_bound(writer, batch * size + i), job=writer, rule=f"b{batch}"))
        for i in range(size)
    ]


class EventLogContract:
    """Subclass with ``create_log``; override ``reopen`` if ``open_log(log.url)`` won't do."""

    def create_log(self) -> EventLog:
        """A fresh, empty, unstarted log."""
        raise NotImplementedError

    def reopen(self, log: EventLog) -> EventLog:
        """A second, unstarted handle on the same log (another writer or reader)."""
        return open_log(log.url)

    @pytest.fixture
    async def log(self) -> AsyncIterator[EventLog]:
        log = self.create_log()
        async with log:
            yield log

    @pytest.fixture
    async def other(self, log: EventLog) -> AsyncIterator[EventLog]:
        other = self.reopen(log)
        async with other:
            yield other

    # --- order and positions ----------------------------------------------

    async def test_positions_are_consecutive_from_zero_in_append_order(self, log: EventLog) -> None:
        batches = [mixed_batch("resnet", 1), mixed_batch("bert", 3), mixed_batch("gpt", 2)]
        positions = [await log.append(batch) for batch in batches]

        assert positions == [[0], [1, 2, 3], [4, 5]]
        assert await log.end_position() == 6
        read = await read_all(log)
        expected = [envelope.at(p) for batch, ps in zip(batches, positions, strict=True) for envelope, p in zip(batch, ps, strict=True)]
        assert read == expected
        assert log.stats.appended == 6

    @pytest.mark.parametrize("start", [0, 1, 4, 7, 8, 20], ids=lambda s: f"from-{s}")
    async def test_read_from_any_position(self, log: EventLog, start: int) -> None:
        batch = mixed_batch("resnet", 8)
        await log.append(batch)

        read = await read_all(log, start)

        assert [e.position for e in read] == list(range(start, 8))
        assert read == [e.at(i) for i, e in enumerate(batch)][start:]

    async def test_truncating_drops_the_prefix_and_keeps_every_position(self, log: EventLog, other: EventLog) -> None:
        await log.append([wrap(node_added(i)) for i in range(10)])
        assert await log.start_position() == 0
        assert await log.truncate(6) == 6
        assert await other.start_position() == 6
        assert [e.position for e in await read_all(other, 6)] == [6, 7, 8, 9]
        assert [item[0] async for chunk in other.read_records(7) for item in chunk] == [7, 8, 9]
        with pytest.raises(LogTruncated, match="starts at 6"):
            await read_all(other, 0)
        assert await log.append([wrap(node_added(10))]) == [10]
        assert await other.end_position() == 11

    async def test_truncating_keeps_the_last_record_so_positions_are_never_given_twice(self, log: EventLog) -> None:
        await log.append([wrap(node_added(i)) for i in range(5)])
        assert await log.truncate(100) == 4
        assert [e.position for e in await read_all(log, 4)] == [4]
        assert await log.append([wrap(node_added(5))]) == [5]

    async def test_empty_batch_appends_nothing(self, log: EventLog) -> None:
        await log.append(mixed_batch("resnet", 2))

        assert await log.append([]) == []

        assert await log.end_position() == 2
        assert await log.append([wrap(node_added(1))]) == [2]
        assert [e.position for e in await read_all(log)] == [0, 1, 2]

    async def test_a_fresh_log_is_empty(self, log: EventLog) -> None:
        assert await log.end_position() == 0
        assert await read_all(log) == []
        assert await log.quarantined() == []

    # --- large payloads -----------------------------------------------------

    async def test_a_one_mebibyte_event_round_trips(self, log: EventLog) -> None:
        big = wrap(pod_requested("llama", 0, annotation_bytes=2**20))
        small = wrap(pod_bound("llama", 0))

        assert await log.append([big, small]) == [0, 1]

        assert await read_all(log) == [big.at(0), small.at(1)]

    async def test_a_five_thousand_event_batch_is_one_batch(self, log: EventLog) -> None:
        await log.append([wrap(node_added(0))])
        batch = mixed_batch("sweep", 5000)

        positions = await log.append(batch)

        assert positions == list(range(1, 5001))
        read = await read_all(log, 1)
        assert read == [e.at(p) for e, p in zip(batch, positions, strict=True)]

    # --- atomic batches ---------------------------------------------------------

    async def test_two_writers_batches_stay_contiguous(self, log: EventLog, other: EventLog) -> None:
        batches, size = 20, 25

        async def write(handle: EventLog, writer: str) -> list[list[int]]:
            return [await handle.append(writer_batch(writer, b, size)) for b in range(batches)]

        got_a, got_b = await asyncio.gather(write(log, "writer-a"), write(other, "writer-b"))

        events = await read_all(log)
        assert len(events) == 2 * batches * size
        assert [e.position for e in events] == list(range(2 * batches * size))
        runs = contiguous_batches(events)
        for writer, returned in (("writer-a", got_a), ("writer-b", got_b)):
            assert [run[0] for run in runs[writer]] == [f"b{b}" for b in range(batches)]
            assert [run[1:] for run in runs[writer]] == returned
            assert all(ps == list(range(ps[0], ps[0] + size)) for ps in returned)

    async def test_a_reader_never_ends_inside_a_batch(self, log: EventLog, other: EventLog) -> None:
        batches, size = 30, 40
        done = asyncio.Event()

        async def write() -> None:
            for b in range(batches):
                await other.append(writer_batch("writer", b, size))
            done.set()

        writer = asyncio.create_task(write())
        seen_ends: list[int] = []
        position = 0
        async with asyncio.timeout(GUARD):
            while True:
                finished = done.is_set()
                end = await log.end_position()
                chunk = await read_all(log, position)
                seen_ends += [end, position + len(chunk)]
                position += len(chunk)
                if finished and position == batches * size:
                    break
                await asyncio.sleep(0)
        await writer

        assert all(end % size == 0 for end in seen_ends), sorted(set(e for e in seen_ends if e % size))

    # --- tail-follow -------------------------------------------------------------

    async def test_a_follower_sees_a_concurrent_writer_in_order(self, log: EventLog, other: EventLog) -> None:
        batches, size = 10, 7
        follower = asyncio.create_task(read_until(log, batches * size))

        written = []
        for b in range(batches):
            batch = mixed_batch("stream", size, start=b * size)
            positions = await other.append(batch)
            written += [e.at(p) for e, p in zip(batch, positions, strict=True)]
            await asyncio.sleep(0)

        assert await follower == written

    async def test_a_follower_waiting_at_the_tail_ends_when_the_log_stops(self) -> None:
        log = self.create_log()
        await log.start()
        await log.append(mixed_batch("tail", 2))
        seen: list[int] = []
        caught_up = asyncio.Event()

        async def follow() -> None:
            async for envelope in log.read(0, follow=True):
                seen.append(envelope.position)
                if len(seen) == 2:
                    caught_up.set()

        follower = asyncio.create_task(follow())
        async with asyncio.timeout(GUARD):
            await caught_up.wait()
            await log.stop()
            await follower

        assert seen == [0, 1]

    async def test_a_follower_from_beyond_the_end_waits_for_that_position(self, log: EventLog, other: EventLog) -> None:
        await log.append(mixed_batch("early", 3))
        reader = log.read(5, follow=True)
        with pytest.raises(TimeoutError):  # nothing before position 5 exists for it
            await asyncio.wait_for(anext(reader), 0.5)
        await reader.aclose()
        follower = asyncio.create_task(read_until(log, 8, start=5))

        first = await other.append(mixed_batch("late", 2, start=3))
        second = mixed_batch("late", 3, start=5)
        await other.append(second)

        assert first == [3, 4]
        assert await follower == [e.at(5 + i) for i, e in enumerate(second)]

    async def test_a_cancelled_follower_ends_even_while_events_arrive(self, log: EventLog, other: EventLog) -> None:
        """Cancelling the task of a follower always ends it, whatever it was waiting for."""
        for round_ in range(20):
            got_one = asyncio.Event()

            async def follow(got_one: asyncio.Event = got_one) -> None:
                async for _ in log.read(await log.end_position(), follow=True):
                    got_one.set()

            follower = asyncio.create_task(follow())
            async with asyncio.timeout(GUARD):
                while not got_one.is_set():
                    await other.append([wrap(node_added(round_))])
                    await asyncio.sleep(0.001 * (round_ % 3))
                await (log if round_ % 2 else other).append([wrap(node_added(round_))])
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)
            assert follower.cancelled()

    # --- consumer positions ---------------------------------------------------

    async def test_consumer_positions_are_named_and_overwritten(self, log: EventLog, other: EventLog) -> None:
        assert await log.get_consumer_position("scheduler") is None

        await log.set_consumer_position("scheduler", 41)
        await log.set_consumer_position("job-controller", 7)
        await log.set_consumer_position("scheduler", 42)

        assert await log.get_consumer_position("scheduler") == 42
        assert await log.get_consumer_position("job-controller") == 7
        assert await other.get_consumer_position("scheduler") == 42
        assert await other.get_consumer_position("queue-controller") is None

    # --- records this build cannot use --------------------------------------

    async def test_an_unknown_event_type_is_skipped_and_counted(self, log: EventLog) -> None:
        first, last = wrap(node_added(1)), wrap(node_added(2))
        await log.append([first])
        assert await log.append_raw([unknown_record("PodTeleported"), unknown_record("PodTeleported")]) == [1, 2]
        await log.append([last])

        read = await read_all(log)

        assert read == [first.at(0), last.at(3)]
        assert log.stats.unknown == 2
        assert log.stats.unknown_types == {"PodTeleported": 2}
        assert await log.quarantined() == []

    @pytest.mark.parametrize(
        "record, error",
        [
            (b"\x00\xff not json", "envelope"),
            (b'{"type": "PodBound", "key": "k", "recorded_at": 1}', "envelope"),
            (b'{"type": "PodBound", "key": "k", "recorded_at": 1, "payload": {"type": "PodBound", "pod": 3}}',
             "payload PodBound"),
        ],
        ids=["not-json", "no-payload", "bad-payload"],
    )
    async def test_an_undecodable_record_is_quarantined_and_reading_goes_on(
        self, log: EventLog, record: bytes, error: str
    ) -> None:
        first, last = wrap(node_added(1)), wrap(node_added(2))
        await log.append([first])
        assert await log.append_raw([record]) == [1]
        await log.append([last])

        assert await read_all(log) == [first.at(0), last.at(2)]
        assert await read_all(log, 1) == [last.at(2)]

        (quarantined,) = await log.quarantined()
        assert (quarantined.position, quarantined.data) == (1, record)
        assert quarantined.error.startswith(error)
        assert log.stats.quarantined == 2
        assert log.stats.read == 3

    async def test_a_record_quarantined_by_two_readers_is_listed_once(self, log: EventLog, other: EventLog) -> None:
        await log.append([wrap(node_added(1))])
        await log.append_raw([b"{truncated"])

        assert len(await read_all(log)) == len(await read_all(other)) == 1
        await read_all(log)

        assert [q.position for q in await log.quarantined()] == [1]
        assert [q.position for q in await other.quarantined()] == [1]


class DurableEventLogContract(EventLogContract):
    """The contract of a backend that keeps its log beyond the process (SQLite, Kafka)."""

    async def test_consumer_positions_survive_a_process_restart(self, log: EventLog) -> None:
        await log.set_consumer_position("projection", 3)
        script = (
            "import asyncio, sys\n"
            "from eventbatch.log.factory import open_log\n"
            "async def main():\n"
            "    async with open_log(sys.argv[1]) as log:\n"
            "        await log.set_consumer_position('projection', 1234)\n"
            "        await log.set_consumer_position('auditor', 99)\n"
            "asyncio.run(main())\n"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, log.url,
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), GUARD)
        assert proc.returncode == 0, err.decode()[-2000:]

        reopened = self.reopen(log)
        async with reopened:
            assert await reopened.get_consumer_position("projection") == 1234
            assert await reopened.get_consumer_position("auditor") == 99
