"""The SQLite log checkpoints its WAL as it goes: the -wal file stays bounded however much is appended.

An append runs on the event loop's thread when the write lock is free, so the
log turns SQLite's checkpoint-at-commit off for its write connection and runs
a passive checkpoint on its write thread every ``CHECKPOINT_BYTES`` instead.
Were that checkpoint missing, the WAL would hold every record ever appended.
"""

from __future__ import annotations

from eventbatch.log.factory import open_log
from eventbatch.log.sqlite import CHECKPOINT_BYTES


async def test_the_wal_stays_bounded_while_records_pile_up(tmp_path):
    path = tmp_path / "log.db"
    record = b'{"blob":"' + b"x" * 60_000 + b'"}'
    batches = 6 * CHECKPOINT_BYTES // (len(record) * 20) + 1
    async with open_log(f"sqlite:///{path}") as log:
        for _ in range(batches):
            await log.append_raw([record] * 20)
        appended = batches * 20 * len(record)
        wal = path.with_name(path.name + "-wal").stat().st_size
        assert appended > 5 * CHECKPOINT_BYTES
        assert wal < 2.5 * CHECKPOINT_BYTES, f"the WAL holds {wal} bytes after {appended} appended"
        assert await log.end_position() == batches * 20
