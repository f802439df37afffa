"""What a session carries on from the one before, or leaves out, never changes a decision.

A session with nothing to admit or place (no Pending podgroup, no pod
waiting for a node, no Inqueue reservation timed out) decides its close's
phase changes without opening its plugins or running its actions
(``session.nothing_to_place``); placements are carried on between sessions
on the same nodes (``placement.Carried``). Here the scheduler's own state is
folded on from session to session, as the runtime keeps it, and each
session's decisions are compared with those of a session over a state
folded afresh from the same log (which has nothing to carry on).
"""

from __future__ import annotations

import pytest

from handlers.scheduler import DEFAULT_CONF, load_conf, run_session
from handlers.scheduler.conf import DEFAULT_CONF_TEXT
from handlers.scheduler.placement import Carried
from handlers.scheduler.session import nothing_to_place, places_nothing
from handlers.scheduler.snapshot import build
from schemas import events as ev
from schemas.events.base import Event
from schemas.runtimeclass import load_runtime_class, runtime_class_added
from tests.unit.scheduler.tables import Cluster


class Kept:
    """A cluster whose scheduler state is folded on between sessions, as the runtime's is."""

    def __init__(self, conf=DEFAULT_CONF) -> None:
        self.conf = conf
        self.c = Cluster(conf).queue("default")
        self.state = self.c.handler.initial()
        self.folded = 0

    def catch_up(self) -> None:
        for envelope in self.c.log[self.folded :]:
            self.state = self.c.handler.fold(self.state, envelope)
        self.folded = len(self.c.log)

    def session(self, now: int | None = None) -> list[Event]:
        """One session on the kept state; its decisions equal those over a fresh state, and are logged."""
        now = self.c.clock + 1 if now is None else now
        self.c.clock = max(self.c.clock, now)
        self.catch_up()
        decided = run_session(self.state, self.conf, now)
        assert decided == run_session(self.c.state(), self.conf, now)
        self.c.add(*decided)
        return decided

    def quiet(self, now: int | None = None) -> bool:
        self.catch_up()
        return nothing_to_place(build(self.state), self.conf, self.c.clock + 1 if now is None else now)


def pod_event(cls: type, name: str, **kwargs) -> Event:
    return cls(pod=f"default/{name}", job="default/" + name.rsplit("-", 2)[0], **kwargs)


def test_a_finished_pod_completes_its_podgroup_without_opening_the_plugins():
    k = Kept()
    k.c.nodes(2, cpu="4", memory="8Gi")
    k.c.job("a", {"w": (1, {"cpu": "1"})}, pods=False)
    assert not k.quiet()  # a Pending podgroup: enqueue has work
    assert [type(e) for e in k.session()] == [ev.PodGroupEnqueued]
    assert k.quiet()  # admitted, no pod yet: nothing to place
    assert k.session() == []
    k.c.pods("a", {"w": (1, {"cpu": "1"})})
    assert not k.quiet()
    assert [type(e) for e in k.session()] == [ev.PodBound, ev.PodGroupPhaseChanged]
    k.c.add(pod_event(ev.PodStarted, "a-w-0", node="n0"))
    assert k.quiet()
    assert k.session() == []  # Running, and nothing changed
    k.c.add(pod_event(ev.PodSucceeded, "a-w-0"))
    assert k.quiet()
    [done] = k.session()
    assert isinstance(done, ev.PodGroupPhaseChanged)
    assert (done.phase, done.previous, done.reason) == ("Completed", "Running", "AllTasksSucceeded")


def test_a_timed_out_reservation_is_given_back_though_nothing_waits_for_a_node():
    conf = load_conf(DEFAULT_CONF_TEXT + "configurations:\n- name: enqueue\n  arguments: {inqueue-timeout: 1m}\n")
    k = Kept(conf)
    k.c.nodes(1, cpu="4", memory="8Gi")
    k.c.job("a", {"w": (1, {"cpu": "1"})}, pods=False)  # its pods never come
    assert [type(e) for e in k.session()] == [ev.PodGroupEnqueued]
    enqueued = k.c.clock
    assert k.quiet(enqueued + 59_000)
    assert k.session(enqueued + 59_000) == []
    assert not k.quiet(enqueued + 61_000)  # the reservation's time is up
    [back] = k.session(enqueued + 61_000)
    assert isinstance(back, ev.PodGroupPhaseChanged)
    assert (back.phase, back.reason) == ("Pending", "InqueueTimeout")


