"""The rows of the read models, one msgspec Struct per table.

Where it sits: ``projections.views.viewset`` renders these from its folded
state; ``eventbatch.readmodels`` stores them, one SQLite table each, with
the columns in field order. Resource amounts are JSON objects of quantity
strings (``{"cpu": "2", "memory": "4Gi"}``), as Kubernetes prints them.
"""

from __future__ import annotations

import msgspec

from schemas.resources import JobStatus

_json = msgspec.json.Encoder()


class QueueRow(msgspec.Struct, frozen=True):
    """Volcano's QueueStatus, plus the spec figures the proportion plugin uses."""

    name: str
    state: str  # Open / Closing / Closed
    pending: int
    inqueue: int
    running: int
    completed: int
    unknown: int
    allocated: str  # JSON
    deserved: str
    guarantee: str
    capability: str
    share: float  # max over resources of allocated / deserved (0 without deserved)
    weight: int
    parent: str


class JobRow(msgspec.Struct, frozen=True):
    """Volcano's JobStatus (``status`` is its JSON), with the figures lists show."""

    key: str  # namespace/name
    namespace: str
    name: str
    queue: str
    phase: str
    min_available: int
    pending: int
    running: int
    succeeded: int
    failed: int
    terminating: int
    unknown: int
    retry_count: int
    version: int
    submitted_at: int
    status: str  # JSON of schemas.resources.JobStatus


def job_row_of(key: str, *, queue: str, phase: str, submitted_at: int, status: JobStatus) -> JobRow:
    """The JobView row of a job whose Volcano ``JobStatus`` is ``status``."""
    namespace, _, name = key.partition("/")
    return JobRow(
        key=key,
        namespace=namespace,
        name=name,
        queue=queue,
        phase=phase,
        min_available=status.min_available,
        pending=status.pending,
        running=status.running,
        succeeded=status.succeeded,
        failed=status.failed,
        terminating=status.terminating,
        unknown=status.unknown,
        retry_count=status.retry_count,
        version=status.version,
        submitted_at=submitted_at,
        status=_json.encode(status).decode(),
    )


class PodGroupRow(msgspec.Struct, frozen=True):
    name: str
    job: str
    queue: str
    phase: str  # Pending / Inqueue / Running / Unknown / Completed
    min_member: int
    min_resources: str  # JSON
    created_at: int
    unschedulable: str  # reason of the last PodGroupUnschedulable, "" once it moved on


class PodRow(msgspec.Struct, frozen=True):
    key: str
    job: str
    podgroup: str
    task: str
    phase: str  # Pending / Bound / Running / Succeeded / Failed / Evicted / Deleted
    node: str
    requested_at: int
    bound_at: int | None
    started_at: int | None
    finished_at: int | None
    exit_code: int | None
    reason: str


class NodeRow(msgspec.Struct, frozen=True):
    name: str
    allocatable: str  # JSON
    idle: str
    used: str
    pods: int  # pods holding the node
    unschedulable: bool


class PriorityClassRow(msgspec.Struct, frozen=True):
    """A PriorityClass the cluster defines: what a Job's priorityClassName may name."""

    name: str
    value: int
    global_default: bool


class AuditRow(msgspec.Struct, frozen=True):
    """One event in the timeline of a job or a queue."""

    scope: str  # "job" or "queue"
    name: str
    position: int
    type: str
    recorded_at: int
    detail: str  # the event in a few words: "PodFailed(exit 3)"
    cause_position: int | None
    cause_handler: str
    cause_detail: str  # the trigger in a few words, when the decision has one
    rule: str  # the scheduler plugin, the policy, or the reason behind a decision


# table name -> (row type, primary key columns)
TABLES: dict[str, tuple[type[msgspec.Struct], tuple[str, ...]]] = {
    "queue_view": (QueueRow, ("name",)),
    "job_view": (JobRow, ("key",)),
    "podgroup_view": (PodGroupRow, ("name",)),
    "pod_view": (PodRow, ("key",)),
    "node_view": (NodeRow, ("name",)),
    "priority_class_view": (PriorityClassRow, ("name",)),
    "audit_view": (AuditRow, ("scope", "name", "position")),
    # The compacted history of finished jobs: the last JobView row of each job
    # when it was removed (TTL or delete), kept after its events leave the log.
    "job_history": (JobRow, ("key", "submitted_at")),
}


def columns(row_type: type[msgspec.Struct]) -> tuple[str, ...]:
    return row_type.__struct_fields__
