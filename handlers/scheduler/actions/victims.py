"""Eviction shared by preempt and reclaim: which pods may go, in what order, and just enough of them.

Where it sits: helpers of the ``preempt`` and ``reclaim`` actions. A victim
is a pod holding a node (Bound or Running, not placed in this session) that
is not labelled or annotated ``volcano.sh/preemptable: "false"``, not in
``kube-system`` and not at a system-critical priority, whatever plugins are
configured. The actions narrow these down further through the session's
``preemptable`` / ``reclaimable`` hooks, and whatever tier decides, never leave
a job running below its gang minimum (``keep_minimum``: a job loses pods
down to ``minMember``; a one-pod job may lose its pod, it stops whole; a
plugin of the first tier refusing every candidate passes the choice to the
next tier, as in Volcano, which must not lift that rule).

``make_room`` evicts, in the order given, only victims that free a resource
the preemptor still lacks, and stops as soon as the preemptor fits the node
(idle plus releasing resources) and the extra check passes. When all of them
would not be enough nothing is evicted; when the check still fails after
evicting, the evictions are rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from handlers.scheduler.api import JobInfo, TaskInfo
from handlers.scheduler.devices import fits as device_fits
from handlers.scheduler.hooks import Hook
from handlers.scheduler.statement import Statement
from schemas.events import PodGroupEnqueued

if TYPE_CHECKING:
    from handlers.scheduler.session import Session

EVICTABLE = frozenset({"Bound", "Running"})
SYSTEM_CRITICAL = 2_000_000_000


def evictable(task: TaskInfo) -> bool:
    return (
        task.status in EVICTABLE
        and task.node >= 0
        and task.record.preemptable
        and task.priority < SYSTEM_CRITICAL
        and not task.name.startswith("kube-system/")
    )


def by_node(ssn: Session) -> dict[int, list[TaskInfo]]:
    """Evictable pods per node row, in job then pod name order (the log's order never matters)."""
    nodes: dict[int, list[TaskInfo]] = {}
    for job in ssn.jobs.values():
        for task in job.tasks:
            if evictable(task):
                nodes.setdefault(task.node, []).append(task)
    return nodes


def keep_minimum(victims: list[TaskInfo]) -> list[TaskInfo]:
    """Victims, in order, while each victim's job keeps ``minMember`` ready pods.

    A job of one ready pod may lose it: it stops whole, it never runs broken.
    """
    left: dict[str, int] = {}
    kept: list[TaskInfo] = []
    for v in victims:
        job = v.job
        ready = left.get(job.name, job.ready_num())
        if ready - 1 >= job.min_member or job.ready_num() + job.counts["Releasing"] == 1:
            left[job.name] = ready - 1
            kept.append(v)
    return kept


def lowest_first(task: TaskInfo) -> tuple[int, int, int, str]:
    """Victim order: lower job priority, then lower pod priority, then the newest pod first."""
    return (task.job.priority, task.priority, -task.created_at, task.name)


def node_order(ssn: Session, task: TaskInfo) -> list[int]:
    """Nodes passing the task's predicates, best score first (ties by name)."""
    ok, _ = ssn.static_filter(task)
    rows = np.nonzero(ok)[0]
    if not len(rows):
        return []
    scores = ssn.node_scores(task)[rows]
    order = np.lexsort((rows, -scores))
    ordered: list[int] = rows[order].tolist()
    return ordered


def fits(ssn: Session, task: TaskInfo, node: int) -> bool:
    return bool((ssn.nodes.future[node, task.nz] >= task.vec[task.nz]).all()) and devices_fit(ssn, task, node)


def devices_fit(ssn: Session, task: TaskInfo, node: int) -> bool:
    """Whether ``task``'s GPU request fits ``node``'s devices counting what is being released."""
    if task.gpu is None:
        return True
    devices = ssn.devices
    return bool(device_fits(devices.future[node : node + 1], devices.mem_future[node : node + 1], task.gpu)[0])


def make_room(
    ssn: Session,
    stmt: Statement,
    task: TaskInfo,
    node: int,
    victims: list[TaskInfo],
    *,
    reason: Callable[[TaskInfo], str],
    rule: str,
    check: Callable[[], bool] = lambda: True,
) -> bool:
    """Evict from ``victims`` until ``task`` fits ``node``; on success the evictions join ``stmt``."""
    if not victims or not ssn.static_filter(task)[0][node]:
        return False  # (the predicates as they stand: inter-pod rules change with every placement)
    nodes = ssn.nodes
    nz, need = task.nz, task.vec[task.nz]
    freed = sum((v.vec for v in victims[1:]), victims[0].vec)  # a new array: ``+``, never ``+=``
    if not ((nodes.future[node, nz] + freed[nz]) >= need).all():
        return False  # not even all of them would do: evict nothing
    trial = Statement(ssn)
    for victim in victims:
        short = nodes.future[node, nz] < need
        if not short.any() and devices_fit(ssn, task, node) and check():
            break
        if not short.any() and not devices_fit(ssn, task, node):
            # The node totals would do, not one device: evicting a pod that holds a GPU share helps.
            helps = bool(victim.devices)
        else:
            helps = (victim.vec[nz][short] > 0).any() if short.any() else bool((victim.vec[nz] > 0).any())
        if helps:
            trial.evict(victim, reason(victim), preemptor=task.name, rule=rule)
    if not (fits(ssn, task, node) and check()):
        trial.discard()
        return False
    stmt.ops.extend(trial.ops)
    return True


F = TypeVar("F", bound=Callable[..., object])


def rule_of(family: Hook[F], action: str, preferred: str) -> str:
    """``action.plugin``: the plugin whose policy the evictions follow, when it is configured."""
    return f"{action}.{preferred}" if preferred in family.plugins() else action


def starving(ssn: Session, job: JobInfo) -> bool:
    return ssn.hooks.job_starving.all(job).allowed


def pending_tasks(ssn: Session, job: JobInfo, *, best_effort: bool = False) -> list[TaskInfo]:
    """The job's pending pods in task order; best-effort ones too when ``best_effort`` (preempt's)."""
    return sorted(
        (t for t in job.tasks if t.status == "Pending" and (best_effort or not t.best_effort)), key=ssn.task_key
    )


def admit(ssn: Session, job: JobInfo, rule: str) -> None:
    """Admit a Pending podgroup outside enqueue (rule names how: ``reserve``)."""
    job.phase = "Inqueue"
    ssn.job_enqueued(job)
    ssn.unschedulable.pop(job.name, None)
    ssn.emit(PodGroupEnqueued(podgroup=job.name, job=job.job, queue=job.queue, rule=rule))


def finish(ssn: Session, job: JobInfo, stmt: Statement, action: str) -> bool:
    """Commit the job's statement if its gang is ready or reserved whole; otherwise roll it all back."""
    if not stmt:
        return False
    if ssn.job_ready(job):
        stmt.commit(action)
    elif ssn.job_pipelined(job):
        stmt.commit(action, pipelined_only=True)
    else:
        stmt.discard()
        return False
    ssn.unschedulable.pop(job.name, None)
    return True
