"""The podgroup controller alone: its answers to PodGroups and plain pods, driven as the runtime drives it.

Each input is wrapped at the next position, folded, decided on; the decisions
are folded after it, as the runner does. ``decide`` is checked not to change
the state it is given.
"""

from __future__ import annotations

import copy
from typing import Any

from handlers.podgroup import PodGroupHandler
from handlers.podgroup.handler import PodGroupsState
from schemas.envelope import Causation, Envelope
from schemas.events import (
    PodDeleted,
    PodGroupCreated,
    PodGroupDeleteRequested,
    PodGroupSubmitRequested,
    PodSubmitRequested,
    PriorityClassAdded,
)
from schemas.events.base import Event
from schemas.loaders import decode_manifest
from schemas.resources import Pod, PodGroup


class Driver:
    def __init__(self) -> None:
        self.handler = PodGroupHandler()
        self.state: PodGroupsState = self.handler.initial()
        self.position = 0

    def _fold(self, event: Event, causation: Causation | None = None) -> Envelope:
        envelope = Envelope.wrap(event, recorded_at=0, causation=causation).at(self.position)
        self.position += 1
        self.state = self.handler.fold(self.state, envelope)
        return envelope

    def send(self, event: Event) -> list[Event]:
        trigger = self._fold(event)
        before = copy.deepcopy(self.state)
        decisions = self.handler.decide(self.state, trigger)
        assert self.state == before, "decide changed the state"
        for i, decision in enumerate(decisions):
            self._fold(decision, Causation(trigger.position, self.handler.name, i))
        return decisions


