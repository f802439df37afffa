"""The PodGroup Volcano's pod-group controller makes for a pod that names none.

Where it sits: the podgroup controller (``handlers.podgroup.handler``) calls
``podgroup_for`` when a plain pod for this scheduler carries no
``scheduling.k8s.io/group-name``. The rules are Volcano's
(``pkg/controllers/podgroup/pg_controller_handler.go`` ``buildPodGroupFromPod``
and ``helpers.GeneratePodgroupName``): the group is named ``podgroup-`` and
the uid of the pod's controlling owner (a ReplicaSet, StatefulSet, Job or any
other controller), so the replicas of one owner share it, or the pod's own uid;
``minMember`` 1, ``minResources`` the pod's requests, the pod's priority class,
the queue of its ``scheduling.volcano.sh/queue-name`` annotation, and the
preemptable, cooldown and revocable-zone marks copied from the pod.

A pod with no uid (applied from a file or a scenario, where no API server
gave it one) stands for its uid with its name.
"""

from __future__ import annotations

from schemas.quantity import format_resources, requests_of
from schemas.resources import ObjectMeta, OwnerReference, Pod, PodGroup, PodGroupSpec, PodGroupStatus

GROUP_NAME = "scheduling.k8s.io/group-name"
QUEUE_NAME = "scheduling.volcano.sh/queue-name"
TASK_SPEC = "volcano.sh/task-spec"
PREFIX = "podgroup-"
# Annotations Volcano copies from the pod onto the PodGroup it makes (and labels, the first two).
COPIED_ANNOTATIONS = (
    "volcano.sh/preemptable",
    "volcano.sh/cooldown-time",
    "volcano.sh/revocable-zone",
    "scheduling.volcano.sh/jdb-min-available",
    "scheduling.volcano.sh/jdb-max-unavailable",
)
COPIED_LABELS = ("volcano.sh/preemptable", "volcano.sh/cooldown-time")


def _controller(pod: Pod) -> OwnerReference | None:
    for ref in pod.metadata.owner_references:
        if ref.controller:
            return ref
    return None


def podgroup_name(pod: Pod, uid: str) -> str:
    """``podgroup-<uid of the controlling owner>``, else ``podgroup-<pod uid>``."""
    owner = _controller(pod)
    if owner is not None and owner.uid:
        return PREFIX + owner.uid
    return PREFIX + (uid or pod.metadata.uid or pod.metadata.name)


def podgroup_for(pod: Pod, uid: str) -> PodGroup:
    """The PodGroup Volcano's pod-group controller creates for ``pod``."""
    meta = pod.metadata
    owner = _controller(pod)
    owners = list(meta.owner_references) if owner is not None else [
        OwnerReference(
            api_version="v1", kind="Pod", name=meta.name, uid=uid or meta.uid, controller=True, block_owner_deletion=True
        )
    ]
    requests = {k: v for k, v in requests_of(pod.spec).items() if k != "pods"}
    annotations = {k: meta.annotations[k] for k in COPIED_ANNOTATIONS if k in meta.annotations}
    if "scheduling.volcano.sh/jdb-min-available" in annotations:
        annotations.pop("scheduling.volcano.sh/jdb-max-unavailable", None)
    labels = {k: meta.labels[k] for k in COPIED_LABELS if k in meta.labels}
    return PodGroup(
        metadata=ObjectMeta(
            name=podgroup_name(pod, uid),
            namespace=meta.namespace or "default",
            owner_references=owners,
            annotations=annotations,
            labels=labels,
        ),
        spec=PodGroupSpec(
            min_member=1,
            queue=meta.annotations.get(QUEUE_NAME) or "default",
            priority_class_name=pod.spec.priority_class_name,
            min_resources=format_resources(requests),
        ),
        status=PodGroupStatus(phase="Pending"),
    )


def task_of(pod: Pod) -> str:
    """The pod's role in its group, as Volcano's scheduler reads it (``getTaskRole``)."""
    meta = pod.metadata
    return meta.annotations.get(TASK_SPEC) or meta.labels.get(TASK_SPEC) or ""
