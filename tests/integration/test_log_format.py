"""A log written before requests and facts were split is refused, never misread.

``tests/fixtures/log-format-1.jsonl`` holds the records of a real run of
``examples/mpi.yaml`` by eventbatch 0.1 (log format 1), where a request such
as ``QueueCreated`` was folded as a fact. Read today, such a log would lose
every queue and job (no handler recorded the facts) or, worse, bring back
the old meaning; so every reader stops at its first format-1 record with a
message that says what the log is.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from eventbatch.log.codec import FormatError
from eventbatch.log.factory import open_log

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "log-format-1.jsonl"


def _recorded(path: Path) -> Path:
    async def load() -> None:
        async with open_log(f"sqlite:///{path}") as log:
            await log.append_raw(FIXTURE.read_bytes().splitlines())

    asyncio.run(load())
    return path


async def test_reading_an_old_log_stops_at_its_first_request(tmp_path: Path) -> None:
    path = await asyncio.to_thread(_recorded, tmp_path / "old.db")
    async with open_log(f"sqlite:///{path}") as log:
        seen = []
        with pytest.raises(FormatError) as caught:
            async for envelope in log.read(0):
                seen.append(envelope.type)
    assert caught.value.tag == "QueueCreated" and caught.value.position == 3
    assert seen == ["NodeAdded", "NodeAdded", "NodeAdded"]  # observations before it read as they were


@pytest.mark.parametrize(
    "args", [["events", "tail"], ["job", "list"], ["replay", "--verify"]], ids=["tail", "job-list", "verify"]
)
def test_every_command_says_what_the_log_is(tmp_path: Path, args: list[str]) -> None:
    path = _recorded(tmp_path / "old.db")
    before = path.read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", f"sqlite:///{path}", *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "log format 1" in lines[0] and "Traceback" not in result.stderr
    assert path.read_bytes() == before
