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
from tests.contract.log_contract import ROOT, DurableEventLogContract, contiguous_batches, read_until

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
