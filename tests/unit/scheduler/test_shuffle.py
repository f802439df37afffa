"""shuffle: evicts the pods a plugin's victim hook selects, and only pods that may be evicted at all."""

from __future__ import annotations

import pytest

from handlers.scheduler.actions import shuffle
from handlers.scheduler.session import Session
from schemas import events as ev
from schemas.resources import ObjectMeta, Pod, PodSpec
from tests.unit.scheduler.tables import Cluster, of

CONF = """
actions: "enqueue, allocate, shuffle"
tiers:
- plugins:
  - name: gang
  - name: predicates
"""


def _cluster() -> Cluster:
    c = Cluster(CONF).queue("default").node("n0", cpu="8")
    c.job("a", {"w": (2, {"cpu": "1"})}, min_member=1)
    c.job("b", {"w": (1, {"cpu": "1"})}, pods=False)
    meta = ObjectMeta(name="b-w-0", namespace="default", labels={"volcano.sh/preemptable": "false"})
    c.add(ev.PodRequested(pod="default/b-w-0", job="default/b", podgroup="default/b", task="w", index=0,
                          manifest=Pod(metadata=meta, spec=PodSpec()), requests={"cpu": 1000, "pods": 1}))
    c.schedule()
    assert {p.status for p in c.state().pods.values()} == {"Bound"}
    return c


def _session(c: Cluster, picks) -> list[ev.Event]:
    ssn = Session(c.state(), c.handler.conf, c.clock + 1)
    if picks is not None:
        ssn.hooks.victim.add(0, "rebalance", lambda _, candidates: [t for t in candidates if picks(t)])
    shuffle.execute(ssn)
    return ssn.decisions


@pytest.mark.parametrize(
    ("picks", "evicted"),
    [
        (None, []),
        (lambda t: t.name == "default/a-w-1", ["default/a-w-1"]),
        (lambda t: True, ["default/a-w-0", "default/a-w-1"]),
    ],
    ids=["no-victim-hook", "one-picked", "all-picked-but-non-preemptable"],
)
def test_shuffle_evicts_what_the_victim_hook_selects(picks, evicted):
    decisions = _session(_cluster(), picks)
    evictions = of(decisions, ev.PodEvictionRequested)
    assert [e.pod for e in evictions] == evicted
    assert {e.rule for e in evictions} <= {"shuffle.rebalance"}
    assert all(e.reason == "selected for rebalancing by rebalance" for e in evictions)
