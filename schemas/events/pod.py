"""Pod observations: what the cluster (real or simulated) reports about pods.

Where it sits: appended by a cluster adapter (the actuator after a side
effect, the kubelet simulator, the kube watch). Handlers fold them into the
state they decide on; the job lifecycle handler matches them against
policies (PodFailed with its exit code, PodEvicted, ...).
"""

from __future__ import annotations

from typing import ClassVar

from schemas.events.base import Event


class PodEvent(Event, frozen=True, kw_only=True):
    KEY: ClassVar[str] = "pod"
    CORRELATION: ClassVar[str] = "job"
    pod: str
    job: str = ""


class PodCreated(PodEvent, frozen=True, kw_only=True):
    uid: str = ""


class PodStarted(PodEvent, frozen=True, kw_only=True):
    node: str


class PodReady(PodEvent, frozen=True, kw_only=True):
    pass


class PodSucceeded(PodEvent, frozen=True, kw_only=True):
    pass


class PodFailed(PodEvent, frozen=True, kw_only=True):
    exit_code: int
    reason: str = ""


class PodRestarted(PodEvent, frozen=True, kw_only=True):
    """A container of the pod restarted in place (restartPolicy OnFailure/Always)."""

    restart_count: int
    exit_code: int = 0


class PodEvicted(PodEvent, frozen=True, kw_only=True):
    reason: str = ""


class PodUnknown(PodEvent, frozen=True, kw_only=True):
    reason: str = ""


class PodBindFailed(PodEvent, frozen=True, kw_only=True):
    node: str
    reason: str = ""


class PodDeleted(PodEvent, frozen=True, kw_only=True):
    reason: str = ""


EVENTS: tuple[type[Event], ...] = (
    PodCreated,
    PodStarted,
    PodReady,
    PodSucceeded,
    PodFailed,
    PodRestarted,
    PodEvicted,
    PodUnknown,
    PodBindFailed,
    PodDeleted,
)
