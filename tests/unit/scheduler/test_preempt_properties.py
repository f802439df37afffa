"""Whatever the cluster: evictions only take pods that may go, for someone who then fits, and repeat exactly."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import events as ev
from schemas.resources import ObjectMeta, Pod, PodSpec, Queue, QueueSpec
from tests.unit.scheduler.tables import Cluster, default_conf_with

CONF = default_conf_with("enqueue, allocate, preempt, reclaim, backfill")

PRIORITIES = {"low": 10, "mid": 100, "high": 1000}

running_st = st.lists(
    st.tuples(
        st.integers(1, 4),  # replicas
        st.integers(1, 4),  # min member (capped at replicas)
        st.integers(1, 3),  # cpu per pod
        st.sampled_from(["qa", "qb"]),
        st.sampled_from(["low", "mid"]),
        st.booleans(),  # preemptable
    ),
    min_size=1,
    max_size=6,
)
arriving_st = st.lists(
    st.tuples(
        st.integers(1, 4),
        st.integers(1, 4),
        st.integers(1, 3),
        st.sampled_from(["qa", "qb"]),
        st.sampled_from(["mid", "high"]),
    ),
    min_size=1,
    max_size=4,
)


def _build(nodes: list[int], running, arriving) -> tuple[Cluster, list[ev.Event]]:
    c = Cluster(CONF)
    for name, weight in (("qa", 1), ("qb", 3)):
        manifest = Queue(metadata=ObjectMeta(name=name), spec=QueueSpec(weight=weight, reclaimable=True))
        c.add(ev.QueueCreated(queue=name, manifest=manifest), ev.QueueStateChanged(queue=name, state="Open"))
    for name, value in PRIORITIES.items():
        c.priority_class(name, value)
    for i, cpu in enumerate(nodes):
        c.node(f"n{i}", cpu=str(cpu))
    for j, (replicas, min_member, cpu, queue, klass, preemptable) in enumerate(running):
        name = f"r{j}"
        c.job(name, {"w": (replicas, {})}, queue=queue, min_member=min(min_member, replicas),
              priority_class=klass, pods=False)
        labels = {} if preemptable else {"volcano.sh/preemptable": "false"}
        for i in range(replicas):
            pod = f"default/{name}-w-{i}"
            meta = ObjectMeta(name=pod[8:], namespace="default", labels=labels)
            c.add(ev.PodRequested(pod=pod, job=f"default/{name}", podgroup=f"default/{name}", task="w", index=i,
                                  manifest=Pod(metadata=meta, spec=PodSpec()),
                                  requests={"cpu": cpu * 1000, "pods": 1}, priority=PRIORITIES[klass]))
    first = c.schedule(now=10)
    for j, (replicas, min_member, cpu, queue, klass) in enumerate(arriving):
        c.job(f"a{j}", {"w": (replicas, {"cpu": str(cpu)})}, queue=queue, min_member=min(min_member, replicas),
              priority_class=klass)
    return c, first


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(2, 6), min_size=1, max_size=4), running_st, arriving_st)
def test_evictions_take_only_pods_that_may_go(nodes, running, arriving):
    c, _ = _build(nodes, running, arriving)
    decisions = []
    for now in (20, 30):  # each session's evictions against the state that session saw
        before = c.state()
        session = c.schedule(now=now)
        decisions += session
        _check_evictions(before, [d for d in session if isinstance(d, ev.PodEvictionRequested)])
    after = c.state()
    assert not after.stale
    for node in after.nodes.values():
        assert node.used.get("cpu", 0) <= node.allocatable["cpu"]
    again, _ = _build(nodes, running, arriving)
    assert again.schedule(now=20) + again.schedule(now=30) == decisions


def _check_evictions(before, evictions: list[ev.PodEvictionRequested]) -> None:
    lost: dict[str, int] = {}
    for e in evictions:
        pod = before.pods[e.pod]
        assert pod.preemptable and pod.status in ("Bound", "Running")
        lost[pod.podgroup] = lost.get(pod.podgroup, 0) + 1
        preemptor = before.pods[e.preemptor]
        if e.rule == "preempt.priority":
            victim_group, preemptor_group = before.podgroups[pod.podgroup], before.podgroups[preemptor.podgroup]
            assert victim_group.queue == preemptor_group.queue
            assert before.priority_of(victim_group.priority_class) < before.priority_of(preemptor_group.priority_class)
        else:
            assert e.rule == "reclaim.proportion"
            assert before.podgroups[pod.podgroup].queue != before.podgroups[preemptor.podgroup].queue
    for group, count in lost.items():
        held = sum(1 for p in before.pods.values() if p.podgroup == group and p.status in ("Bound", "Running"))
        # gangs keep their minimum; a one-pod job may stop whole
        one_pod = sum(1 for p in before.pods.values() if p.podgroup == group and p.node) == 1
        assert held - count >= before.podgroups[group].min_member or (one_pod and count == 1)
