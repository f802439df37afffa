"""The workload-inflation experiment (``eventbatch.trace_experiment``) on small generated lists.

Where it sits: unit tests of the experiment behind ``eventbatch trace experiment``
and ``bench/fgd.py``, with the scheduler's real device model and placement
policies (``handlers.scheduler.plugins.gpu_policies``) and real CSV files.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from eventbatch import trace_experiment as te

POD_HEADER = ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos", "pod_phase",
              "creation_time", "deletion_time", "scheduled_time"]


def write_lists(folder: Path, nodes: list[tuple[int, int]], pods: list[tuple[int, int, int]]) -> tuple[Path, Path]:
    """``nodes``: (milli-CPU, GPUs); ``pods``: (milli-CPU, num_gpu, gpu_milli)."""
    node_path, pod_path = folder / "nodes.csv", folder / "pods.csv"
    with node_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sn", "cpu_milli", "memory_mib", "gpu", "model"])
        for i, (cpu, gpus) in enumerate(nodes):
            w.writerow([f"node-{i}", cpu, 262144, gpus, "T4" if gpus else ""])
    with pod_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(POD_HEADER)
        for i, (cpu, count, milli) in enumerate(pods):
            w.writerow([f"pod-{i}", cpu, 1024, count, milli, "", "LS", "Running", 0, 10, 0])
    return node_path, pod_path


# a small mixed cluster and pod list: shares, whole GPUs, several GPUs, CPU-only tasks
SMALL_NODES = [(32000, 2)] * 6 + [(32000, 4)] * 3 + [(64000, 8)] * 2 + [(32000, 0)]
SMALL_PODS = ([(2000, 1, 300)] * 6 + [(2000, 1, 700)] * 6 + [(4000, 1, 1000)] * 6 + [(4000, 2, 1000)] * 2
              + [(1000, 0, 0)] * 2 + [(8000, 1, 500)] * 3)


@pytest.fixture
def small(tmp_path: Path) -> tuple[te.Nodes, te.Tasks]:
    node_path, pod_path = write_lists(tmp_path, SMALL_NODES, SMALL_PODS)
    return te.load_nodes(node_path), te.load_tasks(pod_path)


def test_arrivals_inflate_the_list_to_the_ratio_and_keep_every_task(small: tuple[te.Nodes, te.Tasks]) -> None:
    nodes, tasks = small
    order = te.arrivals(tasks, nodes.gpu_capacity, 1.3, seed=42)
    total = int(tasks.gpu_milli[order].sum())
    assert total <= 1.3 * nodes.gpu_capacity
    assert total > 1.3 * nodes.gpu_capacity - 2000  # stops only at a draw that would pass the ratio
    # as the simulator orders them: the list itself shuffled, then the draws from it
    assert sorted(order[: len(tasks)].tolist()) == list(range(len(tasks)))
    assert order[: len(tasks)].tolist() != list(range(len(tasks)))
    assert len(order) > len(tasks)
    # a list above the ratio loses tasks at random and keeps no task twice
    assert int(tasks.gpu_milli.sum()) > 0.3 * nodes.gpu_capacity
    pruned = te.arrivals(tasks, nodes.gpu_capacity, 0.3, seed=42)
    assert int(tasks.gpu_milli[pruned].sum()) <= 0.3 * nodes.gpu_capacity
    assert len(set(pruned.tolist())) == len(pruned) < len(tasks)


def test_the_cluster_is_the_lists_gpu_nodes(tmp_path: Path) -> None:
    """As in the simulator's experiments, nodes without GPU are left out of the cluster:
    tasks without GPU then take GPU nodes' CPU. Here the GPU node has 2 cores; a 2-core task
    without GPU and a 1-core, 1-GPU task arrive. With the 64-core node without GPU in the
    cluster, FGD puts the first on it and both are placed; without it they cannot both be."""
    node_path, pod_path = write_lists(tmp_path, [(64000, 0), (2000, 1)], [(2000, 0, 0), (1000, 1, 1000)])
    nodes, tasks = te.load_nodes(node_path), te.load_tasks(pod_path)
    engine = te.scheduler_engine()
    seeds = [1, 2, 3, 4]
    every = te.experiment(nodes, tasks, engine, policies=["fgd"], seeds=seeds, ratio=1.0, step=50,
                          gpu_nodes_only=False).summary()
    gpu_only = te.experiment(nodes, tasks, engine, policies=["fgd"], seeds=seeds, ratio=1.0, step=50).summary()
    assert (every["nodes"], every["nodes_without_gpu_left_out"]) == (2, 0)
    assert (gpu_only["nodes"], gpu_only["nodes_without_gpu_left_out"]) == (1, 1)
    assert every["policies"]["fgd"]["unplaced"] == [0] * len(seeds)
    assert all(n >= 1 for n in gpu_only["policies"]["fgd"]["unplaced"])


def test_equal_scores_go_to_the_first_node_of_the_seeds_shuffle(tmp_path: Path) -> None:
    """Node 0 has one GPU and 4 cores, node 1 one GPU and 64. A 4-core task without GPU
    arrives, then two 1-GPU tasks. GPU packing scores a task without GPU 0 everywhere: the
    tie decides. On node 0 it takes all the CPU and one GPU task finds no node; on node 1
    both are placed. With ties to the list's first node it is always node 0; shuffled (the
    default), the first node of the seed's order, which is node 1 for some seeds."""
    node_path, pod_path = write_lists(tmp_path, [(4000, 1), (64000, 1)], [(4000, 0, 0), (1000, 1, 1000), (1000, 1, 1000)])
    nodes, tasks = te.load_nodes(node_path), te.load_tasks(pod_path)
    engine = te.scheduler_engine()
    workload = engine.workload(tasks)
    order = np.array([0, 1, 2])
    unplaced = {}
    for seed in range(12):
        for ties in ("lowest", "shuffled"):
            curve = te.run(nodes, tasks, order, engine.policies["gpupacking"], engine, workload,
                           ratio=1.0, step=50, seed=seed, ties=ties)
            unplaced[ties, seed] = curve.unplaced
        first = int(te.node_order(2, seed)[0])
        assert unplaced["lowest", seed] == 1
        assert unplaced["shuffled", seed] == (1 if first == 0 else 0), seed
    assert {unplaced["shuffled", seed] for seed in range(12)} == {0, 1}
    with pytest.raises(ValueError, match="ties must be one of shuffled, lowest, random"):
        te.run(nodes, tasks, order, engine.policies["fgd"], engine, workload, ratio=1.0, step=50, seed=1, ties="first")


