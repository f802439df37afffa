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
            table.job_enqueueable.add(t, name, _vote(value, f"{name} says no"))
    verdict = table.job_enqueueable.vote(object())
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
        table.job_order.add(i, f"p{i}", lambda left, right, result=result: result)
    assert table.job_order.compare("l", "r") == expected


def test_validations_and_and_first_failure():
    table = HookTable()
    table.job_ready.add(0, "yes", lambda job: True)
    table.job_ready.add(1, "no", lambda job: False)
    assert table.job_ready.all(None).plugin == "no"
    table.job_valid.add(0, "ok", lambda job: None)
    table.job_valid.add(0, "bad", lambda job: ValidateResult(False, "NotEnoughTasks", "too few"))
    assert table.job_valid.validate(None).reason == "NotEnoughTasks"
    table.overused.add(0, "heavy", lambda queue: False)
    assert not table.overused.any(None).allowed
    table.overused.add(1, "light", lambda queue: True)
    assert table.overused.any(None).plugin == "light"


def test_victims_are_the_intersection_of_a_tier():
    table = HookTable()
    table.preemptable.add(0, "a", lambda p, cands: [c for c in cands if c % 2 == 0])
    table.preemptable.add(0, "b", lambda p, cands: [c for c in cands if c > 2])
    table.preemptable.add(1, "c", lambda p, cands: cands)
    assert table.preemptable.victims(None, [1, 2, 3, 4, 6]) == [4, 6]
    assert table.preemptable.victims(None, [1, 2]) == [1, 2]  # tier 0 empty: tier 1 decides


def test_filter_passes_rows_nobody_refuses_and_keeps_every_reason():
    table = HookTable()
    table.predicate.add(0, "a", lambda: [("too small", np.array([True, False, False]))])
    table.predicate.add(1, "b", lambda: [("tainted", np.array([True, True, False]))])
    passed, refusals = table.predicate.filter(3)
    assert passed.tolist() == [False, False, True]
    assert [reason for reason, _ in refusals] == ["too small", "tainted"]
