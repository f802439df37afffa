"""Which node: predicates filter (taints, selectors, affinity, runtime classes), scores choose."""

from __future__ import annotations

import numpy as np
import pytest

from handlers.scheduler import DEFAULT_CONF
from handlers.scheduler.placement import placement_for
from handlers.scheduler.session import Session
from schemas import events as ev
from tests.unit.scheduler.tables import Cluster, bound, of, per_node

BASE = 'actions: "enqueue, allocate, backfill"\ntiers:\n- plugins:\n  - name: gang\n  - name: predicates{args}\n'


def _conf(extra: str = "", predicates_args: str = "") -> str:
    return BASE.format(args=predicates_args) + extra


def _one_pod(c: Cluster, **kwargs) -> dict[str, str]:
    c.job("p", {"w": (1, {"cpu": "1"})}, min_resources=False, **kwargs)
    return bound(c.schedule())


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        (_conf("  - name: binpack\n"), {"n0": 3}),
        (_conf("  - name: nodeorder\n    arguments: {balancedresource.weight: 0}\n"), {"n0": 1, "n1": 1, "n2": 1}),
        (
            _conf("  - name: nodeorder\n    arguments: {leastrequested.weight: 0, mostrequested.weight: 1}\n"),
            {"n0": 3},
        ),
    ],
    ids=["binpack-packs", "least-requested-spreads", "most-requested-packs"],
)
def test_scores_pack_or_spread(conf, expected):
    c = Cluster(conf).queue("default").nodes(3, cpu="4")
    for j in range(3):
        c.job(f"j{j}", {"w": (1, {"cpu": "1", "memory": "1Gi"})}, min_resources=False)
    assert per_node(c.schedule()) == expected


def test_binpack_weights_extended_resources():
    conf = _conf("  - name: binpack\n    arguments: {binpack.resources: nvidia.com/gpu, binpack.resources.nvidia.com/gpu: 10}\n")
    c = Cluster(conf).queue("default").node("a", cpu="8", gpu=4).node("b", cpu="8", gpu=4)
    c.job("first", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "2"})}, min_resources=False)
    c.schedule()
    c.job("second", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "1"})}, min_resources=False)
    assert bound(c.schedule()) == {"default/second-w-0": "a"}


@pytest.mark.parametrize(
    ("effect", "tolerations", "allowed"),
    [
        ("NoSchedule", None, {"clean"}),
        ("NoExecute", None, {"clean"}),
        ("PreferNoSchedule", None, {"clean", "tainted"}),
        ("NoSchedule", [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}], {"clean", "tainted"}),
        ("NoSchedule", [{"key": "gpu", "operator": "Exists"}], {"clean", "tainted"}),
        ("NoSchedule", [{"operator": "Exists"}], {"clean", "tainted"}),
        ("NoSchedule", [{"key": "gpu", "operator": "Equal", "value": "false"}], {"clean"}),
        ("NoSchedule", [{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}], {"clean"}),
    ],
    ids=["noschedule", "noexecute", "prefer-is-not-a-filter", "equal", "exists", "wildcard", "wrong-value", "wrong-effect"],
)
def test_taints_without_tolerations_block(effect, tolerations, allowed):
    c = Cluster(_conf()).queue("default")
    c.node("tainted", taints=[("gpu", "true", effect)]).node("clean", cpu="0")  # clean has no room
    placed = _one_pod(c, tolerations=tolerations)
    assert set(placed.values()) == (allowed - {"clean"})
    if not placed:
        [verdict] = of([e.payload for e in c.log], ev.PodGroupUnschedulable)
        assert "untolerated taint {gpu: true}" in verdict.message


LABELS = {"a": {"zone": "east", "gen": "3"}, "b": {"zone": "west", "gen": "5"}, "c": {"gen": "x"}}


@pytest.mark.parametrize(
    ("selector", "expressions", "allowed"),
    [
        ({"zone": "east"}, None, {"a"}),
        (None, [{"key": "zone", "operator": "In", "values": ["east", "west"]}], {"a", "b"}),
        (None, [{"key": "zone", "operator": "NotIn", "values": ["east"]}], {"b", "c"}),
        (None, [{"key": "zone", "operator": "Exists"}], {"a", "b"}),
        (None, [{"key": "zone", "operator": "DoesNotExist"}], {"c"}),
        (None, [{"key": "gen", "operator": "Gt", "values": ["4"]}], {"b"}),
        (None, [{"key": "gen", "operator": "Lt", "values": ["4"]}], {"a"}),
        ({"zone": "west"}, [{"key": "gen", "operator": "Lt", "values": ["4"]}], set()),
    ],
    ids=["selector", "in", "notin", "exists", "doesnotexist", "gt", "lt", "selector-and-affinity"],
)
def test_node_selector_and_required_affinity_filter(selector, expressions, allowed):
    conf = _conf("  - name: nodeorder\n")
    affinity = None
    if expressions:
        affinity = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
            }
        }
    c = Cluster(conf).queue("default")
    for name, labels in LABELS.items():
        c.node(name, cpu="1", labels=labels)
    # three one-cpu pods, one node's room each: they land on every allowed node
    c.job("p", {"w": (3, {"cpu": "1"})}, min_member=1, min_resources=False, node_selector=selector, affinity=affinity)
    assert set(bound(c.schedule()).values()) == allowed


