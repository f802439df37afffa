"""PriorityClass observations: name -> value, as the cluster defines them.

Where it sits: appended at the edge (scenario, kube watch); the priority
plugin and the job controller resolve ``priorityClassName`` through them.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event


class PriorityClassAdded(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "name"
    name: str
    value: int
    global_default: bool = False
    preemption_policy: str = "PreemptLowerPriority"


class PriorityClassRemoved(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "name"
    name: str


EVENTS: tuple[type[Event], ...] = (PriorityClassAdded, PriorityClassRemoved)
