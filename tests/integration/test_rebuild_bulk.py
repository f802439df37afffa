"""A rebuild of an SQLite log reads the file in bulk and builds the same read models as the log's own read.

The log is a real simulation's, with what a bulk read must treat as the
log's fenced read does: a pipeline writer replaced by another whose stale
records (a queue's weight, a gang's waiting reason) must not be folded, an
event of a type this release does not know (counted and skipped) and an
undecodable record (quarantined); records over several lines, after a
space, or blank.
"""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path

import msgspec

from eventbatch.log import bulk_read
from eventbatch.log.codec import encode
from eventbatch.log.factory import open_log
from eventbatch.log.fence import fence_stats
from eventbatch.readmodels import ReadModelStore
from eventbatch.replay import rebuild
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from schemas.envelope import Envelope
from schemas.events import PodGroupUnschedulable, QueueCreated, WriterClaimed
from tests.integration.test_one_writer import queue
from tests.integration.test_readmodels import workload


def stamped(event, epoch: int, at: int) -> bytes:
    return encode(msgspec.structs.replace(Envelope.wrap(event, recorded_at=at), epoch=epoch))


async def fenced_log(tmp_path: Path) -> tuple[str, int, int]:
    """A simulation's log, then writer A's claim, B's claim, A's stale records, B's own, an
    unknown type and an undecodable record; returns the URL, A's stale batch's position and the end."""
    url = f"sqlite:///{tmp_path}/events.db"
    async with open_log(url) as log:
        [claim_a] = await log.append_raw([stamped(WriterClaimed(identity="a"), 0, 0)])
        await run_scenario(workload(tmp_path, jobs=8), log=log, settings=Settings())
        end = await log.end_position()
        [claim_b] = await log.append_raw([stamped(WriterClaimed(identity="b"), 0, 10**9)])
        a, b = claim_a + 1, claim_b + 1
        stale = await log.append_raw([
            stamped(QueueCreated(queue="ghost", manifest=queue("ghost", 7)), a, 10**9),
            stamped(PodGroupUnschedulable(podgroup="default/job-000", job="default/job-000", queue="research",
                                          reason="Stale", message="from the replaced writer"), a, 10**9),
        ])
        await log.append_raw([
            stamped(QueueCreated(queue="ghost", manifest=queue("ghost", 1)), b, 10**9),
            b'{"type":"EventOfALaterRelease","key":"k","recorded_at":1,"payload":{"type":"EventOfALaterRelease"}}',
            b'{"type":"PodGroupUnschedulable","key":',
            stamped(PodGroupUnschedulable(podgroup="default/job-001", job="default/job-001", queue="batch",
                                          reason="Late", message="from the live writer"), b, 10**9 + 1),
        ])
        assert end > 3 * 50  # several of the bulk reads' chunks below
        return url, stale[0], await log.end_position()


async def test_a_bulk_read_rebuild_equals_a_rebuild_through_the_log(tmp_path: Path) -> None:
    url, stale, end = await fenced_log(tmp_path)
    built = {}
    for bulk in (False, True):
        async with open_log(url) as log:
            assert bulk_read.reader_for(log) is not None  # an SQLite log: read in bulk unless told not to
            await rebuild(log, tmp_path / f"views-{bulk}.db", bulk=bulk)
            stats = fence_stats(log)
            seen = (stats.fenced, dict(stats.fenced_epochs), log.stats.unknown, dict(log.stats.unknown_types),
                    [(q.position, q.error) for q in await log.quarantined()])
            async with ReadModelStore(tmp_path / f"views-{bulk}.db", log=log) as store:
                built[bulk] = (await store.all_rows(), await store.position(), *seen)
    assert built[True] == built[False]
    rows, position, fenced, _, unknown, unknown_types, quarantined = built[True]
    assert position == end - 1
    assert fenced == 2 and unknown == 1 and unknown_types == {"EventOfALaterRelease": 1}
    assert [p for p, _ in quarantined] == [end - 2]
    assert {r.name: r.weight for r in rows["queue_view"]}["ghost"] == 1  # not the replaced writer's 7
    waiting = {r.name: r.unschedulable for r in rows["podgroup_view"]}
    assert not any("Stale" in reason for reason in waiting.values())
    assert stale > 0


async def test_a_bulk_read_hands_on_what_the_fenced_read_does_whatever_its_chunks(tmp_path: Path) -> None:
    url, stale, end = await fenced_log(tmp_path)
    async with open_log(url) as log:
        expected = [item async for chunk in log.read_records(0) for item in chunk]
    assert stale not in {p for p, _ in expected} and len(expected) == end - 2
    for start in (0, 5, stale - 1):
        for size in (7, 50, 16_384):
            async with open_log(url) as log:
                async with aclosing(bulk_read.read_records(log, start, end, chunk=size)) as chunks:
                    got = [item async for chunk in chunks for item in chunk]
                assert got == [item for item in expected if item[0] >= start], (start, size)
                assert fence_stats(log).fenced == sum(1 for p in (stale, stale + 1) if p >= start)


async def odd_log(tmp_path: Path) -> tuple[str, int]:
    """A simulation's log, then records that are not one JSON object alone on a line: one written
    over several lines, one with a space before it, one that looks like an object but is none,
    and a blank one."""
    url = f"sqlite:///{tmp_path}/events.db"
    async with open_log(url) as log:
        await run_scenario(workload(tmp_path, jobs=8), log=log, settings=Settings())
        weight = msgspec.json.format(stamped(QueueCreated(queue="wide", manifest=queue("wide", 5)), 0, 10**9), indent=2)
        assert b"\n" in weight
        spaced = stamped(QueueCreated(queue="spaced", manifest=queue("spaced", 3)), 0, 10**9)
        await log.append_raw([weight, b" " + spaced, b'{"type": }', b" "])
        return url, await log.end_position()


async def test_records_over_several_lines_or_blank_are_read_and_folded_as_the_log_reads_them(tmp_path: Path) -> None:
    url, end = await odd_log(tmp_path)
    async with open_log(url) as log:
        expected = [item async for chunk in log.read_records(0) for item in chunk]
    assert [data for _, data in expected[-2:]] == [b'{"type": }', b" "]
    for size in (2, 50):
        async with open_log(url) as log:
            async with aclosing(bulk_read.read_records(log, 0, end, chunk=size)) as chunks:
                got = [item async for chunk in chunks for item in chunk]
        assert got == expected
    built = {}
    for bulk in (False, True):
        async with open_log(url) as log:
            await rebuild(log, tmp_path / f"views-{bulk}.db", bulk=bulk)
            seen = [(q.position, q.error) for q in await log.quarantined()]
            async with ReadModelStore(tmp_path / f"views-{bulk}.db", log=log) as store:
                built[bulk] = (await store.all_rows(), await store.position(), seen)
    assert built[True] == built[False]
    rows, position, quarantined = built[True]
    assert position == end - 1 and [p for p, _ in quarantined] == [end - 2, end - 1]
    weights = {r.name: r.weight for r in rows["queue_view"]}
    assert weights["wide"] == 5 and weights["spaced"] == 3
