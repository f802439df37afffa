"""Whatever the cluster: no node is overfilled, gangs are bound whole, decisions repeat exactly."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import events as ev
from tests.unit.scheduler.tables import Cluster

nodes_st = st.lists(
    st.tuples(st.integers(1, 8), st.integers(0, 2), st.sampled_from(["a", "b"]), st.booleans()),
    min_size=1,
    max_size=6,
)
jobs_st = st.lists(
    st.tuples(
        st.integers(1, 5),  # replicas
        st.integers(0, 5),  # min member (capped at replicas)
        st.integers(0, 3),  # cpu per pod (0: best effort)
        st.integers(0, 1),  # gpu per pod
        st.sampled_from(["qa", "qb"]),
        st.sampled_from([None, "a", "b"]),  # node selector on pool
        st.booleans(),  # min resources given
    ),
    min_size=1,
    max_size=8,
)


def _build(nodes, jobs) -> Cluster:
    c = Cluster().queue("qa", weight=1).queue("qb", weight=2)
    for i, (cpu, gpu, pool, tainted) in enumerate(nodes):
        c.node(f"n{i}", cpu=str(cpu), gpu=gpu, labels={"pool": pool}, taints=[("t", "", "NoSchedule")] if tainted else [])
    for j, (replicas, min_member, cpu, gpu, queue, pool, min_resources) in enumerate(jobs):
        requests = {}
        if cpu:
            requests["cpu"] = str(cpu)
        if gpu:
            requests["nvidia.com/gpu"] = str(gpu)
        c.job(
            f"j{j}",
            {"w": (replicas, requests)},
            queue=queue,
            min_member=min(min_member, replicas),
            node_selector={"pool": pool} if pool else None,
            min_resources=min_resources,
        )
    return c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes_st, jobs_st)
def test_sessions_never_overfill_nodes_and_bind_gangs_whole(nodes, jobs):
    c = _build(nodes, jobs)
    first = c.schedule(now=10)
    second = c.schedule(now=20)
    state = c.state()
    for node in state.nodes.values():
        for resource, amount in node.used.items():
            assert amount <= node.allocatable.get(resource, 0), (node.name, resource)
    for group in state.podgroups.values():
        held = [p for p in state.pods.values() if p.podgroup == group.name and p.status == "Bound"]
        assert not held or len(held) >= group.min_member
        for pod in held:
            assert not state.nodes[pod.node].taints  # nobody tolerates the taint
    replay = _build(nodes, jobs)
    assert replay.schedule(now=10) == first and replay.schedule(now=20) == second
    assert not state.stale  # its own decisions always apply when folded right after
    assert all(isinstance(d, ev.Event) for d in first + second)
