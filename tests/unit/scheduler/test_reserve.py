"""reserve: a gang unschedulable past the starvation limit gets nodes that nothing new may take until it fits."""

from __future__ import annotations

import pytest

from schemas import events as ev
from tests.unit.scheduler.tables import Cluster, bound, of

PLUGINS = """
tiers:
- plugins:
  - name: priority
  - name: gang
- plugins:
  - name: predicates
  - name: proportion
  - name: nodeorder
"""
WITH = 'actions: "enqueue, reserve, allocate, backfill"' + PLUGINS + """
configurations:
- name: reserve
  arguments: {starvation: 10s}
"""
WITHOUT = 'actions: "enqueue, allocate, backfill"' + PLUGINS


def _finish(c: Cluster, name: str) -> None:
    """The small job is done and gone."""
    c.add(ev.PodSucceeded(pod=f"default/{name}-w-0", job=f"default/{name}"))
    c.add(ev.PodDeleted(pod=f"default/{name}-w-0", job=f"default/{name}"))
    c.add(ev.PodGroupDeleted(podgroup=f"default/{name}", job=f"default/{name}"))


def _starving_gang(conf: str) -> Cluster:
    """Four one-cpu small jobs fill two 2-cpu nodes; a gang of four one-cpu pods waits at t=1s."""
    c = Cluster(conf).queue("default").node("n0", cpu="2").node("n1", cpu="2")
    for i in range(4):
        c.job(f"s{i}", {"w": (1, {"cpu": "1"})})
    c.schedule(now=500)
    c.job("big", {"w": (4, {"cpu": "1"})}, at=900)
    [verdict] = of(c.schedule(now=1_000), ev.PodGroupUnschedulable)
    assert verdict.podgroup == "default/big"
    return c


def _stream(c: Cluster) -> dict[str, str]:
    """Past the limit, small jobs keep finishing and arriving; returns where the gang is bound."""
    placed: dict[str, str] = {}
    for i in range(4):
        _finish(c, f"s{i}")
        c.job(f"n{i}", {"w": (1, {"cpu": "1"})}, at=12_000 + i * 1_000)
        placed.update(bound(c.schedule(now=12_500 + i * 1_000)))
    return placed


def test_without_reserve_the_gang_starves_behind_small_jobs():
    c = _starving_gang(WITHOUT)
    placed = _stream(c)
    assert set(placed) == {f"default/n{i}-w-0" for i in range(4)}


def test_with_reserve_the_gang_gets_the_nodes_and_runs():
    c = _starving_gang(WITH)
    _finish(c, "s0")
    first = c.schedule(now=11_500)
    [reserved] = of(first, ev.ReservationMade)
    assert (reserved.podgroup, reserved.nodes, reserved.rule) == ("default/big", ["n0", "n1"], "reserve")
    assert reserved.reason == "unschedulable for 10.5s, past the 10s starvation limit"
    assert c.state().reservations == {"default/big": ("n0", "n1")}
    placed = _stream(c)
    gang = {pod: node for pod, node in placed.items() if pod.startswith("default/big")}
    assert len(gang) == 4 and not any(pod.startswith("default/n") for pod in placed)
    released = [e.payload for e in c.log if isinstance(e.payload, ev.ReservationReleased)]
    assert [(r.podgroup, r.reason) for r in released] == [("default/big", "the gang fits")]
    assert c.state().reservations == {}


def test_before_the_limit_nothing_is_reserved():
    c = _starving_gang(WITH)
    _finish(c, "s0")
    assert of(c.schedule(now=5_000), ev.ReservationMade) == []


def test_other_jobs_may_use_only_the_gaps_the_reserved_gang_leaves():
    c = Cluster(WITH).queue("default").nodes(3, cpu="4")
    for name, cpu in (("h0", "3"), ("h1", "3"), ("h2", "1")):
        c.job(name, {"w": (1, {"cpu": cpu})})
    c.schedule(now=500)
    c.job("big", {"w": (3, {"cpu": "2"})}, at=900)
    c.schedule(now=1_000)
    c.job("a", {"w": (1, {"cpu": "1"})}, at=11_000)
    c.job("b", {"w": (1, {"cpu": "1"})}, at=11_001)
    c.job("two", {"w": (1, {"cpu": "2"})}, at=11_002)
    decisions = c.schedule(now=12_000)
    # the gang is planned as two pods on n0 and one on n2: n2 keeps 2 of its 3 idle cpus, 1 is a gap
    assert of(decisions, ev.ReservationMade)[0].nodes == ["n0", "n2"]
    assert bound(decisions) == {"default/a-w-0": "n1", "default/b-w-0": "n2"}


def test_a_reservation_ends_when_its_podgroup_is_gone():
    c = _starving_gang(WITH)
    c.schedule(now=12_000)
    c.add(ev.PodGroupDeleted(podgroup="default/big", job="default/big"))
    [released] = of(c.schedule(now=13_000), ev.ReservationReleased)
    assert released.reason == "the podgroup is gone"


@pytest.mark.parametrize("conf", [WITH, WITHOUT], ids=["reserve", "no-reserve"])
def test_sessions_repeat_exactly(conf):
    c = _starving_gang(conf)
    _finish(c, "s0")
    at = len(c.log)
    first = c.schedule(now=11_500)
    assert c.handler.decide(c.state(c.log[:at]), c.log[at]) == first


@pytest.mark.parametrize(
    ("capability", "state", "reserved"),
    [(None, "Open", True), ({"cpu": "3"}, "Open", False), (None, "Closed", False)],
    ids=["open-queue", "beyond-queue-capability", "closed-queue"],
)
def test_only_for_podgroups_their_queue_could_run(capability, state, reserved):
    c = Cluster(WITH).queue("default", capability=capability).node("n0", cpu="4")
    c.job("s0", {"w": (1, {"cpu": "1"})})
    c.schedule(now=500)
    c.job("big", {"w": (4, {"cpu": "1"})}, at=900)
    c.schedule(now=1_000)
    c.add(ev.QueueStateChanged(queue="default", state=state))
    c.job("later", {"w": (1, {"cpu": "1"})}, at=11_000)
    assert bool(of(c.schedule(now=12_000), ev.ReservationMade)) == reserved


def test_not_for_a_gang_larger_than_its_queues_deserved_share():
    # two queues of equal weight share 4 cpus: a 4-cpu gang in one of them waits for fairness
    # (reclaim's case), and reserving nodes for it would only hold them idle
    c = Cluster(WITH).queue("default").queue("other").node("n0", cpu="4")
    c.job("s0", {"w": (1, {"cpu": "1"})}, queue="other")
    c.job("other-wants", {"w": (4, {"cpu": "1"})}, queue="other", min_member=1)
    c.schedule(now=500)
    c.job("big", {"w": (4, {"cpu": "1"})}, at=900)
    c.schedule(now=1_000)
    c.job("later", {"w": (1, {"cpu": "1"})}, queue="other", at=11_000)
    decisions = c.schedule(now=12_000)
    assert of(decisions, ev.ReservationMade) == []
