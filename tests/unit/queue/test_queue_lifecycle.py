"""Queue lifecycle as Volcano users know it: open, close (via Closing while
podgroups live), reopen, delete only when Closed and empty."""

from __future__ import annotations

import pytest

from handlers.queue import QueueHandler
from schemas.envelope import Causation, Envelope
from schemas.events import (
    JobPhaseChanged,
    PodGroupCreated,
    QueueCommandRequested,
    QueueCreateRequested,
    QueueDeleteRequested,
    QueueUpdateRequested,
)
from schemas.events.base import Event
from schemas.resources import ObjectMeta, PodGroup, PodGroupSpec, Queue, QueueSpec, QueueStatus


def queue(name: str, parent: str = "", state: str = "") -> QueueCreateRequested:
    manifest = Queue(
        metadata=ObjectMeta(name=name),
        spec=QueueSpec(parent=parent),
        status=QueueStatus(state=state) if state else None,
    )
    return QueueCreateRequested(queue=name, manifest=manifest)


def podgroup(job: str, queue_name: str) -> PodGroupCreated:
    pg = PodGroup(metadata=ObjectMeta(name=job.split("/")[1], namespace="ml"), spec=PodGroupSpec(queue=queue_name))
    return PodGroupCreated(podgroup=job, job=job, manifest=pg)


def run(events: list[Event]) -> list[tuple[str, ...]]:
    """Drive the handler as the runtime does; return its decisions, compactly."""
    handler = QueueHandler()
    state = handler.initial()
    position = 0
    out: list[tuple[str, ...]] = []
    for event in events:
        trigger = Envelope.wrap(event, recorded_at=position).at(position)
        position += 1
        state = handler.fold(state, trigger)
        for index, decision in enumerate(handler.decide(state, trigger)):
            d = Envelope.wrap(decision, recorded_at=0, causation=Causation(trigger.position, handler.name, index))
            state = handler.fold(state, d.at(position))
            position += 1
            payload = decision
            if decision.__class__.__name__ == "QueueStateChanged":
                out.append((payload.queue, payload.previous or "-", payload.state))
            elif decision.__class__.__name__ == "QueueRequestRefused":
                out.append((payload.queue, "refused", payload.action, payload.reason))
            elif decision.__class__.__name__ == "QueueDeleted":
                out.append((payload.queue, "deleted"))
            elif decision.__class__.__name__ == "QueueUpdated":
                out.append((payload.queue, "updated", str(payload.manifest.spec.weight)))
    return out


def update(name: str, weight: int, parent: str = "") -> QueueUpdateRequested:
    return QueueUpdateRequested(
        queue=name, manifest=Queue(metadata=ObjectMeta(name=name), spec=QueueSpec(weight=weight, parent=parent))
    )


def close(name: str) -> QueueCommandRequested:
    return QueueCommandRequested(queue=name, action="close")


def open_(name: str) -> QueueCommandRequested:
    return QueueCommandRequested(queue=name, action="open")


def finished(job: str) -> JobPhaseChanged:
    return JobPhaseChanged(job=job, phase="Completed", previous="Running")


