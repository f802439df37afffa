"""PodGroup phase at session close, as Volcano's job status update decides it.

Where it sits: called by ``Session.close`` for every podgroup of the session;
a changed phase becomes a ``PodGroupPhaseChanged`` decision.

- Pending -> Inqueue is the enqueue action's decision (``PodGroupEnqueued``),
  or allocate's when enqueue is not configured.
- Any phase -> Running once at least ``minMember`` tasks (and at least one)
  are allocated, bound, running or succeeded; -> Completed when every such
  task has succeeded.
- Running with running tasks but found unschedulable this session -> Unknown.
- Below ``minMember`` again (pods failed or were deleted; pods still being
  deleted count until they are gone) -> Pending, unless
  the podgroup is Inqueue (its reservation stands) or Completed (final).
"""

from __future__ import annotations

from handlers.scheduler.api import JobInfo


def next_phase(job: JobInfo, unschedulable: bool) -> tuple[str, str] | None:
    phase = job.phase
    if phase == "Completed":
        return None
    get = job.counts.get  # not Counter's [], whose missing keys go through Python
    # Pods being deleted still hold their nodes: the group keeps its phase until they are gone.
    ready = job.ready + get("Releasing", 0)
    if unschedulable and get("Running", 0):
        new, reason = "Unknown", "RunningButUnschedulable"
    elif ready > 0 and ready >= job.min_member:
        if get("Succeeded", 0) == ready:
            new, reason = "Completed", "AllTasksSucceeded"
        else:
            new, reason = "Running", "MinMemberAllocated"
    elif phase != "Inqueue":
        new, reason = "Pending", "BelowMinMember"
    else:
        return None
    return None if new == phase else (new, reason)
