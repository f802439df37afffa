"""The ``fgd`` scheduler plugin: GPU placement policies chosen in the conf, in real sessions."""

from __future__ import annotations

import pytest

from handlers.scheduler import load_conf
from handlers.scheduler.conf import ConfError
from handlers.scheduler.devices import GpuRequest
from handlers.scheduler.plugins.fgd import FGD, device_choice, learn_workload
from handlers.scheduler.session import Session
from schemas import events as ev
from tests.unit.scheduler.tables import Cluster, of

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


def _cluster(policy: str) -> Cluster:
    c = Cluster(CONF.format(policy=policy)).queue("default")
    return c.node("g0", cpu="16", memory="64Gi", gpu=1).node("g1", cpu="16", memory="64Gi", gpu=1)


def _bound(decisions: list[ev.Event]) -> dict[str, str]:
    return {e.pod: e.node for e in of(decisions, ev.PodBound)}


def _scenario(policy: str) -> tuple[dict[str, str], list[ev.Event]]:
    """g0 holds a 0.3 share; then a 0.3 task and two 0.6 tasks arrive (half the pods the
    cluster has seen ask 0.3, half 0.6)."""
    c = _cluster(policy)
    c.job("a", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "300m"})})
    assert _bound(c.schedule()) == {"default/a-w-0": "g0"}  # equal nodes: the first by name
    c.job("c", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "300m"})})
    c.job("d", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "600m"})})
    c.job("e", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "600m"})})
    decisions = c.schedule()
    return _bound(decisions), decisions


def test_fgd_keeps_room_that_best_fit_strands() -> None:
    """Best fit puts the second 0.3 share with the first (g0: 0.4 left, which no 0.6 task
    can use), so the second 0.6 task finds 0.4 on each GPU and waits. FGD puts it on g1
    (0.7 left on each GPU, both still hold a 0.6), and every task is placed."""
    fgd, _ = _scenario("fgd")
    assert fgd == {"default/c-w-0": "g1", "default/d-w-0": "g0", "default/e-w-0": "g1"}
    best, decisions = _scenario("bestfit")
    assert best == {"default/c-w-0": "g0", "default/d-w-0": "g1"}
    refused = [e for e in of(decisions, ev.PodGroupUnschedulable) if e.podgroup == "default/e"]
    assert refused and "2 Insufficient nvidia.com/gpu" in refused[0].message  # 0.4 left on each node


@pytest.mark.parametrize("policy", ["dotproduct", "gpupacking", "gpuclustering"])
def test_the_packing_baselines_strand_it_too(policy: str) -> None:
    placed, _ = _scenario(policy)
    assert placed["default/c-w-0"] == "g0" and "default/e-w-0" not in placed


def _random_pick(seed: int) -> str:
    conf = CONF.format(policy="random") + "      fgd.seed: " + str(seed) + "\n"
    c = Cluster(conf).queue("default")
    for i in range(8):
        c.node(f"g{i}", cpu="16", memory="64Gi", gpu=1)
    c.job("a", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "300m"})})
    (node,) = _bound(c.schedule()).values()
    return node


def test_random_is_seeded_by_the_conf_and_deterministic() -> None:
    picks = [_random_pick(seed) for seed in range(8)]
    assert picks == [_random_pick(seed) for seed in range(8)]
    assert len(set(picks)) > 2  # not the first node by name every time


def test_the_workload_is_learnt_from_the_pods_of_the_cluster_state() -> None:
    c = _cluster("fgd")
    c.job("a", {"w": (3, {"cpu": "1", "nvidia.com/gpu": "300m"})})
    c.job("b", {"w": (1, {"cpu": "2", "nvidia.com/gpu": "1"})})
    ssn = Session(c.state(), c.handler.conf, c.clock + 1)
    workload = learn_workload(ssn)
    assert list(zip(workload.cpu.tolist(), workload.milli.tolist(), workload.count.tolist(), strict=True)) == [
        (1000, 300, 1),
        (2000, 1000, 1),
    ]
    assert workload.weight.tolist() == [0.75, 0.25]
    plugin = next(p for p in ssn.plugins if isinstance(p, FGD))
    assert plugin.workload.popularity.tolist() == [3, 1]  # the session's own, counted


