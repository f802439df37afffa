"""A cluster with no nodes is a normal state: every conf, every workload, no failure, no decision but a verdict.

Each case runs real sessions (the scheduler's own fold and ``decide``) over a
cluster that has no node at all (never had one, or lost its last one), with
the default conf, the confs of ``examples/`` and confs that turn on every
action and plugin. A session may only explain (``PodGroupUnschedulable``),
and, in a conf without enqueue, admit the Pending podgroups as Volcano's
allocate does; a podgroup waiting for admission is told the cluster has no nodes; a second
session changes nothing; and once a node joins, the same jobs run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.scheduler import load_conf
from handlers.scheduler.conf import DEFAULT_CONF_TEXT
from schemas import events as ev
from schemas.quantity import to_resources
from schemas.resources import NetworkTopologySpec, ObjectMeta, PodGroup, PodGroupSpec
from schemas.scenario import load_scenario
from tests.unit.scheduler.tables import Cluster, default_conf_with, node_event

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NO_NODES = "the cluster has no nodes"
SWITCH = "topology.kubernetes.io/switch"

EVERYTHING = """
actions: "enqueue, reserve, allocate, preempt, reclaim, backfill, shuffle"
tiers:
- plugins:
  - name: priority
  - name: gang
  - name: conformance
  - name: sla
    arguments: {sla-waiting-time: 1s}
- plugins:
  - name: overcommit
  - name: drf
  - name: predicates
  - name: proportion
  - name: nodeorder
  - name: binpack
  - name: task-topology
  - name: network-topology-aware
    arguments: {tiers: [topology.kubernetes.io/switch]}
  - name: data-locality
configurations:
- name: reserve
  arguments: {starvation: 1s}
- name: enqueue
  arguments: {inqueue-timeout: 1s}
"""
HIERARCHY = """
actions: "enqueue, allocate, preempt, reclaim, backfill"
tiers:
- plugins: [{name: priority}, {name: gang}, {name: conformance}]
- plugins:
  - name: drf
    enabledHierarchy: true
  - name: predicates
  - name: capacity
  - name: nodeorder