def podgroup(name: str, *, min_member: int = 2, **spec: Any) -> PodGroup:
    out = decode_manifest({"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                           "metadata": {"name": name}, "spec": {"minMember": min_member, **spec}})
    assert isinstance(out, PodGroup)
    return out


def pod(name: str, *, group: str = "", owner: dict[str, Any] | None = None, **meta: Any) -> Pod:
    annotations = dict(meta.pop("annotations", {}))
    if group:
        annotations["scheduling.k8s.io/group-name"] = group
    metadata: dict[str, Any] = {"name": name, "annotations": annotations, **meta}
    if owner is not None:
        metadata["ownerReferences"] = [owner]
    out = decode_manifest({
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {"schedulerName": "volcano", "priorityClassName": "high",
                 "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]},
    })
    assert isinstance(out, Pod)
    return out


def types(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_a_podgroup_is_created_updated_when_its_spec_changes_and_deleted() -> None:
    d = Driver()
    created = d.send(PodGroupSubmitRequested(podgroup="default/pg", manifest=podgroup("pg", minResources={"cpu": "2"})))
    assert types(created) == ["PodGroupCreated"]
    assert isinstance(created[0], PodGroupCreated) and created[0].job == "" and created[0].min_resources == {"cpu": 2000}
    assert d.send(PodGroupSubmitRequested(podgroup="default/pg", manifest=podgroup("pg", minResources={"cpu": "2"}))) == []
    scaled = d.send(PodGroupSubmitRequested(podgroup="default/pg", manifest=podgroup("pg", min_member=4)))
    assert types(scaled) == ["PodGroupUpdated"]
    assert types(d.send(PodGroupDeleteRequested(podgroup="default/pg"))) == ["PodGroupDeleted"]
    assert types(d.send(PodGroupDeleteRequested(podgroup="default/pg"))) == ["PodGroupRefused"]


def test_pods_that_come_first_join_their_podgroup_in_order_when_it_is_created() -> None:
    d = Driver()
    d.send(PriorityClassAdded(name="high", value=1000))
    assert types(d.send(PodSubmitRequested(pod="default/w1", manifest=pod("w1", group="pg"), uid="u1"))) == ["PodAwaitingPodGroup"]
    assert types(d.send(PodSubmitRequested(pod="default/w0", manifest=pod("w0", group="pg"), uid="u0"))) == ["PodAwaitingPodGroup"]
    d.send(PodDeleted(pod="default/w0"))  # gone before its group came: it joins nothing
    answer = d.send(PodGroupSubmitRequested(podgroup="default/pg", manifest=podgroup("pg")))
    assert types(answer) == ["PodGroupCreated", "PodRequested"]
    request = answer[1]
    assert request.pod == "default/w1" and request.podgroup == "default/pg" and request.uid == "u1"  # type: ignore[attr-defined]
    assert request.priority == 1000 and request.requests == {"cpu": 500, "memory": 1 << 30, "pods": 1}  # type: ignore[attr-defined]
    later = d.send(PodSubmitRequested(pod="default/w2", manifest=pod("w2", group="pg", annotations={"volcano.sh/task-spec": "worker"})))
    assert types(later) == ["PodRequested"]
    assert later[0].index == 1 and later[0].task == "worker"  # type: ignore[attr-defined]


def test_a_pod_without_a_podgroup_gets_volcanos_podgroup_of_its_controller_or_of_itself() -> None:
    d = Driver()
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "rs-uid", "controller": True}
    first = d.send(PodSubmitRequested(pod="default/web-1-a", uid="a-uid", manifest=pod(
        "web-1-a", owner=owner, annotations={"scheduling.volcano.sh/queue-name": "research", "volcano.sh/preemptable": "false"})))
    assert types(first) == ["PodGroupCreated", "PodRequested"]
    made = first[0]
    assert isinstance(made, PodGroupCreated) and made.podgroup == "default/podgroup-rs-uid"
    spec = made.manifest.spec
    assert (spec.min_member, spec.queue, spec.priority_class_name) == (1, "research", "high")
    assert spec.min_resources == {"cpu": "500m", "memory": "1Gi"}
    assert made.manifest.metadata.annotations == {"volcano.sh/preemptable": "false"}
    assert first[1].manifest.metadata.annotations["scheduling.k8s.io/group-name"] == "podgroup-rs-uid"  # type: ignore[attr-defined]
    # the ReplicaSet's next replica joins the same group
    assert types(d.send(PodSubmitRequested(pod="default/web-1-b", uid="b-uid", manifest=pod("web-1-b", owner=owner)))) == ["PodRequested"]
    # an owner that is not a controller does not count: the pod's own uid names its group
    alone = d.send(PodSubmitRequested(pod="default/solo", uid="solo-uid", manifest=pod("solo", owner={**owner, "controller": False})))
    assert alone[0].podgroup == "default/podgroup-solo-uid"  # type: ignore[attr-defined]
    assert [r.kind for r in alone[0].manifest.metadata.owner_references] == ["Pod"]  # type: ignore[attr-defined]


def test_refusals_name_the_reason_and_change_nothing() -> None:
    d = Driver()
    d._fold(PodGroupCreated(podgroup="default/vj-1", job="default/vj", manifest=podgroup("vj-1")))
    d.send(PodSubmitRequested(pod="default/p", manifest=pod("p")))
    before = copy.deepcopy(d.state)
    other = pod("q")
    other = type(other)(metadata=other.metadata, spec=type(other.spec)(containers=other.spec.containers, scheduler_name="default-scheduler"))
    refusals = [
        d.send(PodGroupSubmitRequested(podgroup="default/vj-1", manifest=podgroup("vj-1"))),
        d.send(PodSubmitRequested(pod="default/s", manifest=pod("s", group="vj-1"))),
        d.send(PodSubmitRequested(pod="default/p", manifest=pod("p"))),
        d.send(PodSubmitRequested(pod="default/q", manifest=other)),
    ]
    assert [types(r) for r in refusals] == [["PodGroupRefused"], ["PodRefused"], ["PodRefused"], ["PodRefused"]]
    reasons = [r[0].reason for r in refusals]  # type: ignore[attr-defined]
    assert reasons == [
        "podgroup default/vj-1 belongs to job default/vj",
        "podgroup default/vj-1 belongs to job default/vj; only its own pods join it",
        "pod default/p exists",
        "pod default/q is for scheduler default-scheduler, not eventbatch or volcano",
    ]
    assert d.state == before
