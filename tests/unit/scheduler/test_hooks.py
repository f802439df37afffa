"""The combining rules of the hook tables, written once for every family."""

from __future__ import annotations

import numpy as np
import pytest

from handlers.scheduler.hooks import ABSTAIN, PERMIT, REJECT, HookTable, ValidateResult


def _vote(value, message=""):
    return lambda job: (value, message)


@pytest.mark.parametrize(
    ("tiers", "allowed", "plugin"),
    [
        ([], True, ""),
        ([[("a", ABSTAIN)], [("b", ABSTAIN)]], True, ""),
        ([[("a", PERMIT)], [("b", REJECT)]], True, "a"),  # a permitting tier stops there
        ([[("a", PERMIT), ("b", REJECT)]], False, "b"),  # a reject in the same tier wins
        ([[("a", ABSTAIN)], [("b", PERMIT), ("c", ABSTAIN)]], True, "b"),
        ([[("a", ABSTAIN)], [("b", REJECT)], [("c", PERMIT)]], False, "b"),
    ],
    ids=["nobody", "all-abstain", "tier-permit-stops", "same-tier-reject", "second-tier-permit", "reject-before-permit"],
)
def test_tiered_votes(tiers, allowed, plugin):
    table = HookTable()
    for t, tier in enumerate(tiers):
        for name, value in tier:
            table.add(t, name, "job_enqueueable", _vote(value, f"{name} says no"))
    verdict = table.vote("job_enqueueable", object())
    assert (verdict.allowed, verdict.plugin) == (allowed, plugin)
    if not allowed:
        assert verdict.message == f"{plugin} says no"


@pytest.mark.parametrize(
    ("results", "expected"),
    [([0, 0], 0), ([0, -1, 1], -1), ([1, -1], 1), ([], 0)],
    ids=["all-equal", "first-non-zero", "earlier-wins", "none"],
)
def test_compare_first_non_zero_wins(results, expected):
    table = HookTable()
    for i, result in enumerate(results):
        table.add(i, f"p{i}", "job_order", lambda l, r, result=result: result)
    assert table.compare("job_order", "l", "r") == expected


def test_validations_and_and_first_failure():
    table = HookTable()
    table.add(0, "yes", "job_ready", lambda job: True)
    table.add(1, "no", "job_ready", lambda job: False)
    assert table.all("job_ready", None).plugin == "no"
    table.add(0, "ok", "job_valid", lambda job: None)
    table.add(0, "bad", "job_valid", lambda job: ValidateResult(False, "NotEnoughTasks", "too few"))
    assert table.validate("job_valid", None).reason == "NotEnoughTasks"
    table.add(0, "heavy", "overused", lambda queue: False)
    assert not table.any("overused", None).allowed
    table.add(1, "light", "overused", lambda queue: True)
    assert table.any("overused", None).plugin == "light"


def test_victims_are_the_intersection_of_a_tier():
    table = HookTable()
    table.add(0, "a", "preemptable", lambda p, cands: [c for c in cands if c % 2 == 0])
    table.add(0, "b", "preemptable", lambda p, cands: [c for c in cands if c > 2])
    table.add(1, "c", "preemptable", lambda p, cands: cands)
    assert table.victims("preemptable", None, [1, 2, 3, 4, 6]) == [4, 6]
    assert table.victims("preemptable", None, [1, 2]) == [1, 2]  # tier 0 empty: tier 1 decides


def test_filter_passes_rows_nobody_refuses_and_keeps_every_reason():
    table = HookTable()
    table.add(0, "a", "predicate", lambda: [("too small", np.array([True, False, False]))])
    table.add(1, "b", "predicate", lambda: [("tainted", np.array([True, True, False]))])
    passed, refusals = table.filter("predicate", 3)
    assert passed.tolist() == [False, False, True]
    assert [reason for reason, _ in refusals] == ["too small", "tainted"]
