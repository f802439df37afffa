"""A placement that catches up with changed nodes holds exactly what a new one would: same fits, same scores, same node.

A ``Placement`` scores every node once, then re-fits and re-scores only the
rows the session changed since it last looked: one row at a time in plain
Python when there are up to six, in one array call of every scoring plugin
beyond, the whole column when most rows changed. Whatever the path, the
node it picks must be the one a fresh placement over the same nodes picks,
and every score must be what scoring that node alone gives.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.scheduler import DEFAULT_CONF, load_conf, run_session
from handlers.scheduler.actions import allocate, enqueue
from handlers.scheduler.conf import DEFAULT_CONF_TEXT
from handlers.scheduler.placement import NEG, Placement, placement_for
from handlers.scheduler.session import Session
from schemas import events as ev
from tests.unit.scheduler.tables import Cluster

# Every weight of nodeorder on, binpack over the GPUs too, and data locality: each node score in play.
ALL_SCORES = load_conf(
    DEFAULT_CONF_TEXT.replace(
        "  - name: nodeorder\n  - name: binpack\n",
        "  - name: nodeorder\n    arguments: {mostrequested.weight: 2, leastrequested.weight: 1}\n"
        "  - name: binpack\n    arguments: {binpack.resources: nvidia.com/gpu, binpack.resources.nvidia.com/gpu: 3}\n"
        "  - name: data-locality\n",
    )
)
CONFS = {"default": DEFAULT_CONF, "all-scores": ALL_SCORES}

SHAPES = (("8", "32Gi", None), ("16", "32Gi", 4), ("4", "64Gi", None))
ZONES = ("a", "b", "c")
SIZES = (("500m", "1Gi"), ("1", "3Gi"), ("1500m", "512Mi"), ("2", "6Gi"), ("250m", "2Gi"), ("3", "1Gi"))
NODES = 24
TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}
OPERATIONS = ["take", "give", "reserve", "unreserve"]


def mixed_cluster(conf) -> Cluster:
    """Three node shapes in three zones, NoSchedule and PreferNoSchedule taints, and pending gangs of
    six request sizes, some with a nodeSelector, a toleration, a preferred zone or a GPU, one too big."""
    c = Cluster(conf).queue("default")
    for i in range(NODES):
        cpu, memory, gpu = SHAPES[i % 3]
        taints = [("dedicated", "batch", "NoSchedule")] if i % 8 == 5 else []
        taints += [("spot", "true", "PreferNoSchedule")] if i % 5 == 2 else []
        c.node(f"n{i:02d}", cpu=cpu, memory=memory, gpu=gpu, labels={"zone": ZONES[(i // 3) % 3]}, taints=taints)
    for j in range(18):
        cpu, memory = SIZES[j % len(SIZES)]
        requests = {"cpu": cpu, "memory": memory}
        if j % 7 == 3:
            requests["nvidia.com/gpu"] = "1"
        kwargs: dict = {}
        if j % 3 == 0:
            kwargs["node_selector"] = {"zone": ZONES[(j // 3) % 3]}
        if j % 4 == 1:
            kwargs["tolerations"] = [TOLERATION]
        if j % 5 == 4:
            preference = {"matchExpressions": [{"key": "zone", "operator": "In", "values": [ZONES[j % 3]]}]}
            preferred = [{"weight": 40, "preference": preference}]
            kwargs["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}
        if j % 6 == 2:
            kwargs["annotations"] = {"eventbatch.io/data-locality": f"zone={ZONES[j % 3]}"}
        c.job(f"j{j:02d}", {"w": (3 + j % 4, requests)}, min_resources=False, **kwargs)
    # A gang that gets twelve of its fourteen GPUs in zone a and is given back.
    c.job("big", {"w": (14, {"cpu": "3", "memory": "1Gi", "nvidia.com/gpu": "1"})}, node_selector={"zone": "a"})
    return c


def kinds(ssn: Session) -> list:
    """One task of each kind (requests and placement constraints) the session has to place."""
    seen: dict = {}
    for job in ssn.jobs.values():
        for task in job.tasks:
            seen.setdefault((task.role_key[1], task.signature), task)
    return list(seen.values())


def assert_current(ssn: Session, place: Placement) -> None:
    """``place`` (caught up) holds what a placement built now holds, and its scores are the single-node ones."""
    fresh = Placement(ssn, place.task, pipeline=place.pipeline)
    for name in ("fit_idle", "fit_future", "on_idle", "on_future"):
        assert np.array_equal(getattr(place, name), getattr(fresh, name)), name
    assert place.best() == fresh.best()
    nodes = ssn.nodes
    for i in np.flatnonzero((place.on_idle > NEG) | (place.on_future > NEG)).tolist():
        alone = ssn.hooks.node_order.sum(place.task, nodes, i)
        assert max(place.on_idle[i], place.on_future[i]) == alone, i


# One step: changes to the node arrays (operation, row, which kind of task's requests), then a look
# by one kind of task. give/unreserve undo an earlier take/reserve, so nodes stay within their size.
steps_st = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.sampled_from(OPERATIONS), st.integers(0, NODES - 1), st.integers(0, 99)),
            max_size=12,
        ),
        st.integers(0, 99),
        st.booleans(),  # whether that look is a pipelining placement or not
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.parametrize("conf", list(CONFS), ids=list(CONFS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps_st)
def test_caught_up_placements_equal_fresh_ones(conf, steps):
    c = mixed_cluster(CONFS[conf])
    ssn = Session(c.state(), CONFS[conf], now=c.clock + 1)
    nodes = ssn.nodes
    tasks = kinds(ssn)
    # Every kind looks once before anything changes, so later looks catch up.
    places = {(k, p): Placement(ssn, t, pipeline=p) for k, t in enumerate(tasks) for p in (True, False)}
    held: dict[str, list] = {"take": [], "reserve": []}
    for changes, who, pipeline in steps:
        for op, row, kind in changes:
            vec = tasks[kind % len(tasks)].vec
            if op in ("take", "reserve"):
                getattr(nodes, op)(row, vec)
                held[op].append((row, vec))
            elif held["take" if op == "give" else "reserve"]:
                getattr(nodes, op)(*held["take" if op == "give" else "reserve"].pop())
        place = places[(who % len(tasks), pipeline)]
        place.sync()
        assert_current(ssn, place)
    for place in places.values():
        place.sync()
        assert_current(ssn, place)


@pytest.mark.parametrize("conf", list(CONFS), ids=list(CONFS))
def test_a_mixed_allocation_leaves_every_placement_current(conf):
    """After a real allocate over the mixed cluster (gangs placed, some discarded), every shared
    placement, caught up, still equals a fresh one: the nodes chosen were the ones a full scoring picks."""
    c = mixed_cluster(CONFS[conf])
    ssn = Session(c.state(), CONFS[conf], now=c.clock + 1)
    enqueue.execute(ssn)
    allocate.execute(ssn)
    placed = [t for job in ssn.jobs.values() for t in job.tasks if t.status in ("Allocated", "Pipelined")]
    assert len(placed) > 20  # the session did place pods across kinds
    assert list(ssn.unschedulable) == ["default/big"]  # and gave back the places of a gang that fell short
    assert len(ssn.placements) > 6
    for place in ssn.placements.values():
        place.sync()
        assert_current(ssn, place)
    # And each kind's next choice is the one a new placement makes.
    for task in kinds(ssn):
        assert placement_for(ssn, task).best() == Placement(ssn, task).best()


def test_static_scores_follow_a_node_change_between_sessions():
    """nodeorder keeps its taint and affinity scores from one session to the next on the same
    nodes; a node changed in between is scored afresh (here its PreferNoSchedule taint moved)."""
    c = Cluster(DEFAULT_CONF).queue("default")
    c.node("n0", taints=[("spot", "true", "PreferNoSchedule")]).node("n1")
    c.job("a", {"w": (1, {"cpu": "100m"})}, min_resources=False)
    state, folded = c.handler.initial(), 0

    def catch_up() -> None:  # one state folded on, as the scheduler's own is between sessions
        nonlocal state, folded
        for envelope in c.log[folded:]:
            state = c.handler.fold(state, envelope)
        folded = len(c.log)

    def session() -> dict[str, str]:
        catch_up()
        decisions = run_session(state, DEFAULT_CONF, now=c.clock + 1)
        c.add(*decisions)
        return {d.pod: d.node for d in decisions if isinstance(d, ev.PodBound)}

    assert session() == {"default/a-w-0": "n1"}  # away from the tainted node
    c.job("b", {"w": (1, {"cpu": "100m"})}, min_resources=False)
    assert session() == {"default/b-w-0": "n1"}  # the same nodes: still n1, despite a's pod there
    c.node("n0", update=True).node("n1", taints=[("spot", "true", "PreferNoSchedule")], update=True)
    c.job("c", {"w": (1, {"cpu": "100m"})}, min_resources=False)
    assert session() == {"default/c-w-0": "n0"}  # the taint is on n1 now
