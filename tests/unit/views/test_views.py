"""The read-model folds: events in, QueueView/PodView/NodeView/PodGroupView/AuditView rows out."""

from __future__ import annotations

import json

import msgspec
import pytest

from projections.views import ViewSet
from projections.views.audit import fill_causes, timelines, triggers_wanted
from schemas.envelope import Causation, Envelope, encode_record
from schemas.events import (
    JobPhaseChanged,
    NodeAdded,
    PodBound,
    PodDeleted,
    PodFailed,
    PodGroupCreated,
    PodGroupEnqueued,
    PodGroupPhaseChanged,
    PodGroupUnschedulable,
    PodRequested,
    PodStarted,
    PodSucceeded,
    QueueCreated,
    QueueStateChanged,
    SchedulingRequested,
)
from schemas.resources import Node, NodeStatus, ObjectMeta, Pod, PodGroup, PodGroupSpec, Queue, QueueSpec


def queue(name: str, deserved: dict | None = None) -> QueueCreated:
    return QueueCreated(queue=name, manifest=Queue(metadata=ObjectMeta(name=name), spec=QueueSpec(deserved=deserved or {})))


def node(name: str, cpu: str = "8") -> NodeAdded:
    alloc = {"cpu": cpu, "memory": "32Gi"}
    return NodeAdded(node=name, manifest=Node(metadata=ObjectMeta(name=name), status=NodeStatus(allocatable=alloc)))


def podgroup(job: str, q: str) -> PodGroupCreated:
    return PodGroupCreated(podgroup=f"default/{job}", job=f"default/{job}",
                           manifest=PodGroup(spec=PodGroupSpec(queue=q, min_member=1)))


def pod(job: str, i: int, cpu: int = 2000) -> PodRequested:
    return PodRequested(pod=f"default/{job}-{i}", job=f"default/{job}", podgroup=f"default/{job}", task="main",
                        index=i, manifest=Pod(), requests={"cpu": cpu, "memory": 2**30})


def fold_all(events: list, *, flush_every: int | None = None) -> tuple[ViewSet, dict]:
    """Fold ``events`` (position = index, time = 1000 * index), collecting final rows per table."""
    views = ViewSet()
    rows: dict[str, dict] = {t: {} for t in ("queues", "jobs", "podgroups", "pods", "nodes")}
    entries: dict = {}
    log: dict[int, bytes] = {}  # the records, by position: timelines keep positions

    def collect() -> None:
        changes = views.flush()
        for table in rows:
            for row in getattr(changes, table):
                rows[table][msgspec.structs.astuple(row)[0]] = row
        for table, keys in changes.deleted.items():
            for key in keys:
                rows[table.removesuffix("_view") + "s"].pop(key, None)
        for scope_name, items in changes.audit.items():
            entries.setdefault(scope_name, []).extend(items)

    for position, item in enumerate(events):
        event, cause = item if isinstance(item, tuple) else (item, None)
        env = Envelope.wrap(event, recorded_at=1000 * position, causation=cause).at(position)
        log[position] = encode_record(env)
        views.fold(env)
        if flush_every and (position + 1) % flush_every == 0:
            collect()
    collect()
    audit = timelines({key: [(p, log[p]) for p in positions] for key, positions in entries.items()})
    rows["audit"] = fill_causes(audit, {p: log[p] for p in triggers_wanted(audit)})
    return views, rows


