"""proportion: fair share between queues by weight (Volcano's water-filling of deserved shares).

Where it sits: a scheduler plugin (see ``plugins.base``). At session open each
queue gets a *deserved* share of the cluster:

1. ``realCapability`` = min(capability, total - all guarantees + own guarantee);
2. the cluster total is handed out in rounds by weight among the queues that
   have podgroups and still want more; each round a queue's
   deserved is capped by its realCapability and by its request (what it holds
   plus what its pending pods ask), and floored at its guarantee; a queue
   whose request is met drops out; rounds stop when nothing is left to hand
   out or nothing changed.

Hooks: queue order (queue ``priority`` first, then the smaller share of
what the queue holds and was admitted in this session over its *entitled*
share), overused (allocated has reached deserved in every
resource: the queue gets nothing more this session), allocatable (a task fits
only if the queue stays within deserved on the resources the task asks for),
job enqueueable (the podgroup's ``minResources`` plus what the queue holds
and has admitted, less what its jobs hold beyond their own ``minResources``,
stays within realCapability, as Volcano's), reclaimable (victims while
their queue, less the victims already taken, is above its deserved share in
some resource: the last victim may take it below, as in Volcano).

The entitled share is the same water-filling with the queue's Pending
podgroups' ``minResources`` added to its request: a queue whose jobs are not
admitted yet (and so have no pods) still counts as wanting its weight's
share, so enqueue, which takes turns in queue order, admits work to queues
by weight (1:3 weights give about 1:3 admissions) instead of admitting
equally to queues that all hold nothing yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

from handlers.scheduler.api import ALLOCATED, JobInfo, QueueInfo, TaskInfo, share
from handlers.scheduler.hooks import PERMIT, REJECT
from handlers.scheduler.plugins.base import Plugin
from handlers.scheduler.snapshot import elastic
from schemas.quantity import format_quantity

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

INF = float("inf")
MAX_ROUNDS = 1000


def le(a: float, b: float) -> bool:
    return a <= b + 1e-9 * abs(b) + 1e-6


def _add(target: dict[str, float], amounts: Mapping[str, float], sign: int = 1) -> None:
    for name, amount in amounts.items():
        if name != "pods":
            target[name] = target.get(name, 0.0) + sign * amount


def admitted_share(job: JobInfo) -> dict[str, float]:
    """What admitting ``job`` adds to its queue's share for ordering, until the next session.

    Enqueue places nothing, so a queue's share for ordering also counts the
    ``minResources`` of the jobs admitted to it in this session; only of
    those without pods yet (the job controller creates them after
    admission): a job whose pods exist counts as its pods are placed, never
    twice.
    """
    if job.tasks:
        return {}
    return {d: float(v) for d, v in job.min_resources.items() if d != "pods"}


class QueueAttr:
    def __init__(self, queue: QueueInfo) -> None:
        self.name = queue.name
        self.weight = queue.weight
        self.capability: Mapping[str, float] = queue.capability
        self.guarantee = {d: float(v) for d, v in queue.guarantee.items() if d != "pods"}
        self.real_capability: dict[str, float] = {}
        self.allocated: dict[str, float] = {}
        self.request: dict[str, float] = {}
        self.inqueue: dict[str, float] = {}
        self.elastic: dict[str, float] = {}  # what its jobs hold beyond their minResources
        self.deserved: dict[str, float] = {}
        self.admitted: dict[str, float] = {}  # minResources admitted in this session
        self.entitled: dict[str, float] = {}
        self.share = 0.0


# The last few water-fillings, by everything they read (see ``water_fill``): sessions
# one after another often ask for one they asked for shortly before (the same
# queues wanting the same amounts: the entitled and deserved shares alternate).
_Amounts: TypeAlias = tuple[tuple[str, float], ...]
# (total, guaranteed, per queue: name, weight, capability, guarantee, request)
_FillKey: TypeAlias = tuple[_Amounts, _Amounts, tuple[tuple[str, int, _Amounts, _Amounts, _Amounts], ...]]
_FILLED: dict[_FillKey, list[tuple[dict[str, float], dict[str, float]]]] = {}
_FILLED_KEPT = 16


def water_fill(attrs: list[QueueAttr], total: dict[str, float], guaranteed: dict[str, float] | None = None) -> None:
    """Set ``deserved`` of every queue in ``attrs`` (Volcano's proportion algorithm).

    ``guaranteed`` is the sum of every queue's guarantee (default: those in ``attrs``).
    The result depends only on the queues' names, weights, capabilities,
    guarantees and requests, the total and ``guaranteed``: the last few are
    kept by those, and one asked for again is copied instead of filled again
    (the same values, as each is a pure function of what it was filled from).
    """
    if guaranteed is None:
        guaranteed = {d: sum(a.guarantee.get(d, 0.0) for a in attrs) for d in sorted(total)}
    key: _FillKey = (
        tuple(total.items()),
        tuple(guaranteed.items()),
        tuple(
            (a.name, a.weight, tuple(a.capability.items()), tuple(a.guarantee.items()), tuple(a.request.items()))
            for a in attrs
        ),
    )
    filled = _FILLED.pop(key, None)
    if filled is None:
        _water_fill(attrs, total, guaranteed)
        filled = [(a.real_capability, a.deserved) for a in attrs]
        if len(_FILLED) >= _FILLED_KEPT:
            del _FILLED[next(iter(_FILLED))]  # the least recently asked for
    _FILLED[key] = filled
    for a, (real_capability, deserved) in zip(attrs, filled, strict=True):
        a.real_capability, a.deserved = dict(real_capability), dict(deserved)


def _water_fill(attrs: list[QueueAttr], total: dict[str, float], guaranteed: dict[str, float]) -> None:
    dims = sorted(total)
    for a in attrs:
        a.real_capability = {
            d: min(float(a.capability.get(d, INF)), total[d] - guaranteed[d] + a.guarantee.get(d, 0.0)) for d in dims
        }
        a.deserved = {d: 0.0 for d in dims}
    remaining = dict(total)
    meet: set[str] = set()
    for _ in range(MAX_ROUNDS):
        weight = sum(a.weight for a in attrs if a.name not in meet)
        if weight == 0:
            break
        before = dict(remaining)
        increased = {d: 0.0 for d in dims}
        decreased = {d: 0.0 for d in dims}
        for a in attrs:
            if a.name in meet:
                continue
            old = a.deserved
            new = {}
            for d in dims:
                value = old[d] + remaining[d] * a.weight / weight
                value = min(value, a.real_capability[d], a.request.get(d, 0.0))
                new[d] = max(value, a.guarantee.get(d, 0.0))
                diff = new[d] - old[d]
                if diff > 0:
                    increased[d] += diff
                else:
                    decreased[d] -= diff
            if all(le(a.request.get(d, 0.0), new[d]) for d in dims) or new == old:
                meet.add(a.name)
            a.deserved = new
        for d in dims:
            remaining[d] = remaining[d] - increased[d] + decreased[d]
        if all(v <= 1e-6 for v in remaining.values()) or all(
            abs(remaining[d] - before[d]) <= 1e-6 for d in dims
        ):
            break


class Proportion(Plugin):
    name = "proportion"

    def open(self, ssn: Session) -> None:
        total = {d: float(v) for d, v in ssn.total.items() if d != "pods"}
        self.attrs: dict[str, QueueAttr] = {name: QueueAttr(q) for name, q in ssn.queues.items()}
        # What settled jobs hold, per queue, summed as whole numbers and added once below:
        # every amount is a whole number, so the floats are the same as adding job by job.
        settled: dict[str, dict[str, int]] = {}
        # The minResources of Pending podgroups, per queue (see ``_entitle``).
        wanting: dict[str, dict[str, float]] = {}
        with_jobs = set()
        attrs = self.attrs
        for job in ssn.unsettled:  # the settled podgroups' kept copies are summed below
            queue = job.queue
            with_jobs.add(queue)
            attr = attrs.get(queue)
            if attr is None:
                continue
            phase, wanted = job.phase, job.min_resources
            if phase == "Pending" and wanted:
                _add(wanting.setdefault(queue, {}), wanted)
            if job._deferred is not None:  # settled: its tasks are all allocated
                # Every task allocated: their requests summed are the job's allocation.
                held = settled.get(queue)
                if held is None:
                    held = settled[queue] = {}
                for d, v in job.allocated.items():
                    held[d] = held.get(d, 0) + v
            else:
                for task in job.tasks:
                    if task.status in ALLOCATED:
                        _add(attr.allocated, task.req)
                        _add(attr.request, task.req)
                    elif task.status == "Pending":
                        _add(attr.request, task.req)
            _add(attr.elastic, elastic(job))
            if phase == "Inqueue":
                _add(attr.inqueue, wanted)
            elif phase == "Running" and wanted and job.allocated_num() >= job.min_member:
                allocated, inqueue = job.allocated, attr.inqueue
                for d, need in wanted.items():
                    gap = need - allocated.get(d, 0)
                    if gap > 0:
                        inqueue[d] = inqueue.get(d, 0.0) + gap
        for queue, sums in ssn.settled.items():  # every amount a whole number: the same floats
            with_jobs.add(queue)
            attr = attrs.get(queue)
            if attr is None:
                continue
            if sums.pending:
                _add(wanting.setdefault(queue, {}), sums.pending)
            held = settled.get(queue)
            if held is None:
                held = settled[queue] = {}
            for d, v in sums.held.items():
                held[d] = held.get(d, 0) + v
            _add(attr.inqueue, sums.inqueue)
            _add(attr.inqueue, sums.missing)
            _add(attr.elastic, sums.elastic)
        for name, held in settled.items():
            attr = self.attrs[name]
            _add(attr.allocated, held)
            _add(attr.request, held)
        # As in Volcano, only queues with podgroups take part; every guarantee counts.
        guaranteed = {d: sum(a.guarantee.get(d, 0.0) for a in self.attrs.values()) for d in total}
        taking_part = [a for a in self.attrs.values() if a.name in with_jobs]
        if not self._entitle(wanting, taking_part, total, guaranteed):
            water_fill(taking_part, total, guaranteed)
        for attr in self.attrs.values():
            self._reshare(attr)

        self.register_order(ssn.hooks.queue_order, self._order, self._key)
        self.register(ssn.hooks.overused, self._overused)
        self.register(ssn.hooks.allocatable, self._allocatable)
        self.register(ssn.hooks.job_enqueueable, self._enqueueable)
        self.register(ssn.hooks.job_enqueued, lambda job: self._admit(job))
        self.register(ssn.hooks.reclaimable, self._reclaimable)
        self.on_allocate = lambda task: self._account(task, 1)
        self.on_deallocate = lambda task: self._account(task, -1)

    def _entitle(
        self,
        wanting: dict[str, dict[str, float]],
        attrs: list[QueueAttr],
        total: dict[str, float],
        guaranteed: dict[str, float],
    ) -> bool:
        """The deserved shares if every Pending podgroup's ``minResources`` (``wanting``, per
        queue) were asked for too.

        True when no Pending podgroup asks for anything: then the entitled shares are the
        deserved ones, and both are set here by one water-filling."""
        if not any(v for w in wanting.values() for v in w.values()):
            # Nothing more is wanted: the same water-filling as the deserved shares, done once.
            water_fill(attrs, total, guaranteed)
            for a in attrs:
                a.entitled = dict(a.deserved)
            return True
        shadows = []
        for a in attrs:
            shadow = QueueAttr.__new__(QueueAttr)
            shadow.__dict__.update(a.__dict__)
            shadow.request = dict(a.request)
            for d, v in wanting.get(a.name, {}).items():
                shadow.request[d] = shadow.request.get(d, 0.0) + v
            shadows.append(shadow)
        water_fill(shadows, total, guaranteed)
        for a, shadow in zip(attrs, shadows, strict=True):
            a.entitled = shadow.deserved
        return False

    def _reshare(self, attr: QueueAttr) -> None:
        held = attr.allocated
        if attr.admitted:
            held = dict(held)
            for d, v in attr.admitted.items():
                held[d] = held.get(d, 0.0) + v
        attr.share = share(held, attr.entitled)

    def _order(self, left: QueueInfo, right: QueueInfo) -> int:
        if left.priority != right.priority:
            return -1 if left.priority > right.priority else 1
        ls, rs = self.attrs[left.name].share, self.attrs[right.name].share
        return -1 if ls < rs else (1 if ls > rs else 0)

    def _key(self, queue: QueueInfo) -> tuple[int, float]:
        """``_order``'s key: the higher priority first, then the smaller share (finite)."""
        return -queue.priority, self.attrs[queue.name].share

    def _overused(self, queue: QueueInfo) -> bool:
        attr = self.attrs[queue.name]
        return all(le(v, attr.allocated.get(d, 0.0)) for d, v in attr.deserved.items())

    def _allocatable(self, queue: QueueInfo, task: TaskInfo) -> bool:
        attr = self.attrs[queue.name]
        for d, amount in task.req.items():
            if d != "pods" and amount > 0:
                if not le(attr.allocated.get(d, 0.0) + amount, attr.deserved.get(d, 0.0)):
                    return False
        return True

    def _enqueueable(self, job: JobInfo) -> tuple[int, str]:
        attr = self.attrs.get(job.queue)
        if attr is None or not job.min_resources:
            return PERMIT, ""
        for d, need in sorted(job.min_resources.items()):
            limit = attr.real_capability.get(d, 0.0)
            # Volcano: ``minReq.Add(attr.allocated).Add(attr.inqueue).Sub(attr.elastic)``: what the
            # queue's jobs hold beyond their minimums may be taken back, so it does not count.
            used = need + attr.allocated.get(d, 0.0) + attr.inqueue.get(d, 0.0) - attr.elastic.get(d, 0.0)
            if not le(used, limit):
                return REJECT, (
                    f"queue {job.queue} resource quota insufficient: {d} would be "
                    f"{format_quantity(int(used), d)} of {format_quantity(int(limit), d)}"
                )
        return PERMIT, ""

    def _reclaimable(self, reclaimer: TaskInfo, candidates: Sequence[TaskInfo]) -> list[TaskInfo]:
        """Victims, in the order offered, while their queue (less the victims taken) is above its deserved share.

        Volcano: ``AddReclaimableFn`` in pkg/scheduler/plugins/proportion/proportion.go,
        ``if !allocated.LessEqual(attr.deserved, api.Zero) { allocated.Sub(reclaimee.Resreq); ... }``:
        a queue above its deserved share in any resource gives up a victim, and the last one
        taken may leave it below that share."""
        left: dict[str, dict[str, float]] = {}
        victims = []
        for c in candidates:
            attr = self.attrs.get(c.job.queue)
            if attr is None:
                continue
            held = left.setdefault(attr.name, dict(attr.allocated))
            if all(le(v, attr.deserved.get(d, 0.0)) for d, v in held.items()):
                continue  # within its deserved share in every resource
            for d, v in c.req.items():
                if d != "pods":
                    held[d] = held.get(d, 0.0) - v
            victims.append(c)
        return victims

    def queue_share(self, name: str) -> float:
        """How far the queue is over (above 1) or under its deserved share."""
        attr = self.attrs.get(name)
        return attr.share if attr is not None else 0.0

    def deserved(self, name: str) -> dict[str, float]:
        attr = self.attrs.get(name)
        return attr.deserved if attr is not None else {}

    def _admit(self, job: JobInfo) -> None:
        attr = self.attrs.get(job.queue)
        if attr is not None:
            _add(attr.inqueue, job.min_resources)
            _add(attr.admitted, admitted_share(job))
            self._reshare(attr)

    def _account(self, task: TaskInfo, sign: int) -> None:
        attr = self.attrs.get(task.job.queue)
        if attr is not None:
            _add(attr.allocated, task.req, sign)
            self._reshare(attr)

