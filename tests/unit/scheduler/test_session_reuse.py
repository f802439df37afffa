"""What a session reuses from earlier ones decides exactly what computing it afresh decides.

Sessions one after another mostly repeat what the one before computed: the
same queues asking for the same amounts (``proportion``'s water-filling is
kept by its inputs). These tests check each reuse against a fresh
computation, and that the reuse really happens, or the comparison would
prove nothing.
"""

from __future__ import annotations

from handlers.scheduler.api import QueueInfo
from handlers.scheduler.plugins import proportion
from handlers.scheduler.plugins.proportion import QueueAttr, water_fill


def _attrs(requests: dict[str, float], weights: dict[str, int] | None = None) -> list[QueueAttr]:
    attrs = []
    for name, cpu in requests.items():
        attr = QueueAttr(QueueInfo(name))
        attr.weight = (weights or {}).get(name, 1)
        attr.request = {"cpu": cpu, "memory": cpu * 2.0}
        attrs.append(attr)
    return attrs


def _filled(attrs: list[QueueAttr]) -> dict[str, tuple[dict, dict]]:
    return {a.name: (dict(a.real_capability), dict(a.deserved)) for a in attrs}


def _fresh(requests, weights=None):
    saved = dict(proportion._FILLED)
    proportion._FILLED.clear()
    try:
        attrs = _attrs(requests, weights)
        water_fill(attrs, TOTAL)
        return _filled(attrs)
    finally:
        proportion._FILLED.clear()
        proportion._FILLED.update(saved)


TOTAL = {"cpu": 100.0, "memory": 200.0}


def test_a_water_filling_asked_for_again_gives_the_shares_of_a_fresh_one():
    asks = [
        ({"a": 80.0, "b": 80.0}, None),
        ({"a": 10.0, "b": 80.0}, None),
        ({"a": 80.0, "b": 80.0}, {"a": 3}),  # the same requests, other weights
        ({"a": 80.0, "b": 80.0}, None),  # asked for before: taken again
        ({"a": 10.0, "b": 80.0}, None),
    ]
    for requests, weights in asks:
        attrs = _attrs(requests, weights)
        water_fill(attrs, TOTAL)
        assert _filled(attrs) == _fresh(requests, weights)
        # A session changes its copies freely: the next one asking gets clean ones.
        for a in attrs:
            a.deserved["cpu"] = -1.0
            a.real_capability.clear()
    again = _attrs({"a": 80.0, "b": 80.0})
    water_fill(again, TOTAL)
    assert {a.name: a.deserved["cpu"] for a in again} == {"a": 50.0, "b": 50.0}


def test_the_kept_water_fillings_are_few_and_really_taken():
    proportion._FILLED.clear()
    for k in range(3 * proportion._FILLED_KEPT):
        water_fill(_attrs({"a": float(k), "b": 80.0}), TOTAL)
    kept = set(proportion._FILLED)
    assert len(kept) == proportion._FILLED_KEPT
    water_fill(_attrs({"a": float(3 * proportion._FILLED_KEPT - 1), "b": 80.0}), TOTAL)
    assert set(proportion._FILLED) == kept  # taken again, nothing filled anew
    water_fill(_attrs({"a": 0.0, "b": 80.0}), TOTAL)  # long forgotten: filled again
    assert len(proportion._FILLED) == proportion._FILLED_KEPT and set(proportion._FILLED) != kept