BASE = [queue("batch", {"cpu": "8"}), QueueStateChanged(queue="batch", state="Open"), node("n1"), node("n2")]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([], {"pending": 0, "inqueue": 0, "running": 0}, id="empty"),
        pytest.param([podgroup("a", "batch")], {"pending": 1, "inqueue": 0, "running": 0}, id="created-is-pending"),
        pytest.param(
            [podgroup("a", "batch"), PodGroupEnqueued(podgroup="default/a", job="default/a", rule="enqueue")],
            {"pending": 0, "inqueue": 1, "running": 0}, id="enqueued",
        ),
        pytest.param(
            [podgroup("a", "batch"), podgroup("b", "batch"),
             PodGroupEnqueued(podgroup="default/a", job="default/a"),
             PodGroupPhaseChanged(podgroup="default/a", job="default/a", phase="Running", previous="Inqueue")],
            {"pending": 1, "inqueue": 0, "running": 1}, id="one-running-one-pending",
        ),
        pytest.param(
            [podgroup("a", "batch"), PodGroupPhaseChanged(podgroup="default/a", job="default/a", phase="Completed")],
            {"pending": 0, "completed": 1}, id="completed",
        ),
    ],
)
def test_queue_view_counts_podgroups_by_phase(events, expected) -> None:
    _, rows = fold_all(BASE + events)
    row = rows["queues"]["batch"]
    assert {k: getattr(row, k) for k in expected} == expected
    assert row.state == "Open"


def test_queue_view_allocated_and_share_follow_bound_pods_until_they_finish() -> None:
    events = BASE + [podgroup("a", "batch"), pod("a", 0), pod("a", 1),
                     PodBound(pod="default/a-0", job="default/a", node="n1", rule="allocate"),
                     PodBound(pod="default/a-1", job="default/a", node="n2", rule="allocate")]
    _, rows = fold_all(events)
    assert json.loads(rows["queues"]["batch"].allocated) == {"cpu": "4", "memory": "2Gi"}
    assert rows["queues"]["batch"].share == 0.5
    _, rows = fold_all(events + [PodSucceeded(pod="default/a-0", job="default/a")])
    assert json.loads(rows["queues"]["batch"].allocated) == {"cpu": "2", "memory": "1Gi"}
    assert rows["queues"]["batch"].share == 0.25


def test_node_view_idle_and_used() -> None:
    _, rows = fold_all(BASE + [podgroup("a", "batch"), pod("a", 0, cpu=3000),
                               PodBound(pod="default/a-0", job="default/a", node="n1")])
    n1 = rows["nodes"]["n1"]
    assert (json.loads(n1.used), json.loads(n1.idle)["cpu"], n1.pods) == ({"cpu": "3", "memory": "1Gi"}, "5", 1)
    assert json.loads(rows["nodes"]["n2"].idle)["cpu"] == "8"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        pytest.param([], ("Pending", "", None, None, None, None), id="requested"),
        pytest.param([PodBound(pod="default/a-0", job="default/a", node="n1")],
                     ("Bound", "n1", 5000, None, None, None), id="bound"),
        pytest.param([PodBound(pod="default/a-0", job="default/a", node="n1"),
                      PodStarted(pod="default/a-0", job="default/a", node="n1"),
                      PodFailed(pod="default/a-0", job="default/a", exit_code=3)],
                     ("Failed", "n1", 5000, 6000, 7000, 3), id="failed-exit-3"),
        pytest.param([PodBound(pod="default/a-0", job="default/a", node="n1"),
                      PodStarted(pod="default/a-0", job="default/a", node="n1"),
                      PodDeleted(pod="default/a-0", job="default/a")],
                     ("Deleted", "n1", 5000, 6000, 7000, None), id="deleted-while-running"),
    ],
)
def test_pod_view_phase_node_and_times(tail, expected) -> None:
    views, rows = fold_all(BASE + [pod("a", 0)] + tail)
    row = rows["pods"]["default/a-0"]
    assert (row.phase, row.node, row.bound_at, row.started_at, row.finished_at, row.exit_code) == expected
    if row.phase == "Deleted":
        assert "default/a-0" not in views.pods  # history lives in the store, not in memory


def test_podgroup_view_shows_why_a_pending_gang_waits() -> None:
    _, rows = fold_all(BASE + [podgroup("a", "batch"), PodGroupUnschedulable(
        podgroup="default/a", job="default/a", rule="gang", reason="NotEnoughResources", message="1/2 tasks")])
    assert rows["podgroups"]["default/a"].unschedulable == "NotEnoughResources: 1/2 tasks"


