"""Rendering read-model rows.

Where it sits: ``projections.views.viewset`` renders queue, node and pod rows
with these at the end of a chunk, from its own records; ``Aggregates`` holds
what queue and node rows sum up (podgroup counts per queue, resources
allocated per queue, pods per node). ``podgroup_row`` and
``job_row`` render the same rows from the handlers' projections
(``projections.cluster``, ``projections.jobs``): what the tests hold the views'
own fold to (``tests/support/oracle.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from projections.cluster_model import HOLDING, ClusterState, NodeRecord, QueueRecord, add_into
from projections.job_records import JobRecord, JobsState
from projections.job_status import go_duration, job_status
from projections.views.pods import PodViewRecord
from projections.views.rows import JobRow, NodeRow, PodGroupRow, PodRow, QueueRow, job_row_of
from projections.views.state import NodeViewRecord, QueueViewRecord
from schemas.quantity import format_resources, sub

_json = msgspec.json.Encoder()


def resources_json(amounts: dict[str, int], *, zeros: bool = False) -> str:
    return _json.encode(format_resources({k: v for k, v in sorted(amounts.items()) if v or zeros})).decode()


class Grouped(Protocol):
    """A podgroup as ``Aggregates`` counts it: ``PodGroupRecord`` or ``PodGroupViewRecord``."""

    @property
    def queue(self) -> str: ...

    @property
    def phase(self) -> str: ...


class Holding(Protocol):
    """A pod as ``Aggregates`` counts it: ``PodRecord`` or ``PodHoldRecord``."""

    @property
    def status(self) -> str: ...

    @property
    def node(self) -> str: ...

    @property
    def podgroup(self) -> str: ...

    @property
    def requests(self) -> Mapping[str, int]: ...


@dataclass
class Aggregates:
    podgroups: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    allocated: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    node_pods: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def of(cls, podgroups: Mapping[str, Grouped], pods: Mapping[str, Holding]) -> Aggregates:
        """From podgroups (``queue``, ``phase``) and pods (``status``, ``node``, ``podgroup``,
        ``requests``) by name: the cluster projection's records, or the views' own."""
        agg = cls()
        for group in podgroups.values():
            agg.podgroups[group.queue][group.phase] += 1
        for pod in pods.values():
            if pod.status not in HOLDING:
                continue
            agg.node_pods[pod.node] += 1
            owner = podgroups.get(pod.podgroup)
            if owner is not None:
                add_into(agg.allocated[owner.queue], {k: v for k, v in pod.requests.items() if k != "pods"})
        return agg


def share(allocated: dict[str, int], deserved: dict[str, int]) -> float:
    ratios = [allocated.get(r, 0) / d for r, d in sorted(deserved.items()) if d > 0]
    return round(max(ratios, default=0.0), 6)


def queue_row(queue: QueueRecord | QueueViewRecord, parent: str, agg: Aggregates) -> QueueRow:
    counts = agg.podgroups.get(queue.name, {})
    allocated = agg.allocated.get(queue.name, {})
    return QueueRow(
        name=queue.name,
        state=queue.state,
        pending=counts.get("Pending", 0),
        inqueue=counts.get("Inqueue", 0),
        running=counts.get("Running", 0),
        completed=counts.get("Completed", 0),
        unknown=counts.get("Unknown", 0),
        allocated=resources_json(allocated),
        deserved=resources_json(queue.deserved),
        guarantee=resources_json(queue.guarantee),
        capability=resources_json(queue.capability),
        share=share(allocated, queue.deserved),
        weight=queue.weight,
        parent=parent,
    )


def node_row(node: NodeRecord | NodeViewRecord, agg: Aggregates) -> NodeRow:
    return NodeRow(
        name=node.name,
        allocatable=resources_json(node.allocatable),
        idle=resources_json(sub(node.allocatable, node.used), zeros=True),
        used=resources_json({k: v for k, v in node.used.items() if k != "pods"}),
        pods=agg.node_pods.get(node.name, 0),
        unschedulable=node.unschedulable,
    )


def podgroup_row(cluster: ClusterState, name: str) -> PodGroupRow | None:
    group = cluster.podgroups.get(name)
    if group is None:
        return None
    unschedulable = ""
    if group.unschedulable is not None and group.phase == "Pending":
        _, _, reason, message = group.unschedulable
        unschedulable = f"{reason}: {message}" if message else reason
    return PodGroupRow(
        name=name,
        job=group.job,
        queue=group.queue,
        phase=group.phase,
        min_member=group.min_member,
        min_resources=resources_json(group.min_resources),
        created_at=group.created_at,
        unschedulable=unschedulable,
    )


def pod_row(pod: PodViewRecord) -> PodRow:
    return PodRow(
        key=pod.key, job=pod.job, podgroup=pod.podgroup, task=pod.task, phase=pod.phase, node=pod.node,
        requested_at=pod.requested_at, bound_at=pod.bound_at, started_at=pod.started_at,
        finished_at=pod.finished_at, exit_code=pod.exit_code, reason=pod.reason,
    )


def _duration(rec: JobRecord, last_at: int) -> str | None:
    """How long the job ran, up to its finish or to the latest event about it (requests and refusals aside).

    Measured against the job's own events (not the latest event of the whole
    log) so that a row does not depend on where a chunk of events ends.
    """
    if rec.running_since is None:
        return None
    end = rec.finished_at if rec.finished_at is not None else last_at
    return go_duration(max(0, end - rec.running_since))


def job_row(jobs: JobsState, key: str, last_at: int) -> JobRow | None:
    rec = jobs.jobs.get(key)
    status = job_status(jobs, key) if rec is not None else None
    if rec is None or status is None:
        return None
    status = msgspec.structs.replace(status, running_duration=_duration(rec, last_at))
    return job_row_of(key, queue=rec.manifest.spec.queue or "default", phase=rec.phase or "Pending",
                      submitted_at=rec.submitted_at, status=status)


# -- the status written back to the API server (``eventbatch.kube.status``), from these rows -------------


def job_status_object(row: JobRow) -> dict[str, object]:
    """A Job's ``status`` as written to the API server: the row's Volcano JobStatus, the same
    JSON ``eventbatch job view -o json`` prints under ``status``."""
    out: dict[str, object] = msgspec.json.decode(row.status)
    return out


def podgroup_status_object(row: PodGroupRow, job: JobRow | None, conditions: list[dict[str, str]]) -> dict[str, object]:
    """A PodGroup's ``status`` (Volcano's PodGroupStatus): its phase, its conditions
    (``Unschedulable``, ``Scheduled``) and its job's pods by phase."""
    return {
        "phase": row.phase,
        "conditions": conditions,
        "running": job.running if job is not None else 0,
        "succeeded": job.succeeded if job is not None else 0,
        "failed": job.failed if job is not None else 0,
    }


def queue_status_object(row: QueueRow) -> dict[str, object]:
    """A Queue's ``status`` (Volcano's QueueStatus): its state, its podgroups by phase and the
    resources its pods hold. ``reservation`` is Volcano's (deprecated) node lock, always empty:
    reservations are per job here (``ReservationMade``)."""
    return {**queue_status_fields(row), "reservation": {}}


def queue_status_fields(row: QueueRow) -> dict[str, object]:
    """What a Queue's ``status`` and ``eventbatch queue list -o json`` share: the state, the
    podgroups by phase and the resources its pods hold (``allocated``)."""
    return {
        "state": row.state,
        "pending": row.pending,
        "inqueue": row.inqueue,
        "running": row.running,
        "completed": row.completed,
        "unknown": row.unknown,
        "allocated": msgspec.json.decode(row.allocated),
    }
