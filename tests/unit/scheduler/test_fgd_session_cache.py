"""The fgd plugin's scores kept through a session: after any sequence of placements and
undone placements, every node's score and device pick are those a session opened on the
resulting state would give (the plugin keeps them per node state and catches up)."""

from __future__ import annotations

import numpy as np
import pytest

from handlers.scheduler.plugins.fgd import FGD
from handlers.scheduler.session import Session
from handlers.scheduler.statement import Statement
from tests.unit.scheduler.tables import Cluster

CONF = """
actions: "enqueue, allocate, backfill"
tiers:
- plugins:
  - name: priority
  - name: gang
- plugins:
  - name: predicates
  - name: proportion
  - name: fgd
    arguments:
      fgd.policy: {policy}
"""

KINDS = {"s3": ("1", "300m"), "s6": ("2", "600m"), "w1": ("4", "1"), "w2": ("1", "2")}


def _session(policy: str) -> tuple[Session, dict[str, list]]:
    c = Cluster(CONF.format(policy=policy)).queue("default")
    for k in range(4):  # alike nodes: one state shared by several rows
        c.node(f"g{k}", cpu="16", memory="64Gi", gpu=2)
    c.node("h0", cpu="8", memory="64Gi", gpu=4)
    for name, (cpu, gpu) in KINDS.items():
        c.job(name, {"w": (3, {"cpu": cpu, "nvidia.com/gpu": gpu})})
    ssn = Session(c.state(), c.handler.conf, c.clock + 1)
    tasks = {name: sorted(ssn.jobs[f"default/{name}"].tasks, key=lambda t: t.name) for name in KINDS}
    return ssn, tasks


def _fresh(ssn: Session, policy: str) -> FGD:
    """A plugin opened on the session as it stands now (nothing kept from before)."""
    kept = next(p for p in ssn.plugins if isinstance(p, FGD))
    fresh = FGD(kept.option, kept.tier)
    fresh.open(ssn)
    return fresh


@pytest.mark.parametrize("policy", ["fgd", "bestfit", "gpupacking"])
def test_kept_scores_match_a_fresh_session_after_placements_and_discards(policy: str) -> None:
    ssn, tasks = _session(policy)
    plugin = next(p for p in ssn.plugins if isinstance(p, FGD))
    rows = np.arange(len(ssn.nodes))

    def check() -> None:
        fresh = _fresh(ssn, policy)
        for name in KINDS:
            task = tasks[name][0]
            kept_scores = plugin.score(task, ssn.nodes, None)
            assert np.array_equal(kept_scores, fresh.score(task, ssn.nodes, None)), name
            assert np.array_equal(plugin.score(task, ssn.nodes, rows[1:4]), kept_scores[1:4])
            for node in range(len(ssn.nodes)):
                assert plugin.score(task, ssn.nodes, node) == kept_scores[node]
                mine = plugin.devices(task, node, future=False)
                assert mine == fresh.devices(task, node, future=False), (name, node)

    check()  # every kind scored once: each keeps its scores from here on
    first = Statement(ssn)
    first.allocate(tasks["s3"][0], 0)  # g0 leaves the state g1..g3 stay in
    first.allocate(tasks["s3"][1], 1)  # g1 joins g0's new state
    check()
    first.discard()  # g0 and g1 back to the idle state (their interim state is gone)
    check()
    second = Statement(ssn)
    second.allocate(tasks["s6"][0], 4)
    second.allocate(tasks["w1"][0], 4)
    second.allocate(tasks["s3"][2], 2)
    check()
    second.discard()  # h0 back to its first state, which no row was in meanwhile
    check()
    third = Statement(ssn)
    third.allocate(tasks["w2"][0], 4)
    third.allocate(tasks["s6"][1], 3)
    check()
    fourth = Statement(ssn)
    fourth.allocate(tasks["w1"][1], 0)  # a state that appears, seen by one kind only,
    fourth.allocate(tasks["s3"][2], 2)  # (the device choice for this task looks)
    fourth.discard()  # and goes before the other kinds look
    check()
    Statement(ssn).allocate(tasks["w1"][1], 1)  # and appears again (on another node)
    check()
