"""PodGroup and plain-pod events: what other operators ask of the scheduler.

Where it sits: Kubeflow's training operator, the Spark operator, KubeRay and
others use Volcano by creating a PodGroup themselves and pods that name it
(annotation ``scheduling.k8s.io/group-name``, ``schedulerName: volcano``).
The CLI (``eventbatch apply -f``), a scenario's workload and the kube watch
(``eventbatch.kube.operators``) append these requests; the podgroup
controller (``handlers.podgroup``) answers each with facts the rest of the
pipeline already reads (``PodGroupCreated``, ``PodGroupUpdated``,
``PodGroupDeleted``, ``PodRequested`` with an empty ``job``) or with a
refusal, which changes nothing.

Keys are ``namespace/name`` of the PodGroup or the pod.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event
from schemas.resources import Pod, PodGroup


class PodGroupSubmitRequested(Event, frozen=True, kw_only=True):
    """Create this PodGroup, or update the one of that name (an operator changed its spec)."""

    KEY: ClassVar[str] = "podgroup"
    REQUEST: ClassVar[bool] = True
    podgroup: str
    manifest: PodGroup


class PodGroupDeleteRequested(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "podgroup"
    REQUEST: ClassVar[bool] = True
    podgroup: str
    reason: str = ""


class PodSubmitRequested(Event, frozen=True, kw_only=True):
    """A pod created by someone else (an operator, a user) for this scheduler to place.

    ``uid`` is set when the pod exists already (seen by the kube watch): nothing
    is created for it then, it is only bound.
    """

    KEY: ClassVar[str] = "pod"
    REQUEST: ClassVar[bool] = True
    pod: str
    manifest: Pod
    uid: str = ""


class PodGroupRefused(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "podgroup"
    podgroup: str
    reason: str


class PodRefused(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "pod"
    pod: str
    reason: str


class PodAwaitingPodGroup(Event, frozen=True, kw_only=True):
    """The pod is accepted but names a PodGroup that does not exist yet: it joins
    the group (``PodRequested``) when the group is created."""

    KEY: ClassVar[str] = "pod"
    CORRELATION: ClassVar[str] = "podgroup"
    pod: str
    podgroup: str
    manifest: Pod
    uid: str = ""


EVENTS: tuple[type[Event], ...] = (
    PodGroupSubmitRequested,
    PodGroupDeleteRequested,
    PodSubmitRequested,
    PodGroupRefused,
    PodRefused,
    PodAwaitingPodGroup,
)
