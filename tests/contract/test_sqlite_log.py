"""The log contract on the SQLite backend (``sqlite:///path``), plus what only it promises."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from tests.contract.log_contract import ROOT, DurableEventLogContract, contiguous_batches, read_all, read_until

WRITER = """
import asyncio, sys
from eventbatch.log.factory import open_log
from tests.contract.log_contract import writer_batch

async def main(url, writer, batches, size):
    async with open_log(url) as log:
        for b in range(batches):
            await log.append(writer_batch(writer, b, size))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


class TestSqliteLog(DurableEventLogContract):
    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path

    def create_log(self) -> EventLog:
        return open_log(f"sqlite://{self.directory}/events.db?poll_interval=0.01")


@pytest.mark.parametrize("size", [1, 50], ids=["single-events", "batches-of-50"])
async def test_two_writer_processes_share_one_file_and_a_follower_sees_both(tmp_path: Path, size: int) -> None:
    url = f"sqlite://{tmp_path}/events.db?poll_interval=0.01"
    batches = 40
    async with open_log(url) as log:
        follower = asyncio.create_task(read_until(log, 2 * batches * size))
        writers = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", WRITER, url, name, str(batches), str(size),
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=asyncio.subprocess.PIPE,
            )
            for name in ("writer-a", "writer-b")
        ]
        for writer in writers:
            _, err = await asyncio.wait_for(writer.communicate(), 60)
            assert writer.returncode == 0, err.decode()[-2000:]
        events = await follower

    assert [e.position for e in events] == list(range(2 * batches * size))
    runs = contiguous_batches(events)
    for name in ("writer-a", "writer-b"):
        assert [run[0] for run in runs[name]] == [f"b{b}" for b in range(batches)]
        assert all(run[1:] == list(range(run[1], run[1] + size)) for run in runs[name])


async def test_the_file_is_in_wal_mode_for_every_process(tmp_path: Path) -> None:
    async with open_log(f"sqlite://{tmp_path}/events.db?synchronous=full"):
        pass

    with sqlite3.connect(tmp_path / "events.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_unknown_synchronous_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of"):
        open_log(f"sqlite://{tmp_path}/events.db?synchronous=sometimes")


# --- a full disk ----------------------------------------------------------
#
# SQLite reports a full disk as SQLITE_FULL ("database or disk is full"),
# whether the file system ran out of space (a short write) or the file reached
# its page limit. Making a real file system full needs root, so these tests
# give the log's own write connection a page limit (``PRAGMA max_page_count``)
# at the file's current size: the append that needs a new page then fails in
# SQLite's pager exactly as on a full disk, with the same error, the same
# rollback by SQLite itself and the same way back up through the backend.


async def _fill_up(log: EventLog) -> int:
    """Stop the log's file from growing past its current size; returns that size in pages."""
    writer = log._writer  # the log's own connection: the page limit is per connection
    ((pages,),) = await writer.execute_fetchall("PRAGMA page_count")
    await writer.execute(f"PRAGMA max_page_count = {pages}")
    return pages


@pytest.mark.parametrize("size", [1, 200], ids=["one-event", "batch-of-200"])
async def test_a_full_disk_says_so_and_the_log_stays_whole(tmp_path: Path, size: int) -> None:
    from eventbatch.log.errors import StoreFull
    from tests.support.events import mixed_batch, pod_requested, wrap

    url = f"sqlite://{tmp_path}/events.db"
    before = mixed_batch("before", 50)
    async with open_log(url) as log:
        await log.append(before)
        pages = await _fill_up(log)
        big = [wrap(pod_requested("big", i, annotation_bytes=20_000)) for i in range(size)]
        with pytest.raises(StoreFull) as refused:
            await log.append(big)
        message = str(refused.value)
        assert "database or disk is full" in message and "the disk is full" in message, message
        assert str(tmp_path / "events.db") in message and "cannot rollback" not in message
        assert f"{size} record(s) not appended; the log is as it was" in message

        # Nothing of the refused batch is there; what was appended before reads back whole.
        assert await log.end_position() == len(before)
        assert [e.payload for e in await read_all(log)] == [e.payload for e in before]

        # Space again (the limit raised, as a disk with room again): appends work on the same handle.
        await log._writer.execute(f"PRAGMA max_page_count = {pages * 100}")
        assert await log.append(big) == list(range(len(before), len(before) + size))

    with sqlite3.connect(tmp_path / "events.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*), MAX(position) FROM events").fetchone() == (50 + size, 49 + size)
    conn.close()
    async with open_log(url) as log:
        assert [e.payload for e in await read_all(log)] == [e.payload for e in before + big]
