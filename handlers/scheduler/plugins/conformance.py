"""conformance: never offer critical pods as victims.

Where it sits: a scheduler plugin (see ``plugins.base``). Pods in the
``kube-system`` namespace and pods at system-critical priority
(2,000,000,000 and above) are filtered out of preemption and reclaim victims.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from handlers.scheduler.api import TaskInfo
from handlers.scheduler.plugins.base import Plugin

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

SYSTEM_CRITICAL = 2_000_000_000


def evictable(candidates: Sequence[TaskInfo]) -> list[TaskInfo]:
    return [c for c in candidates if not c.name.startswith("kube-system/") and c.priority < SYSTEM_CRITICAL]


class Conformance(Plugin):
    name = "conformance"

    def open(self, ssn: Session) -> None:
        self.register(ssn.hooks.preemptable, lambda preemptor, candidates: evictable(candidates))
        self.register(ssn.hooks.reclaimable, lambda preemptor, candidates: evictable(candidates))
