"""The podgroup controller: answers PodGroups and plain pods from other operators.

Where it sits: a handler (``handlers.base``) beside the job controller. Its
requests come from the CLI, a scenario's workload and the kube watch
(``schemas.events.podgroup``); its answers are the facts the scheduler, the
actuators and the read models already fold for a Volcano Job's podgroup and
pods, so an operator's PodGroup is gang-scheduled exactly as a Job's is:

- ``PodGroupSubmitRequested`` -> ``PodGroupCreated`` (``job`` empty), then a
  ``PodRequested`` for every pod that was waiting for it; for a PodGroup that
  exists, ``PodGroupUpdated`` when its spec changed and nothing when it did
  not. A PodGroup that a Volcano Job owns is refused (``PodGroupRefused``):
  the job controller keeps it.
- ``PodGroupDeleteRequested`` -> ``PodGroupDeleted``; its pods stay and are
  not scheduled until a PodGroup of that name exists again (Volcano's
  scheduler skips a pod whose group is missing).
- ``PodSubmitRequested`` -> for a pod naming a PodGroup
  (``scheduling.k8s.io/group-name``) that exists, ``PodRequested`` in it; one
  naming a PodGroup not there yet, ``PodAwaitingPodGroup`` (it joins when the
  group is created); one naming none, the PodGroup Volcano's pod-group
  controller would create (``handlers.podgroup.plain``: ``PodGroupCreated``)
  and ``PodRequested`` in it. Refused (``PodRefused``): a pod for another
  scheduler, a pod of that name already there, a pod naming a Job's
  PodGroup.

The handler is pure: it folds facts only (``PodGroupCreated``/``Updated``/
``Deleted`` whoever decided them, ``PodRequested``, ``PodAwaitingPodGroup``,
``PodDeleted``, ``JobRemoved``, priority classes), so a refused request
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from msgspec.structs import replace

from handlers.base import reads
from handlers.podgroup.plain import GROUP_NAME, podgroup_for, task_of
from projections.dispatch import FoldTable
from schemas.defaults import SCHEDULER_NAMES
from schemas.envelope import Envelope
from schemas.events import (
    JobRemoved,
    PodAwaitingPodGroup,
    PodDeleted,
    PodGroupCreated,
    PodGroupDeleted,
    PodGroupDeleteRequested,
    PodGroupRefused,
    PodGroupSubmitRequested,
    PodGroupUpdated,
    PodRefused,
    PodRequested,
    PodSubmitRequested,
    PriorityClassAdded,
    PriorityClassRemoved,
)
from schemas.events.base import Event
from schemas.quantity import QuantityError, requests_of, to_resources
from schemas.resources import Pod, PodGroup, Resources

HANDLER = "podgroup-controller"


@dataclass
class GroupRecord:
    """The controller's record of one operator's PodGroup (``...Record``: a fold's state of one object)."""

    manifest: PodGroup
    members: int = 0  # pods requested into it so far (the next one's index)


@dataclass
class PodGroupsState:
    groups: dict[str, GroupRecord] = field(default_factory=dict)  # the PodGroups of no Volcano Job
    job_groups: dict[str, str] = field(default_factory=dict)  # a Volcano Job's podgroup -> the job
    group_of_job: dict[str, str] = field(default_factory=dict)  # job -> its podgroup
    pods: dict[str, str] = field(default_factory=dict)  # live pod of no Job -> its podgroup
    # podgroup -> the pods waiting for it, in the order they came
    waiting: dict[str, dict[str, PodAwaitingPodGroup]] = field(default_factory=dict)
    waiting_for: dict[str, str] = field(default_factory=dict)  # pod -> the podgroup it waits for
    priority_classes: dict[str, int] = field(default_factory=dict)
    default_priority_class: str = ""


# --- fold: facts only -------------------------------------------------------------


def _group_upsert(state: PodGroupsState, e: PodGroupCreated | PodGroupUpdated, _: Envelope) -> None:
    if e.job:  # a Volcano Job's, kept by the job controller: only its name is needed here
        state.job_groups[e.podgroup] = e.job
        state.group_of_job[e.job] = e.podgroup
        return
    record = state.groups.get(e.podgroup)
    if record is None:
        state.groups[e.podgroup] = GroupRecord(e.manifest)
    else:
        record.manifest = e.manifest


def _group_deleted(state: PodGroupsState, e: PodGroupDeleted, _: Envelope) -> None:
    state.groups.pop(e.podgroup, None)
    job = state.job_groups.pop(e.podgroup, None)
    if job is not None and state.group_of_job.get(job) == e.podgroup:
        del state.group_of_job[job]


def _job_removed(state: PodGroupsState, e: JobRemoved, _: Envelope) -> None:
    group = state.group_of_job.pop(e.job, None)
    if group is not None:
        state.job_groups.pop(group, None)


def _pod_requested(state: PodGroupsState, e: PodRequested, _: Envelope) -> None:
    if e.job:
        return
    state.pods[e.pod] = e.podgroup
    record = state.groups.get(e.podgroup)
    if record is not None:
        record.members += 1
    _unwait(state, e.pod)


def _awaiting(state: PodGroupsState, e: PodAwaitingPodGroup, _: Envelope) -> None:
    state.waiting.setdefault(e.podgroup, {})[e.pod] = e
    state.waiting_for[e.pod] = e.podgroup


def _unwait(state: PodGroupsState, pod: str) -> None:
    group = state.waiting_for.pop(pod, None)
    if group is not None:
        named = state.waiting.get(group, {})
        named.pop(pod, None)
        if not named:
            state.waiting.pop(group, None)


def _pod_deleted(state: PodGroupsState, e: PodDeleted, _: Envelope) -> None:
    state.pods.pop(e.pod, None)
    _unwait(state, e.pod)


def _priority_added(state: PodGroupsState, e: PriorityClassAdded, _: Envelope) -> None:
    state.priority_classes[e.name] = e.value
    if e.global_default:
        state.default_priority_class = e.name
    elif state.default_priority_class == e.name:
        state.default_priority_class = ""


def _priority_removed(state: PodGroupsState, e: PriorityClassRemoved, _: Envelope) -> None:
    state.priority_classes.pop(e.name, None)
    if state.default_priority_class == e.name:
        state.default_priority_class = ""


_FOLDS: FoldTable[PodGroupsState, [Envelope], None] = FoldTable()
_FOLDS.on(PodGroupCreated, _group_upsert)
_FOLDS.on(PodGroupUpdated, _group_upsert)
_FOLDS.on(PodGroupDeleted, _group_deleted)
_FOLDS.on(JobRemoved, _job_removed)
_FOLDS.on(PodRequested, _pod_requested)
_FOLDS.on(PodAwaitingPodGroup, _awaiting)
_FOLDS.on(PodDeleted, _pod_deleted)
_FOLDS.on(PriorityClassAdded, _priority_added)
_FOLDS.on(PriorityClassRemoved, _priority_removed)
FOLDS = _FOLDS.folds


# --- decide -----------------------------------------------------------------------


def _min_resources(group: PodGroup) -> Resources:
    try:
        return to_resources(group.spec.min_resources)
    except QuantityError:  # admission checked the quantities; nothing better to do than none
        return {}


def _priority(state: PodGroupsState, pod: Pod) -> int:
    if pod.spec.priority is not None:
        return pod.spec.priority
    name = pod.spec.priority_class_name or state.default_priority_class
    return state.priority_classes.get(name, 0)


def _request(state: PodGroupsState, pod_key: str, podgroup: str, pod: Pod, uid: str, index: int) -> PodRequested:
    """``pod`` in ``podgroup``, annotated with the group's name as Volcano's controller patches it."""
    meta = pod.metadata
    name = podgroup.split("/", 1)[1]
    if meta.annotations.get(GROUP_NAME) != name:
        pod = replace(pod, metadata=replace(meta, annotations={**meta.annotations, GROUP_NAME: name}))
    return PodRequested(
        pod=pod_key,
        job="",
        podgroup=podgroup,
        task=task_of(pod),
        index=index,
        manifest=pod,
        requests=requests_of(pod.spec),
        priority=_priority(state, pod),
        uid=uid,
    )


def _on_podgroup(state: PodGroupsState, e: PodGroupSubmitRequested) -> list[Event]:
    owner = state.job_groups.get(e.podgroup)
    if owner is not None:
        return [PodGroupRefused(podgroup=e.podgroup, reason=f"podgroup {e.podgroup} belongs to job {owner}")]
    current = state.groups.get(e.podgroup)
    manifest = e.manifest
    if manifest.status is not None:  # the phase is the scheduler's to decide, from Pending
        manifest = replace(manifest, status=None)
    if current is not None:
        if current.manifest.spec == manifest.spec and current.manifest.metadata.annotations == manifest.metadata.annotations:
            return []
        return [PodGroupUpdated(podgroup=e.podgroup, job="", manifest=manifest, min_resources=_min_resources(manifest))]
    out: list[Event] = [PodGroupCreated(podgroup=e.podgroup, job="", manifest=manifest, min_resources=_min_resources(manifest))]
    for index, waiting in enumerate(state.waiting.get(e.podgroup, {}).values()):
        out.append(_request(state, waiting.pod, e.podgroup, waiting.manifest, waiting.uid, index))
    return out


def _on_podgroup_delete(state: PodGroupsState, e: PodGroupDeleteRequested) -> list[Event]:
    owner = state.job_groups.get(e.podgroup)
    if owner is not None:
        return [PodGroupRefused(podgroup=e.podgroup, reason=f"podgroup {e.podgroup} belongs to job {owner}")]
    if e.podgroup not in state.groups:
        return [PodGroupRefused(podgroup=e.podgroup, reason=f"podgroup {e.podgroup} not found")]
    return [PodGroupDeleted(podgroup=e.podgroup, job="")]


def _on_pod(state: PodGroupsState, e: PodSubmitRequested) -> list[Event]:
    pod = e.manifest
    scheduler = pod.spec.scheduler_name or "default-scheduler"
    if scheduler not in SCHEDULER_NAMES:
        return [PodRefused(pod=e.pod, reason=f"pod {e.pod} is for scheduler {scheduler}, not {' or '.join(SCHEDULER_NAMES)}")]
    if e.pod in state.pods or e.pod in state.waiting_for:
        return [PodRefused(pod=e.pod, reason=f"pod {e.pod} exists")]
    if pod.spec.node_name:
        return [PodRefused(pod=e.pod, reason=f"pod {e.pod} is already bound to {pod.spec.node_name}")]
    namespace = e.pod.split("/", 1)[0]
    named = pod.metadata.annotations.get(GROUP_NAME, "")
    if named:
        key = f"{namespace}/{named}"
        owner = state.job_groups.get(key)
        if owner is not None:
            return [PodRefused(pod=e.pod, reason=f"podgroup {key} belongs to job {owner}; only its own pods join it")]
        group = state.groups.get(key)
        if group is None:
            return [PodAwaitingPodGroup(pod=e.pod, podgroup=key, manifest=pod, uid=e.uid)]
        return [_request(state, e.pod, key, pod, e.uid, group.members)]
    made = podgroup_for(pod, e.uid)
    key = f"{namespace}/{made.metadata.name}"
    owner = state.job_groups.get(key)
    if owner is not None:
        return [PodRefused(pod=e.pod, reason=f"podgroup {key} belongs to job {owner}; only its own pods join it")]
    group = state.groups.get(key)
    if group is not None:  # another replica of the same owner: its group is there
        return [_request(state, e.pod, key, pod, e.uid, group.members)]
    return [
        PodGroupCreated(podgroup=key, job="", manifest=made, min_resources=_min_resources(made)),
        _request(state, e.pod, key, pod, e.uid, 0),
    ]


# The requests it answers, each with its function.
_REQUESTS: FoldTable[PodGroupsState, [], list[Event]] = FoldTable()
_REQUESTS.on(PodGroupSubmitRequested, _on_podgroup)
_REQUESTS.on(PodGroupDeleteRequested, _on_podgroup_delete)
_REQUESTS.on(PodSubmitRequested, _on_pod)
_answers = _REQUESTS.folds


class PodGroupHandler:
    """Decides the podgroups and pods that other operators (and plain pods) bring."""

    name = HANDLER
    position_free_decisions = True  # its fold reads no position
    interests = reads(FOLDS, _answers)  # the facts it folds and the requests it answers

    def initial(self) -> PodGroupsState:
        return PodGroupsState()

    def fold(self, state: PodGroupsState, envelope: Envelope) -> PodGroupsState:
        step = FOLDS.get(type(envelope.payload))
        if step is not None:
            step(state, envelope.payload, envelope)
        return state

    def decide(self, state: PodGroupsState, envelope: Envelope) -> list[Event]:
        answer = _answers.get(type(envelope.payload))
        return answer(state, envelope.payload) if answer is not None else []
