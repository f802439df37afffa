"""The folds of pod events: PodView's rows, what pods hold on nodes, the jobs' pod counts.

Where it sits: one module of ``projections.views.folds``, called by
``projections.views.viewset.ViewSet`` for each pod event. One pod event can
change three read models: the pod's own life (``PodViewRecord``, the PodView row,
``projections.views.pods``), what it holds on its node and in its queue
(``PodHoldRecord``, the cluster projection's rules, for NodeView and QueueView),
and its job's pod counts (``JobPod``, the job controller's rules, for
JobView).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

# The handlers' projections' own names and rules, so the two folds cannot drift apart.
from projections.cluster_model import HOLDING, TERMINAL, add_into
from projections.views.folds.base import Table, job_of
from projections.views.pods import APPLY as POD_LIFE
from projections.views.pods import PodViewRecord
from projections.views.state import JobPod, PodHoldRecord
from schemas import events as ev

if TYPE_CHECKING:
    from projections.views.viewset import ViewSet


# The pod events these folds take, by what they do (``ev.PodEvent``: the cluster's observations).
PodNamed = ev.PodEvent | ev.PodDecision | ev.PodDeletionRequested
PodFinished = ev.PodSucceeded | ev.PodFailed | ev.PodEvicted
PodLeaving = ev.PodDeletionRequested | ev.PodEvictionRequested
PodObserved = ev.PodReady | ev.PodUnknown | ev.PodRestarted | ev.PodCreated
E = TypeVar("E", bound=PodNamed)
PodFold = Callable[["ViewSet", E, int, bool], tuple[str, str]]


def _release(v: ViewSet, pod: PodHoldRecord) -> None:
    """What ``pod`` holds on its node goes back (the cluster projection's ``_release``)."""
    if pod.status in HOLDING and pod.node:
        node = v.nodes.get(pod.node)
        if node is not None:
            add_into(node.used, pod.requests, -1)


def drop(v: ViewSet, pod: PodHoldRecord) -> None:
    """``pod`` leaves the cluster: what it holds goes back; its node's and queue's rows change."""
    _release(v, pod)
    if pod.node:
        v._dirty_nodes.add(pod.node)
    del v.holds[pod.key]
    v.holds_by_job.get(pod.job, {}).pop(pod.key, None)
    _touch_queue(v, pod)


def _touch_queue(v: ViewSet, pod: PodHoldRecord) -> None:
    group = v.groups.get(pod.podgroup)
    if group is not None:
        v._dirty_groups.add(pod.podgroup)
        v._dirty_queues.add(group.queue)


# What a pod event does to its PodView row (``projections.views.pods.APPLY``), for one class of event.
PodViewApply = Callable[[PodViewRecord, Any, int], None]


def _pod_life(v: ViewSet, apply: PodViewApply, e: PodNamed, at: int) -> str:
    """The PodView part of a pod event; returns the pod's job."""
    life = v.pods.get(e.pod)
    if life is None:
        return ""
    apply(life, e, at)
    v._dirty_pods.add(e.pod)
    return life.job


def _pod_requested(v: ViewSet, e: ev.PodRequested, at: int, jobs_see: bool) -> tuple[str, str]:
    key = e.pod
    # PodView: a new life, whatever came before
    v.pods[key] = PodViewRecord(key, e.job, e.podgroup, e.task, at)
    v.job_pods.setdefault(e.job, {})[key] = None
    v._dirty_pods.add(key)
    # the cluster: a pod that still holds a node is not requested again
    pod = v.holds.get(key)
    if pod is None or pod.status == "Pending" or pod.status in TERMINAL:
        if pod is None:
            pod = v.holds[key] = PodHoldRecord(key)
        elif pod.node:
            v._dirty_nodes.add(pod.node)
        pod.status, pod.node = "Pending", ""
        pod.job, pod.podgroup = e.job, e.podgroup
        requests = dict(e.requests)
        if requests.get("pods", 0) < 1:
            requests["pods"] = 1
        pod.requests = requests
        v.holds_by_job.setdefault(e.job, {})[key] = None
    _touch_queue(v, pod)
    # the job controller
    if jobs_see:
        rec = v.jobs.get(e.job)
        if rec is not None:
            rec.put(key, JobPod(e.task))
            v.pod_owner[key] = rec
    return job_of(e.job), ""


def _place(status: str, cls: type[ev.PodBound | ev.PodPipelined]) -> PodFold[ev.PodBound | ev.PodPipelined]:
    life = POD_LIFE[cls]

    def fold(v: ViewSet, e: ev.PodBound | ev.PodPipelined, at: int, jobs_see: bool) -> tuple[str, str]:
        job = _pod_life(v, life, e, at)
        pod = v.holds.get(e.pod)
        node = v.nodes.get(e.node)
        if pod is not None:
            if node is not None and pod.status in ("Pending", "Pipelined"):
                pod.status, pod.node = status, e.node
                if status == "Bound":
                    add_into(node.used, pod.requests)
                    v._dirty_nodes.add(e.node)
            _touch_queue(v, pod)
        return job_of(e.job) or job, ""

    return fold


def _pod_started(v: ViewSet, e: ev.PodStarted, at: int, jobs_see: bool) -> tuple[str, str]:
    job = _pod_life(v, _STARTED, e, at)
    pod = v.holds.get(e.pod)
    if pod is not None and pod.status not in TERMINAL and pod.status != "Running":
        if pod.status == "Bound" and pod.node == e.node:
            pod.status = "Running"
        else:  # started somewhere it was not put (or before the bind was seen): adopted there
            releasing = pod.status == "Releasing"
            _release(v, pod)
            if pod.node:
                v._dirty_nodes.add(pod.node)
            pod.node = e.node
            pod.status = "Releasing" if releasing else "Running"
            node = v.nodes.get(e.node)
            if node is not None:
                add_into(node.used, pod.requests)
            v._dirty_nodes.add(e.node)
        _touch_queue(v, pod)
    _job_pod_phase(v, e, jobs_see, "Running", always=True)
    return job_of(e.job) or job, ""


def _finished(phase: str, cls: type[PodFinished]) -> PodFold[PodFinished]:
    life = POD_LIFE[cls]
    counted = phase in ("Succeeded", "Failed")  # the job controller leaves an evicted pod's phase as it was

    def fold(v: ViewSet, e: PodFinished, at: int, jobs_see: bool) -> tuple[str, str]:
        job = _pod_life(v, life, e, at)
        pod = v.holds.get(e.pod)
        if pod is not None and pod.status not in TERMINAL:
            _release(v, pod)
            if pod.node:
                v._dirty_nodes.add(pod.node)
            pod.status = "Succeeded" if phase == "Succeeded" else "Failed"
            _touch_queue(v, pod)
        if counted:
            _job_pod_phase(v, e, jobs_see, phase, always=True)
        return job_of(e.job) or job, ""

    return fold


def _pod_deleted(v: ViewSet, e: ev.PodDeleted, at: int, jobs_see: bool) -> tuple[str, str]:
    job = _pod_life(v, _DELETED, e, at)
    pod = v.holds.get(e.pod)
    if pod is not None:
        drop(v, pod)
    if jobs_see:
        rec = v.pod_owner.get(e.pod)
        if rec is not None and v.jobs.get(rec.key) is rec:
            jp = rec.pods.pop(e.pod, None)
            if jp is not None:
                rec.count(jp, -1)
                v.pod_owner.pop(e.pod, None)
    return job_of(e.job) or job, ""


def _pod_bind_failed(v: ViewSet, e: ev.PodBindFailed, at: int, jobs_see: bool) -> tuple[str, str]:
    job = _pod_life(v, _BIND_FAILED, e, at)
    pod = v.holds.get(e.pod)
    if pod is not None and pod.status == "Bound" and pod.node == e.node:
        _release(v, pod)
        v._dirty_nodes.add(pod.node)
        pod.status, pod.node = "Pending", ""
        _touch_queue(v, pod)
    return job_of(e.job) or job, ""


def _deletion_requested(cls: type[PodLeaving]) -> PodFold[PodLeaving]:
    life = POD_LIFE.get(cls)
    counted = cls is ev.PodDeletionRequested  # the job controller counts a pod it asked to delete as terminating

    def fold(v: ViewSet, e: PodLeaving, at: int, jobs_see: bool) -> tuple[str, str]:
        job = _pod_life(v, life, e, at) if life is not None else ""
        pod = v.holds.get(e.pod)
        if pod is not None and pod.status not in TERMINAL and pod.status != "Releasing":
            if pod.status not in HOLDING:
                _release(v, pod)
                pod.node = ""
            pod.status = "Releasing"
            _touch_queue(v, pod)
        if counted and jobs_see:
            rec = v.jobs.get(e.job)
            if rec is not None and (jp := rec.pods.get(e.pod)) is not None:
                rec.put(e.pod, JobPod(jp.task, jp.phase, True))
        if not job and pod is not None:
            job = pod.job
        return job_of(e.job) or job_of(job), ""

    return fold


def _observed(cls: type[PodObserved], phase: str | None) -> PodFold[PodObserved]:
    """A pod observation that changes the PodView and, maybe, the job controller's phase."""
    life = POD_LIFE.get(cls)
    always = cls is not ev.PodReady  # a ready pod is Running only if it was Pending

    def fold(v: ViewSet, e: PodObserved, at: int, jobs_see: bool) -> tuple[str, str]:
        job = _pod_life(v, life, e, at) if life is not None else ""
        if phase is not None:
            _job_pod_phase(v, e, jobs_see, phase, always=always)
        if not job:
            pod = v.holds.get(e.pod)
            job = pod.job if pod is not None else ""
        return job_of(e.job) or job_of(job), ""

    return fold


def _job_pod_phase(v: ViewSet, e: PodNamed, jobs_see: bool, phase: str, *, always: bool) -> None:
    """The job controller's view of a pod observation (``projections.job_apply``)."""
    if not jobs_see:
        return
    rec = v.pod_owner.get(e.pod)
    if rec is None or v.jobs.get(rec.key) is not rec:
        return
    jp = rec.pods.get(e.pod)
    if jp is None or jp.phase == phase or (not always and jp.phase != "Pending"):
        return
    rec.count(jp, -1)
    jp.phase = phase
    rec.count(jp, 1)


_STARTED, _DELETED, _BIND_FAILED = POD_LIFE[ev.PodStarted], POD_LIFE[ev.PodDeleted], POD_LIFE[ev.PodBindFailed]

TABLE: Table = Table()
TABLE.on(ev.PodRequested, _pod_requested)
TABLE.on(ev.PodBound, _place("Bound", ev.PodBound))
TABLE.on(ev.PodPipelined, _place("Pipelined", ev.PodPipelined))
TABLE.on(ev.PodStarted, _pod_started)
TABLE.on(ev.PodSucceeded, _finished("Succeeded", ev.PodSucceeded))
TABLE.on(ev.PodFailed, _finished("Failed", ev.PodFailed))
TABLE.on(ev.PodEvicted, _finished("Evicted", ev.PodEvicted))
TABLE.on(ev.PodDeleted, _pod_deleted)
TABLE.on(ev.PodBindFailed, _pod_bind_failed)
TABLE.on(ev.PodDeletionRequested, _deletion_requested(ev.PodDeletionRequested))
TABLE.on(ev.PodEvictionRequested, _deletion_requested(ev.PodEvictionRequested))
TABLE.on(ev.PodReady, _observed(ev.PodReady, "Running"))
TABLE.on(ev.PodUnknown, _observed(ev.PodUnknown, "Unknown"))
TABLE.on(ev.PodRestarted, _observed(ev.PodRestarted, None))
TABLE.on(ev.PodCreated, _observed(ev.PodCreated, None))