"""


def _example_confs() -> dict[str, str | None]:
    confs: dict[str, str | None] = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        text = load_scenario(path).scheduler_conf
        if text is not None:
            confs[f"example-{path.stem}"] = text
    return confs


CONFS: dict[str, str | None] = {
    "default": DEFAULT_CONF_TEXT,
    "no-enqueue": default_conf_with("allocate, backfill"),
    "preempt-reclaim": default_conf_with("enqueue, allocate, preempt, reclaim, backfill"),
    "everything": EVERYTHING,
    "hierarchy": HIERARCHY,
    **_example_confs(),
}


def _topology_job(c: Cluster, name: str) -> None:
    key = f"default/{name}"
    group = PodGroup(
        metadata=ObjectMeta(name=name, namespace="default"),
        spec=PodGroupSpec(min_member=2, queue="default", network_topology=NetworkTopologySpec(mode="hard")),
    )
    c.add(ev.PodGroupCreated(podgroup=key, job=key, manifest=group, min_resources=to_resources({"cpu": "2"})))
    c.pods(name, {"w": (2, {"cpu": "1"})})


def _admitted(c: Cluster, name: str, queue: str = "default") -> None:
    """The podgroup was admitted while nodes were there."""
    key = f"default/{name}"
    c.add(ev.PodGroupEnqueued(podgroup=key, job=key, queue=queue, rule="enqueue"))


def _workload(c: Cluster, kind: str) -> None:
    if kind == "none":
        return
    if kind == "best-effort":
        c.job("be", {"w": (2, {})}, min_resources=False)
    elif kind == "requests":
        c.job("req", {"w": (2, {"cpu": "1", "memory": "1Gi"})})
    elif kind == "mixed":
        c.priority_class("high", 1000).priority_class("low", 1)
        c.job("low", {"w": (1, {"cpu": "1"})}, priority_class="low", queue="q2")
        c.job("high", {"ps": (1, {"cpu": "1"}), "w": (2, {"cpu": "1", "nvidia.com/gpu": "1"})},
              priority_class="high", annotations={
                  "volcano.sh/task-topology-affinity": "ps,w",
                  "eventbatch.io/data-locality": "nodes=gone",
                  "sla-waiting-time": "1s",
              })
        c.job("be", {"w": (1, {})}, min_resources=False, queue="q2")
        _topology_job(c, "topo")
    elif kind == "mixed-admitted":
        _workload(c, "mixed")
        for name, queue in (("low", "q2"), ("high", "default"), ("be", "q2"), ("topo", "default")):
            _admitted(c, name, queue)
    elif kind == "admitted":
        c.job("req", {"w": (2, {"cpu": "1"})})
        _admitted(c, "req")
        c.job("be", {"w": (1, {})}, min_resources=False, queue="q2")
        _admitted(c, "be", "q2")
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(kind)


def _cluster(conf: str | None, *, lost: bool) -> Cluster:
    c = Cluster(load_conf(conf) if conf else None)
    c.queue("default", weight=1).queue("q2", weight=2)
    if lost:  # a node was there and left: the cluster is empty again
        c.add(node_event("gone", cpu="4"))
        c.add(ev.NodeRemoved(node="gone", reason="test"))
    return c


def _pending_podgroups(c: Cluster) -> set[str]:
    state = c.state()
    return {name for name, group in state.podgroups.items() if group.phase == "Pending"}


WORKLOADS = ("none", "best-effort", "requests", "mixed", "admitted", "mixed-admitted")


@pytest.mark.parametrize("lost", [False, True], ids=["never-had-nodes", "lost-its-nodes"])
@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("conf_name", sorted(CONFS))
def test_sessions_without_nodes_only_explain(conf_name, workload, lost):
    conf = CONFS[conf_name]
    c = _cluster(conf, lost=lost)
    _workload(c, workload)
    waiting = _pending_podgroups(c)
    uses_enqueue = "enqueue" in load_conf(conf or DEFAULT_CONF_TEXT).actions

    first = c.schedule(now=c.clock + 1)
    # Without an enqueue action, allocate admits every Pending podgroup, nodes or not, as Volcano's
    # allocate does (issue 16, rule 3: allocate.go buildAllocateContext); nothing else but verdicts.
    admitted = [d for d in first if isinstance(d, ev.PodGroupEnqueued)]
    assert {d.podgroup for d in admitted} == (set() if uses_enqueue else waiting), first
    assert all(d.rule == "allocate.no-enqueue" for d in admitted), first
    first = [d for d in first if not isinstance(d, ev.PodGroupEnqueued)]
    kinds = {type(d).__name__ for d in first}
    assert kinds <= {"PodGroupUnschedulable"}, first
    assert all(NO_NODES in d.message for d in first), first
    told = {d.podgroup for d in first}
    if uses_enqueue:
        assert waiting <= told, first
    if workload == "admitted":
        assert "default/req" in told, first
    if workload == "mixed-admitted":
        assert {"default/high", "default/low", "default/topo"} <= told, first
    # Nothing changed: the next session decides nothing. Past every time limit, only verdicts
    # again, and admissions given back on their configured inqueue-timeout.
    assert c.schedule(now=c.clock + 1) == []
    later = c.schedule(now=c.clock + 60_000)
    for d in later:
        timed_out = isinstance(d, ev.PodGroupPhaseChanged) and d.rule == "enqueue.inqueue-timeout"
        assert timed_out or (isinstance(d, ev.PodGroupUnschedulable) and NO_NODES in d.message), later


@pytest.mark.parametrize("conf_name", sorted(CONFS))
def test_a_node_joining_lets_the_waiting_jobs_run(conf_name):
    conf = CONFS[conf_name]
    c = _cluster(conf, lost=False)
    c.job("req", {"w": (2, {"cpu": "1"})})
    c.job("be", {"w": (1, {})}, min_resources=False)
    c.schedule()
    c.add(node_event("n0", cpu="8", memory="32Gi"))
    placed: dict[str, str] = {}
    for _ in range(4):  # admission, then placement
        for d in c.schedule():
            if isinstance(d, ev.PodBound):
                placed[d.pod] = d.node
    assert placed == {"default/req-w-0": "n0", "default/req-w-1": "n0", "default/be-w-0": "n0"}


def test_the_verdict_reads_like_kube_scheduler():
    c = _cluster(None, lost=False)
    c.job("req", {"w": (2, {"cpu": "1"})})
    [verdict] = c.schedule()
    assert verdict.reason == "NotEnqueueable"
    assert verdict.message == "0/0 nodes are available: the cluster has no nodes"
    assert verdict.rule == "enqueue"


def test_an_admitted_gang_that_lost_every_node_is_told_why():
    c = _cluster(default_conf_with("allocate, backfill"), lost=True)
    c.job("req", {"w": (2, {"cpu": "1"})})
    # No enqueue action: allocate admits the podgroup first (issue 16, rule 3), then tells why.
    admitted, verdict = c.schedule()
    assert isinstance(admitted, ev.PodGroupEnqueued) and admitted.rule == "allocate.no-enqueue"
    assert verdict.reason == "NotEnoughResources"
    assert verdict.message == "2/2 tasks in gang unschedulable: 0/0 nodes are available: the cluster has no nodes"
