"""task-topology: roles of one job kept together (affinity), spread (anti-affinity), placed in a given order."""

from __future__ import annotations

import pytest

from handlers.scheduler.conf import load_conf
from schemas import events as ev
from tests.unit.scheduler.tables import Cluster, bound, of


def conf(scorer: str):
    return load_conf(
        f"""
actions: "enqueue, allocate"
tiers:
- plugins: [{{name: priority}}, {{name: gang}}]
- plugins: [{{name: predicates}}, {{name: {scorer}}}, {{name: task-topology}}]
"""
    )


def nodes_of(decisions, role: str) -> list[str]:
    return sorted(node for pod, node in bound(decisions).items() if f"-{role}-" in pod)


@pytest.mark.parametrize(
    ("scorer", "annotations", "check"),
    [
        ("nodeorder", {}, lambda ps, w: len(set(ps + w)) == 4),
        ("nodeorder", {"volcano.sh/task-topology-affinity": "ps,worker"}, lambda ps, w: len(set(ps + w)) == 1),
        ("binpack", {}, lambda ps, w: len(set(w)) == 1),
        ("binpack", {"volcano.sh/task-topology-anti-affinity": "worker"}, lambda ps, w: len(set(w)) == 4),
        (
            "binpack",
            {"volcano.sh/task-topology-affinity": "ps,worker", "volcano.sh/task-topology-anti-affinity": "ps"},
            lambda ps, w: len(set(ps)) == 2 and set(w) <= set(ps),
        ),
    ],
    ids=["spread-by-default", "ps-with-workers", "packed-by-binpack", "workers-apart", "ps-apart-workers-near-ps"],
)
def test_roles_are_placed_together_or_apart_as_the_job_asks(scorer, annotations, check):
    c = Cluster(conf(scorer)).nodes(4, cpu="8", memory="32Gi").queue("default")
    c.job("tf", {"ps": (2, {"cpu": "1"}), "worker": (4, {"cpu": "1"})}, annotations=annotations)
    decisions = c.schedule()
    ps, workers = nodes_of(decisions, "ps"), nodes_of(decisions, "worker")
    assert len(ps) == 2 and len(workers) == 4
    assert check(ps, workers), (ps, workers)


def test_the_named_task_order_decides_which_role_is_placed_first():
    c = Cluster(conf("nodeorder")).nodes(1, cpu="8").queue("default")
    c.job(
        "tf",
        {"ps": (1, {"cpu": "1"}), "worker": (2, {"cpu": "1"})},
        annotations={
            "volcano.sh/task-topology-affinity": "ps,worker",
            "volcano.sh/task-topology-task-order": "worker,ps",
        },
    )
    placed = [d.pod for d in of(c.schedule(), ev.PodBound)]
    assert placed == ["default/tf-worker-0", "default/tf-worker-1", "default/tf-ps-0"]


def test_a_running_ps_draws_the_workers_scheduled_later():
    c = Cluster(conf("nodeorder")).nodes(4, cpu="8").queue("default")
    topo = {"volcano.sh/task-topology-affinity": "ps,worker"}
    c.job("tf", {"ps": (1, {"cpu": "1"}), "worker": (3, {"cpu": "1"})}, annotations=topo, min_member=1, pods=False)
    c.pods("tf", {"ps": (1, {"cpu": "1"})})
    [ps_node] = bound(c.schedule()).values()
    c.add(ev.PodStarted(pod="default/tf-ps-0", job="default/tf", node=ps_node))
    c.pods("tf", {"worker": (3, {"cpu": "1"})})
    assert set(nodes_of(c.schedule(), "worker")) == {ps_node}
