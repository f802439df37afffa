"""A finished job costs the scheduler nothing: its working set after 1,000 finished jobs is the one after none.

The scheduler's fold keeps its working set as events arrive (the live
podgroups, the nodes whose held resources changed); a session opens over
that, never over everything the state has held. These tests run the real
fold and the real session over jobs that are submitted, bound, run and
finish, and compare a cluster with that history to one without it.
"""

from __future__ import annotations

import numpy as np

from handlers.scheduler.session import Session
from schemas import events as ev
from tests.unit.scheduler.tables import Cluster


class FoldingCluster(Cluster):
    """``Cluster`` whose state is folded once, event by event, as the runtime does."""

    def __init__(self, conf=None) -> None:
        super().__init__(conf)
        self._state = self.handler.initial()
        self._folded = 0

    def state(self, log=None):
        assert log is None
        for envelope in self.log[self._folded :]:
            self._state = self.handler.fold(self._state, envelope)
        self._folded = len(self.log)
        return self._state


def run_to_completion(c: FoldingCluster, name: str) -> None:
    """Submit a one-pod job, schedule it, and let its pod run and succeed and the job complete."""
    c.job(name, {"w": (1, {"cpu": "1", "memory": "1Gi"})})
    bound = [d for d in c.schedule() if isinstance(d, ev.PodBound)]
    assert len(bound) == 1, f"{name} was not bound"
    pod, node = bound[0].pod, bound[0].node
    c.add(ev.PodStarted(pod=pod, job=f"default/{name}", node=node))
    c.schedule()  # the podgroup turns Running
    c.add(ev.PodSucceeded(pod=pod, job=f"default/{name}"))
    c.add(ev.JobPhaseChanged(job=f"default/{name}", phase="Completed", previous="Running"))


def cluster(finished: int) -> FoldingCluster:
    c = FoldingCluster()
    c.queue("default")
    c.nodes(8, cpu="4", memory="8Gi")
    for k in range(finished):
        run_to_completion(c, f"done-{k}")
    # The same live work on both: a running job and one waiting to be placed.
    c.job("busy", {"w": (3, {"cpu": "2", "memory": "1Gi"})})
    c.schedule()
    c.job("next", {"w": (2, {"cpu": "3", "memory": "2Gi"})})
    return c


class Reads(dict):
    """A dict of the state that records which keys a session reads (the real dict, watched)."""

    def __init__(self, data: dict) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __iter__(self):
        for key in super().__iter__():
            self.read.add(key)
            yield key

    def keys(self):
        return list(self)

    def items(self):
        return [(key, self[key]) for key in self]

    def values(self):
        return [self[key] for key in self]


def test_the_working_set_after_1000_finished_jobs_equals_the_one_after_none() -> None:
    fresh, old = cluster(0), cluster(1000)
    new_state, old_state = fresh.state(), old.state()
    assert len(old_state.finished_jobs) == 1000

    # What a session opens over: the same podgroups and pods read, the same jobs, the same
    # node arrays, whatever the history.
    sessions = []
    for c, state in ((fresh, new_state), (old, old_state)):
        watched = watch(state)
        session = Session(state, c.handler.conf, now=10**9)
        sessions.append((session, {name: set(keys) for name, keys in watched.items()}))
        unwatch(state)
    (a, read_a), (b, read_b) = sessions
    assert read_a == read_b
    assert list(a.jobs) == list(b.jobs) == ["default/busy", "default/next"]
    assert a.nodes.names == b.nodes.names and a.nodes.dims == b.nodes.dims and a.total == b.total
    for field in ("alloc", "used", "idle", "future"):
        assert np.array_equal(getattr(a.nodes, field), getattr(b.nodes, field)), field
    # The working set the fold keeps: the live podgroups, and at most one entry per node
    # for the nodes changed since a session.
    assert old_state.live_groups == new_state.live_groups == {"default/busy", "default/next"}
    assert len(old_state.node_touched) <= len(old_state.nodes)

    # And it decides the same for the live work.
    assert fresh.schedule(now=10**9) == old.schedule(now=10**9)


def watch(state) -> dict[str, set[str]]:
    """Watch the reads of the state's podgroups and pods; returns the keys read, by table."""
    tables = {name: Reads(getattr(state, name)) for name in ("podgroups", "pods", "pods_by_group")}
    for name, table in tables.items():
        setattr(state, name, table)
    return {name: table.read for name, table in tables.items()}


def unwatch(state) -> None:
    """The state's own tables back (reading them to copy would count as reads)."""
    for name in ("podgroups", "pods", "pods_by_group"):
        setattr(state, name, dict(dict.items(getattr(state, name))))


def test_a_session_reads_no_record_of_a_finished_job() -> None:
    c = cluster(200)
    state = c.state()
    finished_groups = {g for g, rec in state.podgroups.items() if rec.job in state.finished_jobs}
    finished_pods = {p for p, rec in state.pods.items() if rec.job in state.finished_jobs}
    assert len(finished_groups) == len(finished_pods) == 200  # the records are still held ...
    read = watch(state)
    decisions = c.handler.decide(state, _trigger(c))
    assert any(isinstance(d, ev.PodBound) and d.job == "default/next" for d in decisions)
    # ... but a session never looks at them.
    assert not (read["podgroups"] | read["pods_by_group"]) & finished_groups
    assert not read["pods"] & finished_pods


def test_a_job_that_leaves_a_final_phase_comes_back_to_the_working_set() -> None:
    c = cluster(0)
    c.add(ev.JobPhaseChanged(job="default/next", phase="Failed", previous="Pending"))
    assert c.state().live_groups == {"default/busy"}
    c.add(ev.JobPhaseChanged(job="default/next", phase="Pending", previous="Failed"))
    assert c.state().live_groups == {"default/busy", "default/next"}
    c.add(ev.JobRemoved(job="default/next"))
    assert c.state().live_groups == {"default/busy"} and "default/next" not in c.state().groups_by_job


def _trigger(c: Cluster):
    from schemas.envelope import Envelope

    c.clock += 1
    trigger = Envelope.wrap(ev.SchedulingRequested(now=c.clock), recorded_at=c.clock).at(len(c.log))
    c.log.append(trigger)
    return trigger
