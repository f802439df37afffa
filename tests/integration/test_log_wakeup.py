"""A follower of an SQLite log is woken by another process's append, not by its poll.

The followers here poll only every 60 s, so a record that reaches them within
the deadline (well under the poll interval) can only have come through the
wake-up (``eventbatch.log.wakeup``): the appending process sets the file's
time after its commit, and the following handle watches the file. The
records the follower reads are exactly what a plain read finds.
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import aclosing
from pathlib import Path

from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from tests.support.events import mixed_batch

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 60  # the fallback poll: far beyond every deadline below
DEADLINE_S = 20  # bounds the wait for a process to start, import and append (well under POLL_S)

QUEUE = """\
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: woken}
spec: {weight: 1}
"""


async def next_record(events, deadline: float) -> Envelope:
    async with asyncio.timeout(deadline):
        return await anext(events)


async def test_a_follower_wakes_on_an_append_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with open_log(f"sqlite://{path}") as log:
        await log.append(mixed_batch("before", 3))
    manifest = tmp_path / "queue.yaml"
    manifest.write_text(QUEUE)
    async with open_log(f"sqlite://{path}?poll_interval={POLL_S}") as follower:
        async with aclosing(follower.read(0, follow=True)) as events:
            for _ in range(3):
                await next_record(events, DEADLINE_S)
            # The follower now waits at the tail: a 60 s poll away from its next look.
            waiting = asyncio.ensure_future(next_record(events, DEADLINE_S))
            await asyncio.sleep(0)
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "eventbatch", "--log", f"sqlite://{path}", "apply", "-f", str(manifest),
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            woken = await waiting
    assert woken.position == 3 and woken.type == "QueueCreateRequested"
    assert woken.payload.queue == "woken"


async def test_appends_through_other_handles_wake_a_follower_every_time(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    batches = [mixed_batch(f"job-{i}", 1 + i % 3) for i in range(8)]
    async with open_log(f"sqlite://{path}") as writer, open_log(f"sqlite://{path}?poll_interval={POLL_S}") as follower:
        seen: list[Envelope] = []
        async with aclosing(follower.read(0, follow=True)) as events:
            for batch in batches:
                await writer.append(batch)  # another handle: only the file tells the follower
                for _ in batch:
                    seen.append(await next_record(events, DEADLINE_S))
        assert [e.payload for e in seen] == [e.payload for batch in batches for e in batch]
        assert [e.position for e in seen] == list(range(sum(map(len, batches))))
        async with aclosing(follower.read(0)) as again:
            assert [e async for e in again] == seen  # what it was woken for is what a plain read finds


async def test_a_second_handle_in_one_process_keeps_the_first_ones_appends_visible(tmp_path: Path) -> None:
    """Opening a second handle on a log this process has open does not drop the first one's
    locks: another process opening and closing a connection meanwhile cannot take the WAL
    away, and what the first handle appends afterwards is seen by every other process."""
    path = tmp_path / "events.db"
    count = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('SELECT COUNT(*) FROM events').fetchone()[0]); c.close()"

    async def counted_elsewhere() -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", count, str(path), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        return int(out)

    async with open_log(f"sqlite://{path}") as first:
        await first.append(mixed_batch("before", 3))
        async with open_log(f"sqlite://{path}") as second:
            assert await counted_elsewhere() == 3  # another process opens and closes the log
            await first.append(mixed_batch("after", 3))
            assert await counted_elsewhere() == 6
            assert await second.end_position() == 6


async def test_handles_started_together_in_one_process_keep_seeing_another_process(tmp_path: Path) -> None:
    """Two handles on one log starting at the same time in one process (a reader and an
    observer, say) check the file once between them: a check while the other's connections
    are open would drop their locks, and another process closing a connection could then
    take the WAL away under this process, which would never see that process's appends."""
    path = tmp_path / "events.db"
    async with open_log(f"sqlite://{path}") as setup:
        await setup.append(mixed_batch("setup", 3))
    append = (
        "import asyncio, sys\n"
        "from eventbatch.log.factory import open_log\n"
        "from tests.support.events import mixed_batch\n"
        "async def main():\n"
        "    for i in range(4):\n"
        "        async with open_log(sys.argv[1]) as log:\n"
        "            await log.append(mixed_batch(f'p{i}', 2))\n"
        "asyncio.run(main())\n"
    )
    for _ in range(12):  # the race is in the starts: give it several chances
        one, two = open_log(f"sqlite://{path}"), open_log(f"sqlite://{path}")
        await asyncio.gather(one.start(), two.start())
        try:
            before = await one.end_position()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", append, f"sqlite://{path}", cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)}
            )
            assert await process.wait() == 0
            assert await one.end_position() == before + 8 and await two.end_position() == before + 8
        finally:
            await one.stop()
            await two.stop()
