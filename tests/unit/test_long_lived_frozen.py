"""``long_lived_frozen``: what survives a full collection is frozen while the pipeline runs.

A full collection walks every object tracked by the collector; with the folded states of a
long history that held ``serve``'s event loop for 50-300 ms. Frozen, the survivors are not
walked again, yet garbage made afterwards is still collected, and leaving unfreezes them.
"""

from __future__ import annotations

import gc
import weakref

from eventbatch.runtime import long_lived_frozen


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_full_collection_freezes_its_survivors_and_still_collects_new_garbage() -> None:
    kept = [[i] for i in range(1000)]
    with long_lived_frozen(every_s=3600):
        gc.collect()
        assert gc.get_freeze_count() >= len(kept)
        made_after = _cycle()
        gc.collect()
        assert made_after() is None  # a cycle made after the freeze is collected
    assert gc.get_freeze_count() == 0
    assert kept[-1] == [999]


def test_a_cycle_dropped_after_its_freeze_waits_for_the_period_or_for_leaving() -> None:
    with long_lived_frozen(every_s=3600):
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        dropped = weakref.ref(a)
        gc.collect()  # a and b survive it: frozen
        del a, b
        gc.collect()
        assert dropped() is not None  # frozen garbage is kept within the period
    gc.collect()
    assert dropped() is None  # leaving unfroze it


def test_past_its_period_a_full_collection_sees_every_object_again() -> None:
    with long_lived_frozen(every_s=0):
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        dropped = weakref.ref(a)
        del a, b
        gc.collect()  # its period is over at once: everything unfrozen, nothing frozen
        assert gc.get_freeze_count() == 0
        assert dropped() is None
