"""RuntimeClass observations: what running a pod under a class costs and where it may run.

Where it sits: appended at the edge (a scenario's ``runtimeClasses``, the
kube RuntimeClass watch: ``schemas.runtimeclass``); the scheduler's cluster
state folds them (``projections.cluster_runtime``). Like PriorityClasses
they are the cluster's settings, not requests: no handler answers them.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.resources import Toleration


class RuntimeClassAdded(Event, frozen=True, kw_only=True):
    """RuntimeClass ``name`` exists (or changed): ``overhead`` is ``overhead.podFixed`` parsed,
    ``node_selector`` and ``tolerations`` its ``scheduling``."""

    KEY: ClassVar[str] = "name"
    name: str
    handler: str = ""
    overhead: dict[str, int] = {}
    node_selector: dict[str, str] = {}
    tolerations: list[Toleration] = []


class RuntimeClassRemoved(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "name"
    name: str


EVENTS: tuple[type[Event], ...] = (RuntimeClassAdded, RuntimeClassRemoved)
