"""The records the read-model fold keeps: only what some row shows.

Where it sits: ``projections.views.viewset`` folds events into these and
renders rows from them at the end of a chunk. They mirror, field for field,
the parts of the handlers' projections that rows show (``projections.cluster``
for queues, nodes, podgroups and what pods hold; ``projections.jobs`` for
Volcano's JobStatus), and nothing else, so a replay folds a few attributes
per event instead of the scheduler's and the job controller's whole state.
``tests/integration/test_views_oracle.py`` folds the same events through both and
compares the rows.
"""

from __future__ import annotations

from projections.job_records import PodTally
from projections.job_status import status_of
from projections.views.rows import JobRow, job_row_of
from schemas.resources import Job


class QueueViewRecord:
    """The read models' record of one queue, which its QueueView row is rendered from (``...ViewRecord``)."""

    __slots__ = ("name", "state", "weight", "capability", "guarantee", "deserved", "parent")

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "Open"
        self.weight = 1
        self.capability: dict[str, int] = {}
        self.guarantee: dict[str, int] = {}
        self.deserved: dict[str, int] = {}
        self.parent = ""  # spec.parent as written


class NodeViewRecord:
    """The read models' record of one node, which its NodeView row is rendered from."""

    __slots__ = ("name", "allocatable", "used", "unschedulable")

    def __init__(self, name: str) -> None:
        self.name = name
        self.allocatable: dict[str, int] = {}
        self.used: dict[str, int] = {}  # requests of the pods holding it (pods included)
        self.unschedulable = False


class PodGroupViewRecord:
    """The read models' record of one podgroup, which its PodGroupView row is rendered from."""

    __slots__ = ("name", "job", "queue", "phase", "min_member", "min_resources", "created_at", "unschedulable")

    def __init__(self, name: str, created_at: int) -> None:
        self.name = name
        self.created_at = created_at
        self.job = ""
        self.queue = "default"
        self.phase = "Pending"
        self.min_member = 0
        self.min_resources: dict[str, int] = {}
        self.unschedulable: tuple[str, str] | None = None  # (reason, message) of the last PodGroupUnschedulable


class PodHoldRecord:
    """A pod as the cluster projection tracks it: its status and the node it holds."""

    __slots__ = ("key", "job", "podgroup", "requests", "status", "node")

    def __init__(self, key: str) -> None:
        self.key = key
        self.job = ""
        self.podgroup = ""
        self.requests: dict[str, int] = {}
        self.status = "Pending"
        self.node = ""


class JobPod:
    """A pod as the job controller counts it."""

    __slots__ = ("task", "phase", "terminating")

    def __init__(self, task: str, phase: str = "Pending", terminating: bool = False) -> None:
        self.task, self.phase, self.terminating = task, phase, terminating


class JobViewRecord(PodTally):
    """The read models' record of one job, which its JobView row is rendered from."""

    __slots__ = (
        "key", "manifest", "submitted_at", "last_at", "phase", "reason", "message", "transition_at",
        "retry_count", "version", "conditions", "running_since", "finished_at", "pods", "tally",
    )

    def __init__(self, key: str, manifest: Job, at: int) -> None:
        self.key = key
        self.manifest = manifest
        self.submitted_at = at
        self.last_at = at  # recorded_at of the latest event about the job (requests and refusals aside)
        self.phase = ""
        self.reason = ""
        self.message = ""
        self.transition_at = 0
        self.retry_count = 0
        self.version = 0
        self.conditions: list[tuple[str, int]] = []
        self.running_since: int | None = None
        self.finished_at: int | None = None
        self.pods: dict[str, JobPod] = {}
        self.tally: dict[str, dict[str, int]] = {}  # task -> pod phase (or Terminating) -> pods

    def put(self, key: str, pod: JobPod) -> None:
        old = self.pods.get(key)
        if old is not None:
            self.count(old, -1)
        self.pods[key] = pod
        self.count(pod, 1)

    # Tallied and counted exactly as the job controller's record does it (``counts`` and
    # ``task_phase_counts`` too: ``PodTally``).
    count = PodTally._count

    def row(self) -> JobRow:
        return job_row_of(self.key, queue=self.manifest.spec.queue or "default", phase=self.phase or "Pending",
                          submitted_at=self.submitted_at, status=status_of(self, self.last_at))
