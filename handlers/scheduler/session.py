"""One scheduling session: open over a snapshot, run the actions, close into decisions.

Where it sits: ``SchedulerHandler.decide`` runs one ``Session`` per
``SchedulingRequested``. Opening copies the cluster state (``snapshot``),
marks the podgroups that stay unschedulable because nothing they depend on
changed, gives back Inqueue reservations that timed out, and opens the
plugins tier by tier. Actions then read the session through its hook tables
and change it only through ``Statement``. Closing turns what was committed
into one list of decision events: enqueues, binds and pipelines in the order
they were made, then podgroup phase changes and unschedulable verdicts sorted
by podgroup name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import cmp_to_key
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from handlers.scheduler import phases
from handlers.scheduler.api import FitErrors, JobInfo, QueueInfo, TaskInfo
from handlers.scheduler.conf import SchedulerConf, duration_argument_ms
from handlers.scheduler.devices import empty, fits, unfit_message
from handlers.scheduler.hooks import HookTable, Refusal, ValidateResult, Verdict
from handlers.scheduler.placement import Carried
from handlers.scheduler.plugins import PLUGINS
from handlers.scheduler.plugins.base import Plugin
from handlers.scheduler.plugins.predicates_pods import rules_of
from handlers.scheduler.snapshot import Snapshot
from handlers.scheduler.snapshot import build as build  # re-exported: the handler opens sessions with it
from projections.cluster_model import ClusterState
from schemas.events import PodGroupPhaseChanged, PodGroupUnschedulable
from schemas.events.base import Event

if TYPE_CHECKING:
    from handlers.scheduler.placement import Placement, PlacementKey


def _fallback(left_key: tuple[int | str, ...], right_key: tuple[int | str, ...]) -> int:
    return -1 if left_key < right_key else (1 if left_key > right_key else 0)


class Session:
    def __init__(self, state: ClusterState, conf: SchedulerConf, now: int, snap: Snapshot | None = None) -> None:
        """``snap``: the snapshot of ``state`` if already built (``build``), else built here."""
        self.state = state
        self.conf = conf
        self.now = now
        if snap is None:
            snap = build(state)
        if places_nothing(snap, conf):
            snap.share()  # it only reads its node and device arrays
        else:
            snap.own()  # the session changes its node and device arrays
        self.nodes = snap.nodes
        # The nodes' GPU devices (``handlers.scheduler.devices``), as the statements change them.
        self.devices = snap.devices if snap.devices is not None else empty(len(snap.nodes))
        self.jobs: dict[str, JobInfo] = snap.jobs
        self.queues: dict[str, QueueInfo] = snap.queues
        self.total = snap.total
        # Per queue, what the settled podgroups' kept copies add up to, and the other podgroups
        # (``snapshot.QueueSums``): read at plugin open, before any action changes a podgroup.
        self.settled = snap.settled
        self.unsettled = snap.unsettled
        self.hooks = HookTable()
        self.decisions: list[Event] = []
        self.unschedulable: dict[str, PodGroupUnschedulable] = {}
        self.enqueue_enabled = "enqueue" in conf.actions
        self.placements: dict[PlacementKey, Placement] = {}
        # The placements carried on between sessions (``placement.Carried.of``; False: not asked yet).
        self.carried: Carried | None | Literal[False] = False
        self._static: dict[bytes, tuple[np.ndarray, list[Refusal]]] = {}

        self.plugins: list[Plugin] = []
        for t, tier in enumerate(conf.tiers):
            for option in tier.plugins:
                self.plugins.append(PLUGINS[option.name](option, t))
        # The plugin that picks a task's GPU devices (the conf's first ``fgd``), if any.
        self.device_chooser: Plugin | None = next((p for p in self.plugins if p.name == "fgd"), None)
        self._mark_unchanged()
        if self.enqueue_enabled:
            self._expire_reservations()
        for plugin in self.plugins:
            plugin.open(self)
        self._on_allocate = [p.on_allocate for p in self.plugins if p.on_allocate is not None]
        self._orders()
        self._on_deallocate = [p.on_deallocate for p in self.plugins if p.on_deallocate is not None]

    # --- open --------------------------------------------------------------

    def _mark_unchanged(self) -> None:
        """A podgroup found unschedulable is left alone until something it depends on changes."""
        for job in self.jobs.values():
            rec = self.state.podgroups[job.name]
            verdict = rec.unschedulable
            if verdict is None or verdict[0] != self.state.fingerprint(rec):
                continue
            deadlines = [d for d in (p.deadline(job) for p in self.plugins) if d is not None]
            if any(verdict[1] < d <= self.now for d in deadlines):
                continue  # a waiting-time limit passed since: try again
            job.unchanged = True

    def _expire_reservations(self) -> None:
        timeout = duration_argument_ms(self.conf.action_arguments("enqueue").get("inqueue-timeout", 0))
        if timeout <= 0:
            return
        expired = False
        for job in self.jobs.values():
            if job.phase != "Inqueue" or job.inqueue_at < 0 or self.now - job.inqueue_at < timeout:
                continue
            if job.ready_num() or job.counts["Releasing"]:
                continue
            job.phase = "Pending"
            job.timed_out = True
            expired = True
            self.emit(
                PodGroupPhaseChanged(
                    podgroup=job.name,
                    job=job.job,
                    queue=job.queue,
                    rule="enqueue.inqueue-timeout",
                    phase="Pending",
                    previous="Inqueue",
                    reason="InqueueTimeout",
                )
            )
        if expired:  # room was given back: podgroups refused before may fit now
            for job in self.jobs.values():
                job.unchanged = False

    # --- orders ------------------------------------------------------------

    def _orders(self) -> None:
        """The sort keys of the job, queue and task orders (the order hooks, then creation time
        and name): tuples when every function of the family has an order key, so sorts and
        heaps compare in C; else keys that call the functions per comparison. Both order
        alike; a tuple is the item's place when the key is taken, which is what a heap
        needs, since an item's order changes only while it is out of its heap."""
        job = self.hooks.job_order.key()
        queue = self.hooks.queue_order.key()
        task = self.hooks.task_order.key()
        self.job_key: Callable[[JobInfo], Any] = (
            cmp_to_key(self.job_compare) if job is None else lambda j: (job(j), j.created_at, j.name)
        )
        self.queue_key: Callable[[QueueInfo], Any] = (
            cmp_to_key(self.queue_compare) if queue is None else lambda q: (queue(q), q.created_at, q.name)
        )
        self.task_key: Callable[[TaskInfo], Any] = (
            cmp_to_key(self.task_compare)
            if task is None
            else lambda t: (task(t), t.created_at, t.role, t.index, t.name)
        )

    def job_compare(self, left: JobInfo, right: JobInfo) -> int:
        return self.hooks.job_order.compare(left, right) or _fallback(
            (left.created_at, left.name), (right.created_at, right.name)
        )

    def queue_compare(self, left: QueueInfo, right: QueueInfo) -> int:
        return self.hooks.queue_order.compare(left, right) or _fallback(
            (left.created_at, left.name), (right.created_at, right.name)
        )

    def task_compare(self, left: TaskInfo, right: TaskInfo) -> int:
        return self.hooks.task_order.compare(left, right) or _fallback(
            (left.created_at, left.role, left.index, left.name),
            (right.created_at, right.role, right.index, right.name),
        )

    # --- questions actions ask ---------------------------------------------

    def job_valid(self, job: JobInfo) -> ValidateResult:
        return self.hooks.job_valid.validate(job)

    def job_ready(self, job: JobInfo) -> bool:
        return self.hooks.job_ready.all(job).allowed

    def job_pipelined(self, job: JobInfo) -> bool:
        return self.hooks.job_pipelined.vote(job).allowed

    def job_enqueueable(self, job: JobInfo) -> Verdict:
        return self.hooks.job_enqueueable.vote(job)

    def job_enqueued(self, job: JobInfo) -> None:
        self.hooks.job_enqueued.notify(job)

    def allocatable(self, queue: QueueInfo, task: TaskInfo) -> Verdict:
        return self.hooks.allocatable.all(queue, task)

    def overused(self, queue: QueueInfo) -> bool:
        return self.hooks.overused.any(queue).allowed

    def static_filter(self, task: TaskInfo) -> tuple[np.ndarray, list[Refusal]]:
        """Nodes passing every predicate (one evaluation per constraint signature), and the inter-pod
        affinity rules as they stand when the session has any (``plugins.predicates_pods``)."""
        hit = self._static.get(task.signature)
        if hit is None:
            carried = Carried.of(self)  # under its conditions the predicates' verdicts are kept too
            if carried is not None:
                hit = self._static[task.signature] = carried.predicates(self, task)
            else:
                hit = self._static[task.signature] = self.hooks.predicate.filter(len(self.nodes), task, self.nodes)
        rules = rules_of(self)
        return hit if rules is None else rules.filter(task, hit)

    def node_scores(self, task: TaskInfo, rows: np.ndarray | None = None) -> np.ndarray:
        scores = self.hooks.node_order.sum(task, self.nodes, rows)
        if isinstance(scores, float):
            n = len(self.nodes) if rows is None else len(rows)
            return np.full(n, scores)
        return scores

    def fit_errors(self, task: TaskInfo) -> FitErrors:
        ok, fails = self.static_filter(task)
        nodes = self.nodes
        reasons: Counter[str] = Counter()
        seen = np.zeros(len(nodes), dtype=bool)
        for reason, mask in fails:
            first = mask & ~seen
            count = int(first.sum())
            if count:
                reasons[reason] += count
            seen |= mask
        for j in task.nz.tolist():
            short = ok & (nodes.future[:, j] < task.vec[j])
            count = int(short.sum())
            if count:
                dim = nodes.dims[j]
                reasons["Too many pods" if dim == "pods" else f"Insufficient {dim}"] += count
            seen |= short
        request = task.gpu
        if request is not None:
            # The node totals would do, but no device has the share (or whole devices) on its own.
            devices = self.devices
            short = ok & ~seen & ~fits(devices.future, devices.mem_future, request)
            rows = np.flatnonzero(short).tolist()
            told = Counter(unfit_message(devices.future[i], request) for i in rows)
            if len(told) > 3:  # many different device states: one line for them all
                told = Counter({"insufficient GPU on any one device": len(rows)})
            reasons.update(told)
        return FitErrors(task.name, reasons, len(nodes))

    # --- bookkeeping actions and statements use ------------------------------

    def allocated(self, task: TaskInfo) -> None:
        held = task.job.allocated
        for name, amount in task.req.items():
            if name != "pods":
                held[name] = held.get(name, 0) + amount
        for fn in self._on_allocate:
            fn(task)

    def deallocated(self, task: TaskInfo) -> None:
        held = task.job.allocated
        for name, amount in task.req.items():
            if name != "pods":
                held[name] = held.get(name, 0) - amount
        for fn in self._on_deallocate:
            fn(task)

    def emit(self, event: Event) -> None:
        self.decisions.append(event)

    def mark_unschedulable(self, job: JobInfo, reason: str, message: str, rule: str) -> None:
        self.unschedulable[job.name] = PodGroupUnschedulable(
            podgroup=job.name, job=job.job, queue=job.queue, rule=rule, reason=reason, message=message
        )

    # --- close -------------------------------------------------------------

    def close(self) -> list[Event]:
        for plugin in self.plugins:
            plugin.close(self)
        if self.carried:
            for place in self.placements.values():
                place.detach()
        events = list(self.decisions)
        events.extend(phase_changes(self.jobs, self.unschedulable))
        events.extend(self.unschedulable[name] for name in sorted(self.unschedulable))
        return events