def test_placements_carried_on_choose_the_nodes_new_ones_choose():
    """Pods of two kinds arrive one session apart on small nodes while earlier ones finish: the
    placement of each kind made in its first session is taken up by every later one, caught up
    with the nodes that changed in between (by the session that last used it, and on the log
    since), and each session picks the nodes a session with nothing carried picks."""
    k = Kept()
    for i in range(5):
        k.c.node(f"n{i}", cpu="3", memory="16Gi")
    kinds = ({"cpu": "1", "memory": "1Gi"}, {"cpu": "1500m", "memory": "3Gi"})
    seen: dict[tuple, set[int]] = {}
    nodes = []
    for j in range(40):
        if j == 10:  # a gang that never fits: a session places what fits of it and gives it back
            k.c.job("big", {"w": (11, kinds[1])}, min_resources=False)
            assert [type(e) for e in k.session()] == [ev.PodGroupEnqueued, ev.PodGroupUnschedulable]
        k.c.job(f"j{j}", {"w": (1 + j % 2, kinds[j % 2])})
        bound = [e for e in k.session() if isinstance(e, ev.PodBound)]  # admitted and placed
        assert len(bound) == 1 + j % 2
        for e in bound:
            k.c.add(ev.PodStarted(pod=e.pod, job=e.job, node=e.node))
            nodes.append(e.node)
        if j >= 3:  # the job of three rounds ago finishes: its nodes have room again
            for i in range(1 + (j - 3) % 2):
                k.c.add(pod_event(ev.PodSucceeded, f"j{j - 3}-w-{i}"))
            k.session()
        carried = getattr(k.state.node_cache, "carried", None)
        assert isinstance(carried, Carried)
        for key, place in carried.places.items():
            seen.setdefault(key, set()).add(id(place))
    assert len(seen) == 2 and all(len(ids) == 1 for ids in seen.values())  # each kind's one placement
    assert len(set(nodes)) == 5  # the choices moved around the nodes as they filled and emptied


def test_kept_predicate_verdicts_follow_the_runtime_classes():
    """The predicates' verdicts kept with the carried placements are dropped when a RuntimeClass
    appears: a pod refused for naming a class the cluster lacks is placed by the session after
    the class is added, on the node its class selects, as over a state with nothing kept."""
    k = Kept()
    k.c.node("hpc", cpu="8", memory="16Gi", labels={"runtime": "singularity"}, taints=[("hpc", "", "NoSchedule")])
    k.c.node("plain", cpu="8", memory="16Gi")
    k.c.job("a", {"w": (1, {"cpu": "1"})}, runtime_class="singularity")
    decided = k.session()
    assert [type(e) for e in decided] == [ev.PodGroupEnqueued, ev.PodGroupUnschedulable]
    assert "runtime class" in decided[1].message
    carried = k.state.node_cache.carried
    assert isinstance(carried, Carried) and carried.static  # the refusal is kept
    raw = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "singularity"},
           "handler": "runsc", "scheduling": {"nodeSelector": {"runtime": "singularity"},
                                              "tolerations": [{"key": "hpc", "operator": "Exists"}]}}
    k.c.add(runtime_class_added(load_runtime_class(raw)))
    bound = [e for e in k.session() if isinstance(e, ev.PodBound)]
    assert [(e.pod, e.node) for e in bound] == [("default/a-w-0", "hpc")]


def test_a_session_that_only_admits_reads_the_kept_node_arrays_and_cannot_write_them():
    """A session with a podgroup to admit and no pod waiting for a node opens its plugins over
    the node and device arrays kept between sessions, shared read only: it decides what a
    session over a fresh state decides, and a write to those arrays fails instead of
    changing what later sessions read."""
    k = Kept()
    k.c.nodes(2, cpu="4", memory="8Gi")
    k.c.job("a", {"w": (1, {"cpu": "1"})})
    assert [type(e) for e in k.session()] == [ev.PodGroupEnqueued, ev.PodBound, ev.PodGroupPhaseChanged]
    k.c.job("b", {"w": (1, {"cpu": "1"})}, pods=False)  # admitted first, its pods made after
    k.catch_up()
    snap = build(k.state)
    assert places_nothing(snap, k.conf) and not nothing_to_place(snap, k.conf, k.c.clock + 1)
    snap.share()
    for array in (snap.nodes.used, snap.nodes.alloc, snap.nodes.unschedulable):
        with pytest.raises(ValueError):
            array[0] = 1
    assert [type(e) for e in k.session()] == [ev.PodGroupEnqueued]
    k.c.pods("b", {"w": (1, {"cpu": "1"})})
    k.catch_up()
    assert not places_nothing(build(k.state), k.conf)  # a pod waits: the session copies what it changes
    bound = [e for e in k.session() if isinstance(e, ev.PodBound)]
    assert len(bound) == 1


def test_kept_idle_and_future_are_those_of_the_rows_as_they_stand():
    """The kept node arrays' idle and future rows, brought up to date with used and releasing,
    are what a session over a fresh state computes, while pods are placed, released and gone."""
    k = Kept()
    k.c.nodes(3, cpu="4", memory="8Gi")
    for j in range(6):
        k.c.job(f"j{j}", {"w": (1 + j % 2, {"cpu": "1", "memory": "1Gi"})})
        k.session()
        if j >= 2:
            k.c.add(ev.PodDeletionRequested(pod=f"default/j{j - 2}-w-0", job=f"default/j{j - 2}", reason="test"))
        k.catch_up()
        kept, fresh = build(k.state).nodes, build(k.c.state()).nodes
        for name in ("used", "idle", "future"):
            assert (getattr(kept, name) == getattr(fresh, name)).all(), name
        for i, node in enumerate(kept.names):  # what the node records say, dimension by dimension
            rec = k.state.nodes[node]
            for j, d in enumerate(kept.dims):
                idle = rec.allocatable.get(d, 0) - rec.used.get(d, 0)
                assert (kept.idle[i, j], kept.future[i, j]) == (idle, idle + rec.releasing.get(d, 0))
    assert (kept.future > kept.idle).any()  # some pods are being released
