"""Reading the log to its tail, for every runtime component that folds it.

Where it sits: shared by the handler runner, the timer service and the
scheduling trigger. ``read_to_tail`` feeds each envelope from ``start`` to the
tail (including events appended while it reads, e.g. by the consumer itself)
to ``on_event`` and returns the next position to read from. Unknown and
quarantined records are skipped by the log and still move the position on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing

from eventbatch.log.port import EventLog
from schemas.envelope import Envelope


async def read_to_tail(
    log: EventLog, start: int, on_event: Callable[[Envelope], Awaitable[None] | None]
) -> int:
    position = start
    while True:
        end = await log.end_position()
        if position >= end:
            return position
        async with aclosing(log.read(position)) as events:
            async for envelope in events:
                result = on_event(envelope)
                if result is not None:
                    await result
                if envelope.position + 1 >= end:
                    break
        position = end
