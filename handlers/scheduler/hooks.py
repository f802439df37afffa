"""Hook tables and their combining rules, written once for every hook family.

Where it sits: plugins register functions into a session's ``HookTable`` when
the session opens (``Plugin.open``); actions ask the table, never a plugin.
Each family is an attribute of the table (``ssn.hooks.job_order``), typed with
what its functions take and give, and has one combining rule, as in Volcano's
framework:

``compare``  (job/queue/task order) tiers and plugins in order; the first
             non-zero result wins; 0 if all abstain. A function may come with
             an order key (``add_keyed``): a value whose ``<`` and ``==`` say
             what the function says. When every function has one, the order
             is the tuple of the keys (``CompareHook.key``), which sorts and
             heaps compare in C instead of calling each function per pair.
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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, ParamSpec, TypeAlias, TypeVar

import numpy as np

from handlers.scheduler.api import JobInfo, NodeArrays, QueueInfo, TaskInfo

PERMIT, ABSTAIN, REJECT = 1, 0, -1


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


# The answers every question asked per task or job gives most often, made once (both are
# immutable): asking is then not paying for a new frozen dataclass each time.
PASSED = ValidateResult(True)
ALLOWED = Verdict(True)
NOT_ALLOWED = Verdict(False)
_PERMITTED: dict[str, Verdict] = {}  # plugin -> its permit (a vote's usual answer)

# What the functions of some families give back.
Refusal: TypeAlias = tuple[str, np.ndarray]  # (reason, mask of the node rows refused)
Vote: TypeAlias = tuple[int, str]  # (PERMIT, ABSTAIN or REJECT, message)
# The node rows a score is asked for: all of them (None), these (an array of rows), one (a row).
Rows: TypeAlias = np.ndarray | int | None
# Their scores (an array), or one score for all of them, or the one row's.
Score: TypeAlias = np.ndarray | float
NodeScore: TypeAlias = Callable[[TaskInfo, NodeArrays, Rows], Score]

F = TypeVar("F", bound=Callable[..., object])
T = TypeVar("T")
U = TypeVar("U")
Preemptor = TypeVar("Preemptor")
P = ParamSpec("P")


class Hook(Generic[F]):
    """One family's registered functions: all of them in registration order (``flat``),
    and the same per tier (``tiers``), each with the name of the plugin that gave it.
    The subclasses are the combining rules; the type says what a function of the
    family takes and gives, so registering a wrong one is a type error."""

    __slots__ = ("name", "flat", "tiers")

    def __init__(self, name: str) -> None:
        self.name = name  # the family's name, as the conf's switches name it
        self.flat: list[tuple[str, F]] = []
        self.tiers: list[list[tuple[str, F]]] = []

    def add(self, tier: int, plugin: str, fn: F) -> None:
        entry = (plugin, fn)
        self.flat.append(entry)
        tiers = self.tiers
        while len(tiers) <= tier:
            tiers.append([])
        tiers[tier].append(entry)

    def __bool__(self) -> bool:
        """Whether any plugin registered a function of this family."""
        return bool(self.flat)

    def plugins(self) -> set[str]:
        """The plugins that registered a function of this family."""
        return {plugin for plugin, _ in self.flat}


# The rules take their arguments by position, not ``*args``/``**kwargs``: the order and
# allocation questions are asked per task, and packing arguments would cost there.


class CompareHook(Hook[Callable[[T, T], int]]):
    __slots__ = ("keys",)

    def __init__(self, name: str) -> None:
        super().__init__(name)
        # Per function of ``flat``, in the same order: its order key, or None.
        self.keys: list[Callable[[T], object] | None] = []

    def add(self, tier: int, plugin: str, fn: Callable[[T, T], int]) -> None:
        super().add(tier, plugin, fn)
        self.keys.append(None)

    def add_keyed(self, tier: int, plugin: str, fn: Callable[[T, T], int], key: Callable[[T], object]) -> None:
        """Register ``fn`` with its order key: ``fn(l, r)`` is negative exactly when
        ``key(l) < key(r)`` and 0 exactly when ``key(l) == key(r)``, for as long as the items
        compared stay unchanged."""
        Hook.add(self, tier, plugin, fn)
        self.keys.append(key)

    def compare(self, left: T, right: T) -> int:
        """The first non-zero result; 0 if all abstain."""
        for _, fn in self.flat:
            result = fn(left, right)
            if result:
                return result
        return 0

    def key(self) -> Callable[[T], tuple[object, ...]] | None:
        """The order as one tuple per item (each function's key, in order), if every
        registered function has a key; None otherwise (``compare`` is then the order)."""
        if any(k is None for k in self.keys):
            return None
        keys = [k for k in self.keys if k is not None]
        if not keys:
            return lambda item: ()
        if len(keys) == 1:
            (k1,) = keys
            return lambda item: (k1(item),)
        if len(keys) == 2:
            k1, k2 = keys
            return lambda item: (k1(item), k2(item))
        if len(keys) == 3:
            k1, k2, k3 = keys
            return lambda item: (k1(item), k2(item), k3(item))
        return lambda item: tuple([k(item) for k in keys])


class AllHook(Hook[Callable[[T], bool]]):
    __slots__ = ()

    def all(self, arg: T) -> Verdict:
        """Every function agrees (AND); the first refusal names its plugin."""
        for plugin, fn in self.flat:
            if not fn(arg):
                return Verdict(False, plugin)
        return ALLOWED


class AllPairHook(Hook[Callable[[T, U], bool]]):
    __slots__ = ()

    def all(self, first: T, second: U) -> Verdict:
        """``AllHook.all`` for functions of two arguments."""
        for plugin, fn in self.flat:
            if not fn(first, second):
                return Verdict(False, plugin)
        return ALLOWED


class AnyHook(Hook[Callable[[T], bool]]):
    __slots__ = ()

    def any(self, arg: T) -> Verdict:
        """One yes is enough (OR), and names its plugin."""
        for plugin, fn in self.flat:
            if fn(arg):
                return Verdict(True, plugin)
        return NOT_ALLOWED


class FilterHook(Hook[Callable[P, Iterable[Refusal]]]):
    __slots__ = ()

    def filter(self, count: int, *args: P.args, **kwargs: P.kwargs) -> tuple[np.ndarray, list[Refusal]]:
        """Rows (of ``count``) that no function refuses, and every refusal in order."""
        refusals: list[Refusal] = []
        for _, fn in self.flat:
            refusals.extend(fn(*args, **kwargs))
        passed = np.ones(count, dtype=bool)
        for _, mask in refusals:
            passed &= ~mask
        return passed, refusals


class ValidateHook(Hook[Callable[[T], ValidateResult | None]]):
    __slots__ = ()

    def validate(self, arg: T) -> ValidateResult:
        """The first failing result (a function returning None has nothing against)."""
        for _, fn in self.flat:
            result = fn(arg)
            if result is not None and not result.passed:
                return result
        return PASSED


class VoteHook(Hook[Callable[[T], Vote]]):
    __slots__ = ()

    def vote(self, arg: T) -> Verdict:
        """Tier by tier: a reject refuses at once, a tier with a permit allows and stops
        there, a tier of abstentions passes to the next; nobody objecting allows."""
        for tier in self.tiers:
            permitted = ""
            for plugin, fn in tier:
                result, message = fn(arg)
                if result == REJECT:
                    return Verdict(False, plugin, message)
                if result == PERMIT and not permitted:
                    permitted = plugin
            if permitted:
                verdict = _PERMITTED.get(permitted)
                if verdict is None:
                    verdict = _PERMITTED[permitted] = Verdict(True, permitted)
                return verdict
        return ALLOWED


class SumHook(Hook[NodeScore]):
    __slots__ = ()

    def sum(self, task: TaskInfo, nodes: NodeArrays, rows: Rows) -> Score:
        """Every plugin's scores added up."""
        total: Score = 0.0
        for _, fn in self.flat:
            total = total + fn(task, nodes, rows)
        return total


class NotifyHook(Hook[Callable[[T], None]]):
    __slots__ = ()

    def notify(self, arg: T) -> None:
        """Every function is told; nothing is combined."""
        for _, fn in self.flat:
            fn(arg)


class VictimsHook(Hook[Callable[[Preemptor, Sequence[TaskInfo]], Iterable[TaskInfo]]]):
    __slots__ = ()

    def victims(self, preemptor: Preemptor, candidates: Sequence[TaskInfo]) -> list[TaskInfo]:
        """Per tier the candidates every function picks (the intersection, in the order
        of the first); the first tier with a non-empty result decides."""
        for tier in self.tiers:
            chosen: list[TaskInfo] | None = None
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


class HookTable:
    """A session's hooks: one typed family each, named as the conf's switches name them."""

    __slots__ = (
        "job_order", "queue_order", "task_order", "predicate", "node_order", "job_valid", "job_ready",
        "job_starving", "allocatable", "overused", "job_pipelined", "job_enqueueable", "job_enqueued",
        "preemptable", "reclaimable", "victim",
    )

    def __init__(self) -> None:
        self.job_order: CompareHook[JobInfo] = CompareHook("job_order")
        self.queue_order: CompareHook[QueueInfo] = CompareHook("queue_order")
        self.task_order: CompareHook[TaskInfo] = CompareHook("task_order")
        self.predicate: FilterHook[[TaskInfo, NodeArrays]] = FilterHook("predicate")
        self.node_order = SumHook("node_order")
        self.job_valid: ValidateHook[JobInfo] = ValidateHook("job_valid")
        self.job_ready: AllHook[JobInfo] = AllHook("job_ready")
        self.job_starving: AllHook[JobInfo] = AllHook("job_starving")
        self.allocatable: AllPairHook[QueueInfo, TaskInfo] = AllPairHook("allocatable")
        self.overused: AnyHook[QueueInfo] = AnyHook("overused")
        self.job_pipelined: VoteHook[JobInfo] = VoteHook("job_pipelined")
        self.job_enqueueable: VoteHook[JobInfo] = VoteHook("job_enqueueable")
        self.job_enqueued: NotifyHook[JobInfo] = NotifyHook("job_enqueued")
        self.preemptable: VictimsHook[TaskInfo] = VictimsHook("preemptable")
        self.reclaimable: VictimsHook[TaskInfo] = VictimsHook("reclaimable")
        # shuffle's: no preemptor; the candidates are every pod that may be evicted
        self.victim: VictimsHook[None] = VictimsHook("victim")