def test_audit_rows_carry_causation_the_trigger_and_the_rule() -> None:
    events = BASE + [
        podgroup("a", "batch"),
        pod("a", 0),
        SchedulingRequested(now=0, reason="pods pending"),
        (PodBound(pod="default/a-0", job="default/a", node="n1", rule="allocate/binpack"), Causation(6, "scheduler")),
        PodFailed(pod="default/a-0", job="default/a", exit_code=3),
        (JobPhaseChanged(job="default/a", phase="Restarting", action="RestartJob", reason="PodFailed",
                         message="pod failed with exit code 3; policy PodFailed exitCode 3 -> RestartJob"),
         Causation(8, "job-controller")),
    ]
    _, rows = fold_all(events)
    timeline = [(r.position, r.detail, r.cause_position, r.cause_detail, r.rule)
                for r in rows["audit"] if r.scope == "job"]
    assert timeline == [
        (4, "PodGroupCreated", None, "", ""),
        (5, "PodRequested(default/a-0)", None, "", ""),
        (7, "PodBound(default/a-0 -> n1)", 6, "SchedulingRequested(pods pending)", "allocate/binpack"),
        (8, "PodFailed(exit 3)", None, "", ""),
        (9, "JobPhaseChanged(Restarting, RestartJob)", 8, "PodFailed(exit 3)",
         "policy PodFailed exitCode 3 -> RestartJob"),
    ]
    queue_timeline = [r.type for r in rows["audit"] if r.scope == "queue"]
    assert queue_timeline == ["QueueCreated", "QueueStateChanged", "PodGroupCreated"]


@pytest.mark.parametrize("every", [1, 2, 3, 7], ids=lambda n: f"flush-every-{n}")
def test_rows_do_not_depend_on_where_chunks_end(every) -> None:
    events = BASE + [podgroup("a", "batch"), pod("a", 0), pod("a", 1),
                     PodGroupEnqueued(podgroup="default/a", job="default/a"),
                     PodBound(pod="default/a-0", job="default/a", node="n1"),
                     PodBound(pod="default/a-1", job="default/a", node="n2"),
                     PodStarted(pod="default/a-0", job="default/a", node="n1"),
                     PodSucceeded(pod="default/a-0", job="default/a"),
                     PodDeleted(pod="default/a-0", job="default/a")]
    _, whole = fold_all(events)
    _, chunked = fold_all(events, flush_every=every)
    assert chunked == whole


def test_every_event_type_in_the_catalogue_folds() -> None:
    """A new event type (e.g. ReservationMade) must not break the views: each folds, with or without context."""
    from schemas.events import REGISTRY

    views, _ = fold_all(BASE + [podgroup("a", "batch"), pod("a", 0)])
    for _, cls in sorted(REGISTRY.items()):
        sample = _sample(cls)
        views.fold(Envelope.wrap(sample, recorded_at=0).at(views.position + 1))
        views.flush()
    assert views.position == len(BASE) + 2 + len(REGISTRY) - 1


def _sample(cls):
    """An instance of ``cls`` whose strings point at the job, pod, podgroup, node and queue above."""
    import typing

    values = {"job": "default/a", "pod": "default/a-0", "podgroup": "default/a", "node": "n1", "queue": "batch",
              "owner": "default/a", "nodes": ["n1"]}
    kwargs = {}
    for field in msgspec.structs.fields(cls):
        if field.required:
            hint = field.type
            if field.name in values:
                kwargs[field.name] = values[field.name]
            elif hint in (int, "int"):
                kwargs[field.name] = 1
            elif hint in (str, "str"):
                kwargs[field.name] = "x"
            elif hint in (bool, "bool"):
                kwargs[field.name] = False
            else:
                origin = typing.get_origin(hint)
                kwargs[field.name] = msgspec.convert({}, hint) if origin is None else origin()
    return cls(**kwargs)
