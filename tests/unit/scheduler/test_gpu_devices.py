"""GPU sharing per device: a share fits one device, never the sum of several; binds name the
devices; preemption frees the victim's share of its one device; a discarded gang gives back."""

from __future__ import annotations

from handlers.scheduler.actions import allocate
from handlers.scheduler.devices import GpuRequest, gpu_request
from handlers.scheduler.session import Session
from schemas import events as ev
from schemas.resources import Node, NodeSpec, NodeStatus, ObjectMeta
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
  - name: nodeorder
"""

PREEMPT_CONF = """
actions: "enqueue, allocate, preempt"
tiers:
- plugins:
  - name: priority
  - name: gang
- plugins:
  - name: predicates
  - name: proportion
"""


def _gpu_cluster(conf: str = CONF, gpus: int = 2) -> Cluster:
    return Cluster(conf).queue("default").node("g0", cpu="16", memory="64Gi", gpu=gpus)


def _bound(decisions: list[ev.Event]) -> dict[str, list[int]]:
    return {e.pod: e.devices for e in of(decisions, ev.PodBound)}


def test_three_600m_pods_on_a_two_gpu_node_the_third_is_refused_and_why_says_so():
    c = _gpu_cluster()
    for name in ("a", "b", "c"):
        c.job(name, {"w": (1, {"cpu": "1", "nvidia.com/gpu": "600m"})})
    decisions = c.schedule()
    assert _bound(decisions) == {"default/a-w-0": [0], "default/b-w-0": [1]}
    refused = [e for e in of(decisions, ev.PodGroupUnschedulable) if e.podgroup == "default/c"]
    assert refused, decisions
    assert "insufficient GPU on any one device (free 0.4 + 0.4 on 2 GPUs; request 0.6 of one GPU)" in refused[0].message
    # The node total (2000m) would have taken 1800m: the per-node count alone let all three in.
    state = c.state()
    assert state.nodes["g0"].used["nvidia.com/gpu"] == 1200
    assert {p: rec[0] for p, rec in state.devices["g0"].pods.items()} == {"default/a-w-0": (0,), "default/b-w-0": (1,)}


def test_a_whole_gpu_pod_stranded_by_fragmentation_says_why():
    c = _gpu_cluster(gpus=3)
    c.job("a", {"w": (3, {"cpu": "1", "nvidia.com/gpu": "600m"})}, min_member=1)
    c.schedule()
    assert sorted(r[0] for r in c.state().devices["g0"].pods.values()) == [(0,), (1,), (2,)]
    # 1.2 GPU is free on the node (it passes the node total), no device of it whole.
    c.job("whole", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "1"})})
    decisions = c.schedule()
    assert not of(decisions, ev.PodBound)
    refused = [e for e in of(decisions, ev.PodGroupUnschedulable) if e.podgroup == "default/whole"]
    assert "Insufficient nvidia.com/gpu" not in refused[0].message
    assert "insufficient GPU on any one device (free 0.4 + 0.4 + 0.4 on 3 GPUs; request 1 whole GPU)" in refused[0].message


def test_best_fit_puts_a_share_on_the_fullest_device_that_holds_it():
    c = _gpu_cluster()
    c.job("a", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "300m"})})
    c.schedule()
    c.job("b", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "600m"})})
    c.job("c", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "300m"})})
    c.job("d", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "2"})})
    decisions = c.schedule()
    assert _bound(decisions) == {"default/b-w-0": [0], "default/c-w-0": [1]}
    assert "default/d" in {e.podgroup for e in of(decisions, ev.PodGroupUnschedulable)}


def test_a_gang_that_does_not_fit_gives_its_device_shares_back():
    c = _gpu_cluster()
    c.job("gang", {"w": (3, {"cpu": "1", "nvidia.com/gpu": "600m"})}, inqueue=True)  # one device short
    ssn = Session(c.state(), c.handler.conf, c.clock + 1)
    allocate.execute(ssn)
    assert not of(ssn.decisions, ev.PodBound)
    # Two shares were taken tentatively, then the statement was discarded: both devices whole again.
    assert ssn.devices.gpu_free[0].tolist() == [1000, 1000]
    assert ssn.devices.future[0].tolist() == [1000, 1000]
    assert all(not t.devices for t in ssn.jobs["default/gang"].tasks)


def test_preempting_a_sharing_pod_frees_its_share_of_that_one_device():
    c = _gpu_cluster(PREEMPT_CONF).priority_class("high", 1000).priority_class("low", 1)
    c.job("low0", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "600m"})}, priority_class="low")
    c.job("low1", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "600m"})}, priority_class="low")
    c.schedule()
    c.add(*(ev.PodStarted(pod=p, node="g0") for p in ("default/low0-w-0", "default/low1-w-0")))
    held = {p: r[0] for p, r in c.state().devices["g0"].pods.items()}
    assert held == {"default/low0-w-0": (0,), "default/low1-w-0": (1,)}
    # 0.8 GPU free on the node, 0.4 on each device: a 0.5 share needs one victim, and goes where it was.
    c.job("high", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "500m"})}, priority_class="high", inqueue=True)
    decisions = c.schedule()
    evicted = [e.pod for e in of(decisions, ev.PodEvictionRequested)]
    assert len(evicted) == 1, decisions
    device = held[evicted[0]][0]
    assert [(e.pod, e.devices) for e in of(decisions, ev.PodPipelined)] == [("default/high-w-0", [device])]
    state = c.state()
    assert state.devices["g0"].pods[evicted[0]][3] == "releasing"
    ssn = Session(state, c.handler.conf, c.clock + 1)
    assert ssn.devices.future[0].tolist()[device] == 1000 and ssn.devices.gpu_free[0].tolist() == [400, 400]


def test_an_old_bind_without_devices_is_given_them_by_the_fold():
    c = _gpu_cluster()
    c.job("a", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "600m"})})
    c.job("b", {"w": (1, {"cpu": "1", "nvidia.com/gpu": "600m"})})
    c.add(ev.PodBound(pod="default/a-w-0", job="default/a", node="g0"))
    c.add(ev.PodBound(pod="default/b-w-0", job="default/b", node="g0"))
    state = c.state()
    assert {p: r[0] for p, r in state.devices["g0"].pods.items()} == {"default/a-w-0": (0,), "default/b-w-0": (1,)}
    ssn = Session(state, c.handler.conf, c.clock + 1)
    assert ssn.devices.gpu_free[0].tolist() == [400, 400]


def test_volcano_vgpu_names_map_to_device_shares():
    assert gpu_request({"volcano.sh/vgpu-number": 1000, "volcano.sh/vgpu-cores": 50000}) == GpuRequest(500, 1)
    assert gpu_request({"volcano.sh/vgpu-number": 2000}) == GpuRequest(1000, 2)
    assert gpu_request({"volcano.sh/vgpu-number": 1000, "volcano.sh/vgpu-memory": 4096000}) == GpuRequest(0, 1, 4096)
    assert gpu_request({"nvidia.com/gpu": 460}) == GpuRequest(460, 1)
    assert gpu_request({"nvidia.com/gpu": 2000}) == GpuRequest(1000, 2)
    assert gpu_request({"cpu": 1000}) is None


def test_vgpu_pods_share_a_device_by_cores():
    allocatable = {"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "1", "volcano.sh/vgpu-number": "10",
                   "volcano.sh/vgpu-cores": "1000"}
    node = Node(metadata=ObjectMeta(name="g0"), spec=NodeSpec(),
                status=NodeStatus(allocatable=allocatable, capacity=allocatable))
    c = Cluster(CONF).queue("default").add(ev.NodeAdded(node="g0", manifest=node))
    for name in ("a", "b", "c"):
        c.job(name, {"w": (1, {"cpu": "1", "volcano.sh/vgpu-number": "1", "volcano.sh/vgpu-cores": "40"})})
    decisions = c.schedule()
    # 40% of the one device each: two fit (0.8), the third would need 1.2 of it.
    assert _bound(decisions) == {"default/a-w-0": [0], "default/b-w-0": [0]}
    refused = [e for e in of(decisions, ev.PodGroupUnschedulable) if e.podgroup == "default/c"]
    assert "insufficient GPU on any one device (free 0.2 on 1 GPUs; request 0.4 of one GPU)" in refused[0].message
