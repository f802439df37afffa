"""conformance: never offer critical pods as victims.

Where it sits: a scheduler plugin (see ``plugins.base``). Pods in the
``kube-system`` namespace and pods at system-critical priority
(2,000,000,000 and above) are filtered out of preemption and reclaim victims.
"""

from __future__ import annotations

from handlers.scheduler.plugins.base import Plugin

SYSTEM_CRITICAL = 2_000_000_000


def evictable(candidates):
    return [c for c in candidates if not c.name.startswith("kube-system/") and c.priority < SYSTEM_CRITICAL]


class Conformance(Plugin):
    name = "conformance"

    def open(self, ssn) -> None:
        self.register(ssn, "preemptable", lambda preemptor, candidates: evictable(candidates))
        self.register(ssn, "reclaimable", lambda preemptor, candidates: evictable(candidates))