def test_fgd_chooses_the_device_the_hook_gives() -> None:
    c = Cluster(CONF.format(policy="fgd")).queue("default").node("g0", cpu="16", memory="64Gi", gpu=2)
    c.job("a", {"w": (3, {"cpu": "1", "nvidia.com/gpu": "500m"})})
    c.job("b", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "200m"})})
    ssn = Session(c.state(), c.handler.conf, c.clock + 1)
    task = next(iter(ssn.jobs["default/b"].tasks))
    # devices with 0.7 and 0.5 free: a 0.2 share on the 0.7 one leaves 0.5 + 0.5 for the
    # 0.5 tasks; best fit would take the 0.5 one and strand 0.3.
    ssn.devices.gpu_free[0] = [700, 500]
    assert device_choice(ssn, task, 0, future=False) == (0,)


def test_fgd_scores_nodes_and_devices_with_the_simulators_integer_scores() -> None:
    """Pods ask 0.5 shares (19) and a 0.2 one; a 0.1 task meets devices with 0.25, 0.3 and 1.0
    free. On the 0.3 device the expected fragmentation drops 95 milli-GPU, on the 0.25 one
    87.5 (its 0.15 left is lost to the 0.2 type): both score 52 once rounded as the paper's
    simulator does, and its first device of the best score is the 0.25 one."""
    c = Cluster(CONF.format(policy="fgd")).queue("default").node("g0", cpu="16", memory="64Gi", gpu=3)
    c.node("g1", cpu="16", memory="64Gi", gpu=3)
    c.job("a", {"w": (19, {"cpu": "1", "nvidia.com/gpu": "500m"})})
    c.job("b", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "200m"})})
    c.job("t", {"w": (1, {"cpu": "2", "nvidia.com/gpu": "100m"})})
    ssn = Session(c.state(), c.handler.conf, c.clock + 1)
    plugin = next(p for p in ssn.plugins if isinstance(p, FGD))
    assert plugin.workload.popularity.tolist() == [19, 1]  # the task's own type is past 95 %
    task = next(iter(ssn.jobs["default/t"].tasks))
    # the session takes 0.75 and 0.7 on g0's devices 0 and 1, and 0.7 on g1's device 0 (as
    # its statement does when it places: devices, then the node's row marked changed)
    for node, device, share in ((0, 0, 750), (0, 1, 700), (1, 0, 700)):
        ssn.devices.take(node, (device,), GpuRequest(share, 1))
        ssn.nodes.take(node, ssn.nodes.vector({}))
    assert ssn.devices.gpu_free[:, :3].tolist() == [[250, 300, 1000], [300, 1000, 1000]]
    assert device_choice(ssn, task, 0, future=False) == (0,)  # the least increase is device 1's
    # g1: -95 on its 0.3 device too, 52 as well: equal scores, and the tie goes to g0, first by name
    assert plugin.score(task, ssn.nodes, None).tolist() == [52.0, 52.0]


def test_a_bad_policy_is_refused_when_the_conf_is_loaded() -> None:
    with pytest.raises(ConfError, match="fgd.policy must be one of fgd, bestfit"):
        load_conf(CONF.format(policy="tetris"))


def _devices_scenario(policy: str) -> dict[str, list[int]]:
    """One node of two GPUs, a 0.3 share on device 0; a 0.3 task and two 0.7 tasks arrive."""
    c = Cluster(CONF.format(policy=policy)).queue("default").node("g0", cpu="16", memory="64Gi", gpu=2)
    c.job("x", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "300m"})})
    c.schedule()
    for name, share in (("y", "300m"), ("z1", "700m"), ("z2", "700m")):
        c.job(name, {"w": (1, {"cpu": "1", "nvidia.com/gpu": share})})
    return {e.pod: e.devices for e in of(c.schedule(), ev.PodBound)}


def test_the_bind_carries_the_device_fgd_chose() -> None:
    """Best fit puts the 0.3 task on device 0 (0.4 left there, 1.0 on device 1), and the
    second 0.7 task finds 0.4 and 0.3; FGD puts it on device 1 (0.7 left on each), and both
    0.7 tasks are bound."""
    assert _devices_scenario("fgd") == {"default/y-w-0": [1], "default/z1-w-0": [0], "default/z2-w-0": [1]}
    assert _devices_scenario("bestfit") == {"default/y-w-0": [0], "default/z1-w-0": [1]}