def test_curves_are_monotone_and_end_at_the_ratio(small: tuple[te.Nodes, te.Tasks]) -> None:
    nodes, tasks = small
    engine = te.scheduler_engine()
    result = te.experiment(nodes, tasks, engine, policies=list(engine.policies), seeds=[1, 2], ratio=1.3, step=10)
    summary = result.summary()
    assert set(summary["policies"]) == {"fgd", "bestfit", "dotproduct", "gpupacking", "gpuclustering", "random"}
    for name, curves in result.curves.items():
        for seed, curve in zip(result.seeds, curves, strict=True):
            assert curve.arrival_pct == [float(10 * k) for k in range(14)]  # 0, 10, ..., 130
            # tasks never leave: free GPU only shrinks as work arrives
            assert all(a >= b for a, b in zip(curve.unallocated_pct, curve.unallocated_pct[1:], strict=False)), (name, seed)
            assert curve.unallocated_pct[0] == 100.0
            assert all(0.0 <= f <= 100.0 for f in curve.frag_rate_pct)
            assert curve.placed + curve.unplaced == result.arrivals[result.seeds.index(seed)]
            # past the capacity, something is always left unplaced
            assert curve.unplaced > 0
        at = summary["policies"][name]["at_100"]
        assert at["unallocated_pct"]["mean"] == pytest.approx(np.mean(at["unallocated_pct"]["per_seed"]), abs=1e-3)


def test_same_seed_same_result_other_seed_other_arrivals(small: tuple[te.Nodes, te.Tasks]) -> None:
    nodes, tasks = small
    engine = te.scheduler_engine()
    first = te.experiment(nodes, tasks, engine, policies=["fgd", "random"], seeds=[7], step=10).summary()
    again = te.experiment(nodes, tasks, engine, policies=["fgd", "random"], seeds=[7], step=10).summary()
    assert first == again
    assert not np.array_equal(te.arrivals(tasks, nodes.gpu_capacity, 1.3, 7), te.arrivals(tasks, nodes.gpu_capacity, 1.3, 8))


