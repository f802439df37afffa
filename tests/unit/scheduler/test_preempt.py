"""preempt: a starving higher-priority job evicts lower-priority pods of its queue, and only those that may go."""

from __future__ import annotations

import pytest

from schemas import events as ev
from schemas.resources import ObjectMeta, Pod, PodSpec
from tests.unit.scheduler.tables import Cluster, default_conf_with, of

CONF = default_conf_with("enqueue, allocate, preempt, backfill")

# The preemptors are built admitted (``inqueue=True``), as Volcano's preempt tests build their podgroups
# Inqueue: preempt takes no Pending podgroup (issue 16, rule 2), and on a full node overcommit keeps it Pending.

# Within one job: gang's starving vote off, so a job at its minimum may still reorder its own pods.
SAME_JOB = CONF.replace("  - name: gang\n", "  - name: gang\n    enabledJobStarving: false\n")

LOW = {"main": (4, {"cpu": "1"})}


def _cluster(conf: str = CONF, *, capability: dict | None = None) -> Cluster:
    c = Cluster(conf).queue("default", capability=capability).queue("other")
    return c.priority_class("high", 1000).priority_class("low", 10).node("n0", cpu="4")


def _evicted(decisions) -> dict[str, tuple[str, str]]:
    return {d.pod: (d.rule, d.preemptor) for d in of(decisions, ev.PodEvictionRequested)}


def _run_low(c: Cluster, name: str = "low", *, queue: str = "default", min_member: int = 1, **kw) -> None:
    c.job(name, LOW, queue=queue, min_member=min_member, priority_class="low", **kw)
    c.schedule()


CASES = [
    # (id, low job minMember, preemptor priority class, preemptor cpu, queue of the low job, expected victims)
    ("priority-within-queue", 1, "high", "2", "default", ["default/low-main-2", "default/low-main-3"]),
    ("equal-priority-never", 1, "low", "2", "default", []),
    ("other-queue-never", 1, "high", "2", "other", []),
    ("gang-keeps-its-minimum", 3, "high", "1", "default", ["default/low-main-3"]),
    # the low job may lose one pod only: two cpus cannot be freed, so nothing goes
    ("gang-minimum-blocks", 3, "high", "2", "default", []),
]


@pytest.mark.parametrize(
    ("min_member", "klass", "cpu", "queue", "victims"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_who_is_preempted(min_member, klass, cpu, queue, victims):
    c = _cluster()
    _run_low(c, queue=queue, min_member=min_member)
    c.job("urgent", {"main": (1, {"cpu": cpu})}, priority_class=klass, inqueue=True)
    decisions = c.schedule()
    evicted = _evicted(decisions)
    assert sorted(evicted) == victims
    if victims:
        [pipelined] = of(decisions, ev.PodPipelined)
        assert (pipelined.pod, pipelined.node, pipelined.rule) == ("default/urgent-main-0", "n0", "preempt.pipeline")
        assert {rule for rule, _ in evicted.values()} == {"preempt.priority"}
        assert {who for _, who in evicted.values()} == {"default/urgent-main-0"}
        assert not of(decisions, ev.PodGroupUnschedulable)


def test_reason_names_preemptor_priorities_and_queue():
    c = _cluster()
    _run_low(c)
    c.job("urgent", {"main": (1, {"cpu": "1"})}, priority_class="high", inqueue=True)
    [eviction] = of(c.schedule(), ev.PodEvictionRequested)
    assert eviction.reason == "preempted by default/urgent (priority 1000 > 10) in queue default"


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"labels": {"volcano.sh/preemptable": "false"}}, 0),
        ({"annotations": {"volcano.sh/preemptable": "false"}}, 0),
        ({"labels": {"volcano.sh/preemptable": "true"}}, 1),
        ({}, 1),
    ],
    ids=["label-false", "annotation-false", "label-true", "unlabelled"],
)
def test_non_preemptable_pods_are_never_victims(meta, expected):
    c = _cluster()
    c.job("low", LOW, min_member=1, priority_class="low", pods=False)
    for i in range(4):
        pod = f"default/low-main-{i}"
        manifest = Pod(metadata=ObjectMeta(name=pod[8:], namespace="default", **meta), spec=PodSpec())
        c.add(
            ev.PodRequested(
                pod=pod, job="default/low", podgroup="default/low", task="main", index=i,
                manifest=manifest, requests={"cpu": 1000, "pods": 1},
            )
        )
    c.schedule()
    c.job("urgent", {"main": (1, {"cpu": "1"})}, priority_class="high", inqueue=True)
    assert len(of(c.schedule(), ev.PodEvictionRequested)) == expected


def test_rollback_when_the_preemptor_cannot_fit_even_with_every_victim():
    c = _cluster()
    _run_low(c)
    c.job("huge", {"main": (1, {"cpu": "8"})}, priority_class="high", inqueue=True)
    decisions = c.schedule()
    assert of(decisions, ev.PodEvictionRequested) == [] and of(decisions, ev.PodPipelined) == []


