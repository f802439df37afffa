"""Hook tables and their combining rules, written once for every hook family.

Where it sits: plugins register functions into a session's ``HookTable`` when
the session opens (``Plugin.open``); actions ask the table, never a plugin.
Each family has one combining rule, as in Volcano's framework:

``compare``  (job/queue/task order) tiers and plugins in order; the first
             non-zero result wins; 0 if all abstain.
``all``      (job ready, job starving, allocatable) a validation: every
             registered function must agree (AND); the first refusal names
             the plugin.
``filter``   (predicate) the same AND over all nodes at once: each function
             returns ``(reason, mask)`` pairs marking the nodes it refuses; a
             node passes when no function refuses it.
``any``      (overused) one yes is enough (OR).
``validate`` (job valid) the first failing ``ValidateResult`` wins.
``vote``     (job enqueueable, job pipelined) each function returns
             ``PERMIT``, ``ABSTAIN`` or ``REJECT`` with a message; a reject
             anywhere in the current tier refuses at once, a tier with a permit
             allows and stops there, a tier of abstentions passes to the next;
             nobody objecting at all allows.
``sum``      (node order) scores add up over all plugins.
``notify``   (job enqueued) every function is told; nothing is combined.
``victims``  (preemptable, reclaimable, victim) per tier the candidates every
             plugin accepts (intersection); the first tier with a non-empty
             result decides.

A plugin's hook is registered only if its conf switch for that family is not
``false`` (``enabledJobOrder``, ``enabledPredicate``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

PERMIT, ABSTAIN, REJECT = 1, 0, -1

COMBINE: dict[str, str] = {
    "job_order": "compare",
    "queue_order": "compare",
    "task_order": "compare",
    "predicate": "filter",
    "node_order": "sum",
    "job_valid": "validate",
    "job_ready": "all",
    "job_starving": "all",
    "allocatable": "all",
    "overused": "any",
    "job_pipelined": "vote",
    "job_enqueueable": "vote",
    "job_enqueued": "notify",
    "preemptable": "victims",
    "reclaimable": "victims",
    "victim": "victims",
}


@dataclass(frozen=True)
class ValidateResult:
    passed: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Verdict:
    """The combined answer of a vote or validation, and who gave it."""

    allowed: bool
    plugin: str = ""
    message: str = ""


Entry = tuple[str, Callable[..., Any]]


class HookTable:
    def __init__(self) -> None:
        self.tiers: dict[str, list[list[Entry]]] = {family: [] for family in COMBINE}
        self.flat: dict[str, list[Entry]] = {family: [] for family in COMBINE}

    def add(self, tier: int, plugin: str, family: str, fn: Callable[..., Any]) -> None:
        flat = self.flat.get(family)
        if flat is None:
            raise KeyError(f"unknown hook family {family!r}")
        entry = (plugin, fn)
        flat.append(entry)
        tiers = self.tiers[family]
        while len(tiers) <= tier:
            tiers.append([])
        tiers[tier].append(entry)

    def has(self, family: str) -> bool:
        return bool(self.flat[family])

    # --- the combining rules ------------------------------------------------

    def compare(self, family: str, left: Any, right: Any) -> int:
        for _, fn in self.flat[family]:
            result = fn(left, right)
            if result:
                return result
        return 0

    def all(self, family: str, *args: Any) -> Verdict:
        for plugin, fn in self.flat[family]:
            if not fn(*args):
                return Verdict(False, plugin)
        return Verdict(True)

    def filter(self, family: str, count: int, *args: Any) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
        """Rows (of ``count``) that no function refuses, and every refusal in order."""
        refusals: list[tuple[str, np.ndarray]] = []
        for _, fn in self.flat[family]:
            refusals.extend(fn(*args))
        passed = np.ones(count, dtype=bool)
        for _, mask in refusals:
            passed &= ~mask
        return passed, refusals

    def any(self, family: str, *args: Any) -> Verdict:
        for plugin, fn in self.flat[family]:
            if fn(*args):
                return Verdict(True, plugin)
        return Verdict(False)

    def validate(self, family: str, *args: Any) -> ValidateResult:
        for _, fn in self.flat[family]:
            result = fn(*args)
            if result is not None and not result.passed:
                return result
        return ValidateResult(True)

    def vote(self, family: str, *args: Any) -> Verdict:
        for tier in self.tiers[family]:
            permitted = ""
            for plugin, fn in tier:
                result, message = fn(*args)
                if result == REJECT:
                    return Verdict(False, plugin, message)
                if result == PERMIT and not permitted:
                    permitted = plugin
            if permitted:
                return Verdict(True, permitted)
        return Verdict(True)

    def sum(self, family: str, *args: Any) -> np.ndarray | float:
        total: np.ndarray | float = 0.0
        for _, fn in self.flat[family]:
            total = total + fn(*args)
        return total

    def notify(self, family: str, *args: Any) -> None:
        for _, fn in self.flat[family]:
            fn(*args)

    def victims(self, family: str, preemptor: Any, candidates: list[Any]) -> list[Any]:
        for tier in self.tiers[family]:
            chosen: list[Any] | None = None
            for _, fn in tier:
                picked = fn(preemptor, candidates)
                if chosen is None:
                    chosen = list(picked)
                else:
                    keep = {id(c) for c in picked}
                    chosen = [c for c in chosen if id(c) in keep]
            if chosen:
                return chosen
        return []