def phase_changes(jobs: dict[str, JobInfo], unschedulable: dict[str, PodGroupUnschedulable]) -> list[Event]:
    """The podgroup phase changes a session's close decides (``phases.next_phase``), by name."""
    events: list[Event] = []
    for job in jobs.values():
        # A settled podgroup's kept copy, its tasks never built (its counts are those its
        # copy was made with) and in the phase an earlier close left unchanged: unchanged.
        quiet = job._deferred is not None and job.name not in unschedulable
        if quiet and job.quiet == job.phase:
            continue
        change = phases.next_phase(job, not quiet and job.name in unschedulable)
        if change is None:
            if quiet:
                job.quiet = job.phase
        else:
            phase, reason = change
            events.append(
                PodGroupPhaseChanged(
                    podgroup=job.name,
                    job=job.job,
                    queue=job.queue,
                    rule="session.job-status",
                    phase=phase,
                    previous=job.phase,
                    reason=reason,
                )
            )
    return events


# The actions that act only on podgroups in phase Pending (enqueue; allocate admits them when
# enqueue is not configured) and on pods waiting for a node (allocate, backfill); enqueue's
# ``inqueue-timeout`` acts at the session's open on Inqueue podgroups none of whose pods is placed.
PLACING_ACTIONS = frozenset({"enqueue", "allocate", "backfill"})