def test_gang_rollback_when_only_part_of_the_preemptor_gang_fits():
    c = _cluster().node("n1", cpu="4")
    c.job("keep", {"main": (1, {"cpu": "4"})}, priority_class="high")  # n1 is not preemptable for urgent
    _run_low(c)
    c.job("urgent", {"main": (2, {"cpu": "4"})}, priority_class="high", inqueue=True)
    decisions = c.schedule()
    # urgent is admitted (issue 16, rule 2: preempt takes no Pending podgroup), its queue is used up, so
    # allocate passes it over, and preempt finds room for one of its two pods only: nothing is evicted.
    assert of(decisions, ev.PodEvictionRequested) == [] and of(decisions, ev.PodPipelined) == []
    assert of(decisions, ev.PodBound) == []


def test_queue_capability_drives_preemption_within_the_queue():
    c = Cluster(CONF).queue("default", capability={"cpu": "2"}).priority_class("high", 1000)
    c.priority_class("low", 10).node("n0", cpu="8")
    c.job("low", {"main": (2, {"cpu": "1"})}, min_member=1, priority_class="low")
    c.schedule()
    c.job("urgent", {"main": (1, {"cpu": "1"})}, priority_class="high", inqueue=True)
    decisions = c.schedule()
    # the node has room; the queue does not: one low pod makes way
    assert sorted(_evicted(decisions)) == ["default/low-main-1"]
    [pipelined] = of(decisions, ev.PodPipelined)
    assert pipelined.pod == "default/urgent-main-0"


def test_between_pods_of_one_job():
    c = Cluster(SAME_JOB).queue("default").node("n0", cpu="3")
    c.job("mixed", {"main": (3, {"cpu": "1"})}, min_member=2)
    c.schedule()
    c.pods("mixed", {"vip": (1, {"cpu": "1"})}, priority=100)
    decisions = c.schedule()
    [eviction] = of(decisions, ev.PodEvictionRequested)
    assert eviction.pod.startswith("default/mixed-main-") and eviction.preemptor == "default/mixed-vip-0"
    assert eviction.reason == "preempted by default/mixed-vip-0 of the same job (priority 100 > 0)"


def test_a_full_cluster_leaves_a_high_priority_gang_pending_and_preempts_once_it_is_admitted():
    """Issue 16, rule 2 (this test asserted before that preempt admitted the podgroup itself, rule
    ``preempt.enqueue``). Volcano: pkg/scheduler/actions/preempt/preempt.go line 113:
    ``if job.IsPending() { continue }``; only enqueue admits, and overcommit refuses 3 cpu on a full
    4-cpu node (4 x 1.2 - 4 used < 3). Once admitted (as Volcano's preempt tests build their
    podgroups, Inqueue), it preempts."""
    c = _cluster()
    _run_low(c)
    c.job("urgent", {"main": (3, {"cpu": "1"})}, priority_class="high", pods=False)
    decisions = c.schedule()
    assert of(decisions, ev.PodGroupEnqueued) == []
    assert [(d.podgroup, d.reason) for d in of(decisions, ev.PodGroupUnschedulable)] == [
        ("default/urgent", "NotEnqueueable")
    ]
    c.add(ev.PodGroupEnqueued(podgroup="default/urgent", job="default/urgent", queue="default", rule="enqueue"))
    c.pods("urgent", {"main": (3, {"cpu": "1"})})
    decisions = c.schedule()
    assert len(of(decisions, ev.PodEvictionRequested)) == 3  # the low job keeps its minimum of one
    assert len(of(decisions, ev.PodPipelined)) == 3


def test_evicted_pods_release_their_node_and_the_preemptor_binds_once_they_are_gone():
    c = _cluster()
    _run_low(c)
    c.job("urgent", {"main": (1, {"cpu": "2"})}, priority_class="high", inqueue=True)
    first = c.schedule()
    victims = [d.pod for d in of(first, ev.PodEvictionRequested)]
    assert c.state().nodes["n0"].releasing["cpu"] == 2000
    assert of(c.schedule(), ev.PodEvictionRequested) == []  # not asked twice
    c.add(*(ev.PodDeleted(pod=p, job="default/low") for p in victims))
    assert {d.pod: d.node for d in of(c.schedule(), ev.PodBound)} == {"default/urgent-main-0": "n0"}


def test_sessions_repeat_exactly():
    c = _cluster()
    _run_low(c)
    c.job("urgent", {"main": (1, {"cpu": "2"})}, priority_class="high", inqueue=True)
    trigger_at = len(c.log)
    first = c.schedule()
    again = c.handler.decide(c.state(c.log[:trigger_at]), c.log[trigger_at])
    assert again == first


@pytest.mark.parametrize(
    ("pods", "min_member", "evicted"),
    [(1, 1, 1), (2, 2, 0)],
    ids=["one-pod-job-stops-whole", "gang-at-its-minimum-stays"],
)
def test_a_job_at_its_minimum_goes_only_if_it_is_a_single_pod(pods, min_member, evicted):
    c = Cluster(CONF).queue("default").priority_class("high", 1000).priority_class("low", 10).node("n0", cpu="2")
    c.job("low", {"main": (pods, {"cpu": str(2 // pods)})}, min_member=min_member, priority_class="low")
    c.schedule()
    c.job("urgent", {"main": (1, {"cpu": "2"})}, priority_class="high", inqueue=True)
    assert len(of(c.schedule(), ev.PodEvictionRequested)) == evicted