def test_unschedulable_nodes_are_skipped_unless_tolerated():
    c = Cluster(_conf()).queue("default").node("cordoned", unschedulable=True)
    assert _one_pod(c) == {}
    c = Cluster(_conf()).queue("default").node("cordoned", unschedulable=True)
    toleration = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    assert _one_pod(c, tolerations=toleration) == {"default/p-w-0": "cordoned"}


RUNTIME = """
    arguments:
      runtimeClasses:
        singularity:
          nodeSelector: {runtime: singularity}
          tolerations: [{key: hpc, operator: Exists}]"""


@pytest.mark.parametrize(
    ("runtime_class", "expected"),
    [("singularity", {"hpc"}), ("", {"plain"}), ("kata", set())],
    ids=["runtime-class-nodes", "no-runtime-class", "unknown-runtime-class"],
)
def test_runtime_class_scheduling_constraints(runtime_class, expected):
    c = Cluster(_conf(predicates_args=RUNTIME)).queue("default")
    c.node("hpc", labels={"runtime": "singularity"}, taints=[("hpc", "", "NoSchedule")]).node("plain")
    placed = _one_pod(c, runtime_class=runtime_class)
    assert set(placed.values()) == expected
    if not expected:
        [verdict] = of([e.payload for e in c.log], ev.PodGroupUnschedulable)
        assert verdict.message == '1/1 tasks in gang unschedulable: 2 runtime class "kata" not found'


def test_fit_errors_are_counted_per_reason():
    c = Cluster(_conf()).queue("default")
    c.node("g1", gpu=2, labels={"pool": "gpu"})  # room for one of the four
    c.node("c1", labels={"pool": "cpu"}).node("c2", labels={"pool": "cpu"})
    c.job("train", {"w": (4, {"cpu": "1", "nvidia.com/gpu": "2"})}, min_member=4, min_resources=False, node_selector={"pool": "gpu"})
    [verdict] = of(c.schedule(), ev.PodGroupUnschedulable)
    assert verdict.message == (
        "3/4 tasks in gang unschedulable: 1 Insufficient nvidia.com/gpu, 2 node(s) didn't match node selector"
    )


def test_pod_count_is_a_resource():
    c = Cluster(_conf()).queue("default").node("n0", pods=2)
    c.job("many", {"w": (3, {"cpu": "100m"})}, min_resources=False)
    [verdict] = of(c.schedule(), ev.PodGroupUnschedulable)
    assert verdict.message.endswith(": 1 Too many pods")


def test_single_node_scoring_matches_the_array_scoring():
    """Incremental updates score one node in plain Python; it must equal the array result."""
    c = Cluster(DEFAULT_CONF).queue("default")
    for i in range(7):
        c.node(f"n{i}", cpu=str(2 + i), memory=f"{3 + 2 * i}Gi", gpu=i % 3, taints=[("x", "", "PreferNoSchedule")] if i % 2 else [])
    c.job("j", {"w": (5, {"cpu": "700m", "memory": "1500Mi", "nvidia.com/gpu": "1"})}, min_resources=False)
    ssn = Session(c.state(), DEFAULT_CONF, now=10)
    task = next(iter(ssn.jobs.values())).tasks[0]
    ssn.nodes.take(3, task.vec)
    ssn.nodes.take(5, task.vec)
    whole = ssn.node_scores(task)
    one_by_one = np.array([ssn.hooks.node_order.sum(task, ssn.nodes, i) for i in range(len(ssn.nodes))])
    assert np.array_equal(whole, one_by_one)
    assert placement_for(ssn, task).best() is not None


@pytest.mark.parametrize(
    ("affinity", "tolerations", "expected"),
    [
        (None, None, "plain"),  # PreferNoSchedule keeps it off the tainted node
        (None, [{"key": "spot", "operator": "Exists", "effect": "PreferNoSchedule"}], "east"),  # tolerated: first name
        (
            {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 50, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["west"]}]}}
                    ]
                }
            },
            [{"key": "spot", "operator": "Exists"}],
            "west",
        ),
        (
            {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 50, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["west"]}]}}
                    ]
                }
            },
            None,
            "plain",  # tainttoleration (weight 3) outweighs nodeaffinity (weight 2)
        ),
    ],
    ids=["prefer-no-schedule-avoided", "tolerated", "preferred-affinity", "taint-outweighs-affinity"],
)
def test_nodeorder_prefers(affinity, tolerations, expected):
    c = Cluster(_conf("  - name: nodeorder\n")).queue("default")
    c.node("east", labels={"zone": "east"}, taints=[("spot", "", "PreferNoSchedule")])
    c.node("plain", labels={"zone": "none"})
    c.node("west", labels={"zone": "west"}, taints=[("spot", "", "PreferNoSchedule")])
    placed = _one_pod(c, affinity=affinity, tolerations=tolerations)
    assert placed == {"default/p-w-0": expected}
