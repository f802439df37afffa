"""The scheduler's actions, by the names a scheduler conf uses, run in conf order.

Where it sits: ``handlers.scheduler.handler`` runs each configured action on
the open session. Each action is a verb in its own module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from handlers.scheduler.actions import allocate, backfill, enqueue, preempt, reclaim, reserve, shuffle

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

ACTIONS: dict[str, Callable[[Session], None]] = {
    "enqueue": enqueue.execute,
    "allocate": allocate.execute,
    "backfill": backfill.execute,
    "preempt": preempt.execute,
    "reclaim": reclaim.execute,
    "reserve": reserve.execute,
    "shuffle": shuffle.execute,
}