def test_fgd_leaves_room_that_best_fit_strands(tmp_path: Path) -> None:
    """One node of two GPUs; the workload is mostly 0.3 and 0.7 shares (and one whole GPU).
    Two 0.3 shares arrive, then two 0.7 shares. Best fit puts the second 0.3 on the fuller
    device ([400, 1000] free), so only one 0.7 fits after it and 700 milli-GPU stay stranded;
    FGD puts it on the other device ([700, 700]: no more fragmentation for 0.7 tasks), and both
    0.7 shares fit."""
    node_path, pod_path = write_lists(
        tmp_path, [(64000, 2)], [(1000, 1, 300)] * 4 + [(1000, 1, 700)] * 4 + [(1000, 1, 1000)],
    )
    nodes, tasks = te.load_nodes(node_path), te.load_tasks(pod_path)
    engine = te.scheduler_engine()
    workload = engine.workload(tasks)
    order = np.array([0, 1, 4, 5])  # 0.3, 0.3, 0.7, 0.7: exactly the capacity
    at_end = {}
    for name in ("fgd", "bestfit"):
        curve = te.run(nodes, tasks, order, engine.policies[name], engine, workload, ratio=1.0, step=50, seed=1)
        assert curve.arrival_pct == [0.0, 50.0, 100.0]
        at_end[name] = (curve.unallocated_pct[-1], curve.unplaced)
    assert at_end["fgd"] == (0.0, 0)
    assert at_end["bestfit"] == (35.0, 1)


def test_row_cache_decides_as_the_policy_itself(small: tuple[te.Nodes, te.Tasks]) -> None:
    """The run keeps each kind of task's costs and recomputes only rows placed on since:
    the same placements as asking the policy about the whole cluster every time."""
    nodes, tasks = small
    engine = te.scheduler_engine()
    for name in ("fgd", "bestfit", "gpuclustering"):
        plain = dataclasses.replace(engine, policies={name: dataclasses.replace(engine.policies[name], scores=None)})
        cached = te.experiment(nodes, tasks, engine, policies=[name], seeds=[3, 4], step=5).summary()
        whole = te.experiment(nodes, tasks, plain, policies=[name], seeds=[3, 4], step=5).summary()
        assert cached == whole, name


def test_gpu_model_and_memory_limit_where_a_task_goes(tmp_path: Path) -> None:
    node_path = tmp_path / "nodes.csv"
    node_path.write_text("sn,cpu_milli,memory_mib,gpu,model\na,32000,1024,1,T4\nb,32000,65536,1,V100\nc,32000,65536,1,T4\n")
    pod_path = tmp_path / "pods.csv"
    pod_path.write_text(",".join(POD_HEADER) + "\n" + "p0,1000,2048,1,1000,T4,LS,Running,0,1,0\n")
    nodes, tasks = te.load_nodes(node_path), te.load_tasks(pod_path)
    engine = te.scheduler_engine()
    for name in ("fgd", "bestfit", "random"):
        for order in ([0, 0], [0, 0, 0]):  # a T4 task needing 2 GiB: only node c can hold it, once
            curve = te.run(nodes, tasks, np.array(order), engine.policies[name], engine, engine.workload(tasks),
                           ratio=1.0, step=50, seed=0)
            assert (curve.placed, curve.unplaced) == (1, len(order) - 1), name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sn,cpu_milli,memory_mib,gpu\nn,1,1,1\n", "no column model"),
        ("sn,cpu_milli,memory_mib,gpu,model\nn,-4,1,1,T4\n", "cpu_milli -4 is negative"),
        ("sn,cpu_milli,memory_mib,gpu,model\nn,x,1,1,T4\n", "cpu_milli 'x' is not an integer"),
        ("sn,cpu_milli,memory_mib,gpu,model\nn,1,1,0,\n", "no GPUs in the node list"),
        ("sn,cpu_milli,memory_mib,gpu,model\n", "no nodes"),
    ],
)
def test_bad_node_lists_are_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "nodes.csv"
    path.write_text(text)
    with pytest.raises(te.TraceError, match=message) as caught:
        te.load_nodes(path)
    assert "\n" not in str(caught.value)


def test_bad_pod_lists_are_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "pods.csv"
    path.write_text(",".join(POD_HEADER) + "\np0,1000,1024,1,1500,,LS,Running,0,1,0\n")
    with pytest.raises(te.TraceError, match="gpu_milli 1500 is more than one GPU"):
        te.load_tasks(path)
    path.write_text(",".join(POD_HEADER) + "\np0,1000,1024,0,0,,LS,Running,0,1,0\n")
    with pytest.raises(te.TraceError, match="no pod asks for a GPU"):
        te.load_tasks(path)


def test_a_pod_list_without_gpu_spec_is_read(tmp_path: Path) -> None:
    """The multigpu50 list has only name, cpu_milli, memory_mib, num_gpu, gpu_milli."""
    path = tmp_path / "pods.csv"
    path.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,1024,4,1000\np1,1000,1024,1,250\np2,500,64,0,0\n")
    tasks = te.load_tasks(path)
    assert tasks.gpu_milli.tolist() == [4000, 250, 0] and tasks.spec == ["", "", ""]
