"""shuffle: evict the running pods that plugins select as victims, to rebalance the cluster.

Where it sits: an action of the session, usually last. Every pod holding a
node that may be evicted at all (``victims.evictable``: not labelled
``volcano.sh/preemptable: "false"``, not kube-system, not system-critical) is
offered to the ``victim`` hooks; the pods the deciding tier selects are
evicted (``PodEvictionRequested``, rule ``shuffle.<plugin>``, the plugin's
reason), and the job controller's policies decide what happens to their jobs.
Without a plugin offering a ``victim`` hook, shuffle does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.scheduler.actions.victims import evictable
from handlers.scheduler.statement import Statement

if TYPE_CHECKING:
    from handlers.scheduler.session import Session


def execute(ssn: Session) -> None:
    if not ssn.hooks.victim:
        return
    candidates = [t for job in ssn.jobs.values() for t in job.tasks if evictable(t)]
    if not candidates:
        return
    chosen = ssn.hooks.victim.victims(None, candidates)
    if not chosen:
        return
    plugins = sorted(ssn.hooks.victim.plugins())
    rule = "shuffle." + "+".join(plugins)
    stmt = Statement(ssn)
    for task in sorted(chosen, key=lambda t: t.name):
        stmt.evict(task, f"selected for rebalancing by {', '.join(plugins)}")
    stmt.commit(rule)