CASES = [
    ("created-opens", [queue("q")], [("q", "-", "Open")]),
    ("created-closed-by-status", [queue("q", state="Closed")], [("q", "-", "Closed")]),
    ("duplicate-create-refused", [queue("q"), queue("q")],
     [("q", "-", "Open"), ("q", "refused", "create", "queue already exists")]),
    ("close-empty-is-closed", [queue("q"), close("q")], [("q", "-", "Open"), ("q", "Open", "Closed")]),
    ("close-busy-is-closing-then-closed",
     [queue("q"), podgroup("ml/a", "q"), close("q"), finished("ml/a")],
     [("q", "-", "Open"), ("q", "Open", "Closing"), ("q", "Closing", "Closed")]),
    ("reopen", [queue("q"), close("q"), open_("q")],
     [("q", "-", "Open"), ("q", "Open", "Closed"), ("q", "Closed", "Open")]),
    ("open-an-open-queue-is-a-no-op", [queue("q"), open_("q")], [("q", "-", "Open")]),
    ("close-parent-closes-children",
     [queue("eng"), queue("ml", parent="eng"), close("eng")],
     [("eng", "-", "Open"), ("ml", "-", "Open"), ("ml", "Open", "Closed"), ("eng", "Open", "Closed")]),
    ("unknown-queue-refused", [close("nope")], [("nope", "refused", "close", "queue not found")]),
    ("delete-default-refused", [queue("default"), close("default"), QueueDeleteRequested(queue="default")],
     [("default", "-", "Open"), ("default", "Open", "Closed"),
      ("default", "refused", "delete", "queue default cannot be deleted")]),
    ("delete-open-refused", [queue("q"), QueueDeleteRequested(queue="q")],
     [("q", "-", "Open"), ("q", "refused", "delete", "only a Closed queue can be deleted; q is Open")]),
    ("delete-closed-empty", [queue("q"), close("q"), QueueDeleteRequested(queue="q")],
     [("q", "-", "Open"), ("q", "Open", "Closed"), ("q", "deleted")]),
    ("podgroup-before-its-queue-keeps-the-queue",
     [podgroup("ml/a", "q"), queue("q"), close("q"), QueueDeleteRequested(queue="q")],
     [("q", "-", "Open"), ("q", "Open", "Closing"),
      ("q", "refused", "delete", "only a Closed queue can be deleted; q is Closing")]),
    ("update-changes-the-spec", [queue("q"), update("q", 4)], [("q", "-", "Open"), ("q", "updated", "4")]),
    ("unchanged-update-records-nothing", [queue("q"), update("q", 1)], [("q", "-", "Open")]),
    ("update-of-unknown-queue-refused", [update("q", 4)], [("q", "refused", "update", "queue not found")]),
    ("update-moving-the-queue-refused", [queue("eng"), queue("q"), update("q", 1, parent="eng")],
     [("eng", "-", "Open"), ("q", "-", "Open"),
      ("q", "refused", "update", "spec.parent cannot change (is 'root', asked 'eng')")]),
    ("delete-closing-refused",
     [queue("q"), podgroup("ml/a", "q"), close("q"), QueueDeleteRequested(queue="q")],
     [("q", "-", "Open"), ("q", "Open", "Closing"),
      ("q", "refused", "delete", "only a Closed queue can be deleted; q is Closing")]),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_queue_lifecycle(events: list[Event], expected: list[tuple[str, ...]]) -> None:
    assert run(events) == expected


def test_a_refused_create_changes_nothing() -> None:
    """Creating an existing queue with another weight is refused, and the weight stays."""
    handler = QueueHandler()
    state = handler.initial()
    position = 0

    def feed(event: Event) -> list[Event]:
        nonlocal state, position
        trigger = Envelope.wrap(event, recorded_at=position).at(position)
        position += 1
        state = handler.fold(state, trigger)
        decisions = handler.decide(state, trigger)
        for index, decision in enumerate(decisions):
            d = Envelope.wrap(decision, recorded_at=0, causation=Causation(trigger.position, handler.name, index))
            state = handler.fold(state, d.at(position))
            position += 1
        return decisions

    feed(queue("research"))
    heavy = Queue(metadata=ObjectMeta(name="research"), spec=QueueSpec(weight=7))
    [refusal] = feed(QueueCreateRequested(queue="research", manifest=heavy))
    assert refusal.__class__.__name__ == "QueueRequestRefused"
    assert state.queues["research"].manifest.spec.weight == 1


def test_same_log_same_decisions() -> None:
    events = [queue("q"), podgroup("ml/a", "q"), close("q"), finished("ml/a"), open_("q")]
    assert run(events) == run(events)
