"""Scheduler decisions: the outcome of one scheduling session.

Where it sits: the scheduler handler answers a ``SchedulingRequested`` trigger
with one atomic batch of these. Every decision names the plugin or rule that
made it (``rule``), so ``eventbatch why`` and the audit view can explain it.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event


class PodGroupDecision(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "podgroup"
    CORRELATION: ClassVar[str] = "job"
    podgroup: str
    job: str = ""
    queue: str = ""
    rule: str = ""


class PodGroupEnqueued(PodGroupDecision, frozen=True, kw_only=True):
    """Pending -> Inqueue: the queue and the cluster can admit the gang."""


class PodGroupPhaseChanged(PodGroupDecision, frozen=True, kw_only=True):
    phase: str
    previous: str = ""
    reason: str = ""


class PodGroupUnschedulable(PodGroupDecision, frozen=True, kw_only=True):
    reason: str
    message: str = ""


class PodDecision(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "pod"
    CORRELATION: ClassVar[str] = "job"
    pod: str
    job: str = ""
    rule: str = ""


class PodBound(PodDecision, frozen=True, kw_only=True):
    node: str
    # The GPU devices of the node the pod gets (indices; empty: no GPU, or a record from
    # before devices were recorded, whose devices the fold picks as the scheduler would).
    devices: list[int] = []


class PodPipelined(PodDecision, frozen=True, kw_only=True):
    node: str
    devices: list[int] = []


class PodEvictionRequested(PodDecision, frozen=True, kw_only=True):
    reason: str
    preemptor: str = ""


class ReservationMade(PodGroupDecision, frozen=True, kw_only=True):
    """Nodes held for a starving podgroup: nothing new is placed on them until it fits."""

    nodes: list[str]
    reason: str = ""


class ReservationReleased(PodGroupDecision, frozen=True, kw_only=True):
    """The podgroup's reserved nodes are open to every job again."""

    reason: str = ""


EVENTS: tuple[type[Event], ...] = (
    PodGroupEnqueued,
    PodGroupPhaseChanged,
    PodGroupUnschedulable,
    PodBound,
    PodPipelined,
    PodEvictionRequested,
    ReservationMade,
    ReservationReleased,
)
