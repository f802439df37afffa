"""A real process running the echo handler over a log, killed on purpose.

Usage: python -m tests.integration.crash_worker LOG_URL [decide|append] [TRIGGER]
With a crash mode it SIGKILLs itself at trigger position TRIGGER: after
``decide`` returned but before the batch is appended, or right after the
append returned. Without one it catches up and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from eventbatch.log.factory import open_log
from eventbatch.runtime import HandlerRunner
from tests.integration.echo_handler import EchoHandler


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DieAfterDecide(EchoHandler):
    def __init__(self, trigger: int) -> None:
        super().__init__()
        self.trigger = trigger

    def decide(self, state, envelope):
        decisions = super().decide(state, envelope)
        if envelope.position == self.trigger:
            die()
        return decisions


async def main(url: str, mode: str | None, trigger: int | None) -> int:
    log = open_log(url)
    await log.start()
    handler = DieAfterDecide(trigger) if mode == "decide" else EchoHandler()
    if mode == "append":
        real_append = log.append

        async def append_then_die(batch):
            positions = await real_append(batch)
            if batch and batch[0].causation and batch[0].causation.position == trigger:
                die()
            return positions

        log.append = append_then_die  # type: ignore[method-assign]
    runner = HandlerRunner(handler=handler, log=log)
    await runner.catch_up()
    await log.stop()
    print(f"answered={runner.stats.triggers_answered} replayed={runner.stats.replayed_answers}")
    return 0


if __name__ == "__main__":
    url = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else None
    trigger = int(sys.argv[3]) if len(sys.argv) > 3 else None
    sys.exit(asyncio.run(main(url, mode, trigger)))