def places_nothing(snap: Snapshot, conf: SchedulerConf) -> bool:
    """Whether a session over ``snap`` can place nothing: its conf runs only ``PLACING_ACTIONS``
    and no pod waits for a node (a pipelined one included). Admitting podgroups (enqueue)
    places none of their pods: the job controller creates them once admitted, and a
    podgroup's pods that exist already wait for a node, which this excludes."""
    if not PLACING_ACTIONS.issuperset(conf.actions):
        return False
    for job in snap.jobs.values():
        if job.counts.get("Pending"):
            return False
    return True


def nothing_to_place(snap: Snapshot, conf: SchedulerConf, now: int) -> bool:
    """Whether a session over ``snap`` has nothing to admit, place or give back: its conf runs
    only ``PLACING_ACTIONS``, no podgroup is Pending, no pod waits for a node (a pipelined one
    is placed again each session, so it waits too) and no Inqueue reservation has timed out.
    Such a session decides nothing but the phase changes of its close (``phase_changes``,
    nothing being unschedulable): its actions find nothing to act on, and no plugin changes a
    podgroup's phase or counts or decides anything at open or close."""
    if not PLACING_ACTIONS.issuperset(conf.actions):
        return False
    timeout = 0
    if "enqueue" in conf.actions:
        timeout = duration_argument_ms(conf.action_arguments("enqueue").get("inqueue-timeout", 0))
    for job in snap.jobs.values():
        if job.phase == "Pending" or job.counts.get("Pending"):
            return False
        if (
            timeout > 0
            and job.phase == "Inqueue"
            and job.inqueue_at >= 0
            and now - job.inqueue_at >= timeout
            and not job.ready_num()
            and not job.counts.get("Releasing")
        ):
            return False  # its reservation is given back (``Session._expire_reservations``)
    return True
