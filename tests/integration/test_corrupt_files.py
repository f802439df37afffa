"""A damaged SQLite file, met by the log backend and the stores beside it: one clear error, the file untouched, no hang.

Where it sits: the integration tests of ``eventbatch.log.sqlite`` and
``eventbatch.sqlitefile`` on real files. A healthy log is written through
the backend with real events, then damaged as files get damaged in use
(``tests.support.damage``): cut short, a header overwritten, a B-tree page
in the middle overwritten. Opening such a file, or reading into the damage
after it opened, raises ``DamagedFile`` naming the file and what SQLite
found; the file keeps every byte; the connections are closed and the
process can exit. A process that leaves a log open on its way out still
exits (a subprocess, with a deadline).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from eventbatch.log.errors import DamagedFile
from eventbatch.log.factory import open_log
from eventbatch.snapshots import ComponentSnapshot, SnapshotStore
from tests.contract.log_contract import ROOT, read_all
from tests.support.damage import bad_header, broken_btree_page, checksum, cut_at_a_page, cut_in_half
from tests.support.events import mixed_batch

EVENTS = 3_000  # about 1.5 MB of real events: a log of a few hundred pages
DEADLINE_S = 20


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real log of EVENTS events, closed cleanly (no -wal left)."""
    import asyncio

    path = tmp_path_factory.mktemp("healthy") / "events.db"

    async def write() -> None:
        async with open_log(f"sqlite://{path}") as log:
            for start in range(0, EVENTS, 500):
                await log.append(mixed_batch("train", 500, start=start))

    asyncio.run(write())
    assert not Path(f"{path}-wal").exists()
    return path.read_bytes()


def _sqlite_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]


def _place(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "events.db"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (cut_in_half, "is damaged: database disk image is malformed (truncated"),
        (cut_at_a_page, "is damaged: database disk image is malformed (truncated"),
        (bad_header, "is damaged: file is not a database (its header gives a page size of 3)"),
    ],
    ids=["cut-in-half", "cut-at-a-page", "bad-header"],
)
async def test_a_damaged_log_is_refused_at_start_and_left_as_it_is(
    tmp_path: Path, healthy: bytes, damage, expected: str
) -> None:
    path = _place(tmp_path, damage(healthy))
    before, threads = checksum(path), len(_sqlite_threads())
    log = open_log(f"sqlite://{path}")
    with pytest.raises(DamagedFile) as refused:
        await log.start()
    assert str(refused.value).startswith(str(path)) and expected in str(refused.value), refused.value
    assert "\n" not in str(refused.value)
    assert checksum(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.db"]  # noqa: ASYNC240 - after the refusal: no -wal, no -shm
    assert len(_sqlite_threads()) == threads


async def test_a_broken_page_met_by_a_read_names_the_file_and_the_position(tmp_path: Path, healthy: bytes) -> None:
    damaged, page = broken_btree_page(healthy)
    path = _place(tmp_path, damaged)
    before, threads = checksum(path), len(_sqlite_threads())
    seen = []
    with pytest.raises(DamagedFile) as refused:
        async with open_log(f"sqlite://{path}?chunk=100") as log:  # the header is fine: it opens
            assert await log.end_position() == EVENTS  # the rightmost pages are whole
            async for envelope in log.read(0):
                seen.append(envelope.position)
    message = str(refused.value)
    assert message.startswith(f"cannot read the log {path} from position ") and "\n" not in message
    assert "database disk image is malformed (the file is damaged)" in message
    assert 0 < len(seen) < EVENTS and seen == list(range(len(seen)))  # read up to the damage, in order
    assert f"from position {len(seen)}:" in message
    assert checksum(path) == before, f"page {page} was damaged; the rest must not change"
    assert len(_sqlite_threads()) == threads  # both connections closed on the way out


async def test_the_same_log_undamaged_reads_back_whole(tmp_path: Path, healthy: bytes) -> None:
    """The control: what the damaged copies are made from is a good log."""
    path = _place(tmp_path, healthy)
    async with open_log(f"sqlite://{path}") as log:
        assert [e.position for e in await read_all(log)] == list(range(EVENTS))


async def test_a_damaged_snapshot_store_is_refused_before_use(tmp_path: Path) -> None:
    path = tmp_path / "snapshots.db"
    async with SnapshotStore(path) as store:
        for i in range(200):  # several pages
            await store.save(ComponentSnapshot(name=f"handler-{i}", position=i, state={"n": "x" * 500}))
    damaged, _ = broken_btree_page(path.read_bytes())
    path.write_bytes(damaged)
    before = checksum(path)
    with pytest.raises(DamagedFile, match="database disk image is malformed"):
        async with SnapshotStore(path):
            pass
    assert checksum(path) == before


LEFT_OPEN = """
import asyncio, sys
from eventbatch.log.factory import open_log

async def main(url):
    log = open_log(url)
    await log.start()          # never stopped: its connections stay open
    raise RuntimeError("a bug on the way out")

asyncio.run(main(sys.argv[1]))
"""


def test_a_log_left_open_never_keeps_the_process_alive(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LEFT_OPEN, f"sqlite://{tmp_path}/events.db"],
        cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_S,
    )
    assert result.returncode == 1 and "RuntimeError: a bug on the way out" in result.stderr
