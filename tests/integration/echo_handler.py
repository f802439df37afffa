"""A small handler whose decisions depend on its own earlier decisions.

Used by the runtime tests and the crash worker: for each
``SchedulingRequested`` it decides three ``PodBound`` whose node names carry
how many of its own decisions its state had folded. If the runtime ever
answered a trigger twice, skipped one, or folded its own decisions in the
wrong place after a restart, the node names would show it.
"""

from __future__ import annotations

from schemas.envelope import Envelope
from schemas.events import PodBound, SchedulingRequested

NAME = "echo"
PER_TRIGGER = 3


class EchoHandler:
    name = NAME

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.fail_on = fail_on or set()

    def initial(self) -> dict[str, int]:
        return {"triggers": 0, "own": 0}

    def fold(self, state: dict[str, int], envelope: Envelope) -> dict[str, int]:
        if isinstance(envelope.payload, SchedulingRequested):
            state["triggers"] += 1
        elif envelope.causation is not None and envelope.causation.handler == NAME:
            state["own"] += 1
        return state

    def decide(self, state: dict[str, int], envelope: Envelope) -> list[PodBound]:
        if not isinstance(envelope.payload, SchedulingRequested):
            return []
        if envelope.position in self.fail_on:
            raise RuntimeError(f"planted failure at #{envelope.position}")
        return [
            PodBound(pod=f"default/t{envelope.position}-{i}", node=f"seen-{state['own']}", rule="echo")
            for i in range(PER_TRIGGER)
        ]


def expected_nodes(trigger_count: int) -> list[str]:
    """The node names a correct run gives, trigger by trigger (no failures)."""
    return [f"seen-{PER_TRIGGER * k}" for k in range(trigger_count)]
