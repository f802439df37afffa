"""The GPU placement policies (``plugins.gpu_policies``) against hand-computed cases from the
paper's definitions, and FGD against a plain-Python reading of those definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from handlers.scheduler.devices import GpuRequest
from handlers.scheduler.plugins import gpu_policies as gp

ALL = np.ones(2, dtype=bool)


def test_fragmentation_counts_the_free_gpu_a_task_type_cannot_use() -> None:
    # Types: half ask 0.6 of a GPU, half ask one whole GPU.
    workload = gp.TaskTypes.of([(1000, GpuRequest(600, 1), 1.0), (1000, GpuRequest(1000, 1), 1.0)])
    cpu = np.array([8000, 8000, 500])
    free = np.array([[1000, 500], [400, 400], [1000, 1000]], dtype=np.int32)
    # node 0: 0.6 fits device 0, device 1 (0.5) is stranded for it -> 500; whole: the same 500.
    # node 1: 0.4 + 0.4 fits neither type: all 800 is fragment for both.
    # node 2: CPU below every type's 1000m: all 2000 is fragment.
    assert gp.fragmentation(cpu, free, workload).tolist() == [500.0, 800.0, 2000.0]


def test_a_type_without_gpu_sees_all_free_gpu_as_fragment() -> None:
    workload = gp.TaskTypes.of([(1000, None, 3.0), (1000, GpuRequest(500, 1), 1.0)])
    frag = gp.fragmentation(np.array([4000]), np.array([[1000, 1000]], dtype=np.int32), workload)
    assert frag.tolist() == [0.75 * 2000]


def test_fgd_and_bestfit_choose_differently() -> None:
    """Every task of the workload asks 0.6 of a GPU. A 0.3 task arrives; node 0 has one idle
    GPU, node 1 one GPU with 0.7 free. Best fit (and the packing baselines) fill node 1,
    leaving 0.4 there that no 0.6 task can use; FGD puts it on node 0, whose 0.7 left still
    holds a 0.6 task, and node 1's 0.7 stays usable: fragmentation does not grow."""
    workload = gp.TaskTypes.of([(0, GpuRequest(600, 1), 1.0)])
    cpu = np.array([64000, 64000])
    free = np.array([[1000], [700]], dtype=np.int32)
    task = GpuRequest(300, 1)
    assert gp.choose("fgd", cpu, free, ALL, task, 1000, workload) == (0, (0,))
    cost, _ = gp.scores("fgd", cpu, free, ALL, task, 1000, workload, exact=True)
    assert cost.tolist() == [0.0, 400.0]  # the increase of expected fragmentation, milli-GPU
    cost, _ = gp.scores("fgd", cpu, free, ALL, task, 1000, workload)
    assert (-cost).tolist() == [50.0, 40.0]  # the simulator's int(100 sigmoid(-increase / 1000))
    for policy in ("bestfit", "gpupacking", "gpuclustering"):
        assert gp.choose(policy, cpu, free, ALL, task, 1000, workload) == (1, (0,)), policy
    # dot-product prefers node 1 too, by 0.0007 of its score: both round to the simulator's 99
    # and the tie goes to the lowest node
    assert gp.choose("dotproduct", cpu, free, ALL, task, 1000, workload, exact=True) == (1, (0,))
    assert (-gp.scores("dotproduct", cpu, free, ALL, task, 1000, workload)[0]).tolist() == [99.0, 99.0]


def test_fgd_picks_the_device_that_strands_least() -> None:
    # One node, devices with 0.7 and 0.5 free; the workload asks 0.5 shares. A 0.2 task on
    # the 0.7 device leaves 0.5 + 0.5 (both usable); on the 0.5 device it strands 0.3.
    # Best fit takes the fuller device (0.5).
    workload = gp.TaskTypes.of([(0, GpuRequest(500, 1), 1.0)])
    cpu = np.array([8000])
    free = np.array([[700, 500]], dtype=np.int32)
    one = np.ones(1, dtype=bool)
    assert gp.choose("fgd", cpu, free, one, GpuRequest(200, 1), 0, workload) == (0, (0,))
    assert gp.choose("bestfit", cpu, free, one, GpuRequest(200, 1), 0, workload) == (0, (1,))


def test_fgd_rounds_as_the_simulator_and_takes_the_first_device_of_the_best_score() -> None:
    # Shares of 0.5 (19 in 20) and 0.2. A 0.1 task on the 0.25 device strands 0.15 for the
    # 0.2 type (increase -95 + 7.5 = -87.5 milli-GPU); on the 0.3 device, -95. Exactly, the
    # 0.3 device is better; both score int(100 sigmoid(0.0875 or 0.095)) = 52 in the
    # simulator, whose loop keeps the first device of the best score.
    workload = gp.TaskTypes.of([(1000, GpuRequest(500, 1), 19), (1000, GpuRequest(200, 1), 1)])
    cpu = np.array([16000])
    free = np.array([[250, 300, 1000]], dtype=np.int32)
    one = np.ones(1, dtype=bool)
    cost, device = gp.scores("fgd", cpu, free, one, GpuRequest(100, 1), 2000, workload, exact=True)
    assert (cost.tolist(), device.tolist()) == ([-95.0], [1])
    cost, device = gp.scores("fgd", cpu, free, one, GpuRequest(100, 1), 2000, workload)
    assert (cost.tolist(), device.tolist()) == ([-52.0], [0])
    # many nodes at once (numpy) and one node (plain Python) agree
    many = np.repeat(free, 80, axis=0)
    cost, device = gp.scores("fgd", np.full(80, 16000), many, None, GpuRequest(100, 1), 2000, workload)
    assert set(cost.tolist()) == {-52.0} and set(device.tolist()) == {0}


def test_whole_devices_take_the_lowest_free_ones_and_never_a_partly_used_device() -> None:
    workload = gp.TaskTypes.of([(0, GpuRequest(1000, 1), 1.0)])
    cpu = np.array([8000, 8000])
    free = np.array([[300, 1000, 1000, 1000], [1000, 1000, -1, -1]], dtype=np.int32)
    for policy in gp.POLICIES:
        node, devices = gp.choose(policy, cpu, free, ALL, GpuRequest(1000, 2), 0, workload, rng_key=3)
        assert devices == ((1, 2) if node == 0 else (0, 1)), policy
    # three whole devices fit node 0 only
    assert gp.choose("fgd", cpu, free, ALL, GpuRequest(1000, 3), 0, workload) == (0, (1, 2, 3))
    assert gp.choose("fgd", cpu, free, ALL, GpuRequest(1000, 4), 0, workload) == (-1, ())


def test_no_policy_places_where_it_does_not_fit_or_is_not_feasible() -> None:
    workload = gp.TaskTypes.of([(0, GpuRequest(500, 1), 1.0)])
    cpu = np.array([8000, 8000])
    free = np.array([[400, 400], [1000, 1000]], dtype=np.int32)  # 0.4 + 0.4 does not hold 0.6
    for policy in gp.POLICIES:
        assert gp.choose(policy, cpu, free, ALL, GpuRequest(600, 1), 0, workload)[0] == 1, policy
        assert gp.choose(policy, cpu, free, np.array([True, False]), GpuRequest(600, 1), 0, workload) == (-1, ())
        assert gp.choose(policy, np.array([8000, 100]), free, ALL, GpuRequest(600, 1), 200, workload) == (-1, ())


def test_ties_go_to_the_lowest_node_and_random_is_seeded() -> None:
    workload = gp.TaskTypes.of([(0, GpuRequest(500, 1), 1.0)])
    n = 50
    cpu = np.full(n, 8000)
    free = np.full((n, 2), 1000, dtype=np.int32)
    feasible = np.ones(n, dtype=bool)
    for policy in ("fgd", "bestfit", "dotproduct", "gpupacking", "gpuclustering"):
        assert gp.choose(policy, cpu, free, feasible, GpuRequest(250, 1), 0, workload) == (0, (0,))
    draws = [gp.choose("random", cpu, free, feasible, GpuRequest(250, 1), 0, workload, rng_key=k) for k in range(20)]
    again = [gp.choose("random", cpu, free, feasible, GpuRequest(250, 1), 0, workload, rng_key=k) for k in range(20)]
    assert draws == again
    assert len({node for node, _ in draws}) > 5  # spread, not the first node every time


def test_packing_and_clustering_scores_as_the_simulator_gives_them() -> None:
    workload = gp.TaskTypes.of([(0, GpuRequest(500, 1), 1.0)])
    cpu = np.full(3, 8000)
    free = np.array([[1000, 1000], [300, 1000], [1000, 0]], dtype=np.int32)
    feasible = np.ones(3, dtype=bool)
    cost, _ = gp.scores("gpupacking", cpu, free, feasible, GpuRequest(200, 1), 0, workload)
    # idle node: 100/3 - 2 = 31; a share on the 0.3 device: 100 - 30/10 = 97;
    # a used node whose only fitting device is wholly free: 50 - 1 = 49.
    assert (-cost).tolist() == [31.0, 97.0, 49.0]
    kinds = np.array([0, gp.kind_bit(GpuRequest(300, 1)), gp.kind_bit(GpuRequest(1000, 1))])
    cost, _ = gp.scores("gpuclustering", cpu, free, feasible, GpuRequest(200, 1), 0, workload, kinds=kinds)
    # a class's base plus the node's fill, 25 * (8000 - its free milli-GPU) // 8000:
    # idle: 25 + 18; only shares: 75 + 20; other kinds only: 0 + 21
    assert (-cost).tolist() == [43.0, 95.0, 21.0]


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown GPU placement policy 'tetris'"):
        gp.choose("tetris", np.zeros(1), np.zeros((1, 1), dtype=np.int32), np.ones(1, bool), None, 0, gp.EMPTY_WORKLOAD)


def test_learnt_workload_keeps_the_most_popular_types_up_to_95_percent() -> None:
    tasks = [(1000, GpuRequest(500, 1))] * 60 + [(2000, GpuRequest(1000, 1))] * 36 + [(4000, None)] * 3
    tasks += [(8000, GpuRequest(1000, 8))]
    workload = gp.TaskTypes.learn(tasks)
    # 60 + 36 = 96 of 100 cover 95%: the two rarer types are left out, the rest renormalised
    assert workload.milli.tolist() == [500, 1000]
    assert workload.count.tolist() == [1, 1]
    assert workload.cpu.tolist() == [1000, 2000]
    assert workload.weight.tolist() == pytest.approx([60 / 96, 36 / 96])
    assert len(gp.TaskTypes.learn([])) == 0


def _frag_by_definition(cpu: int, free: list[int], types: list[tuple[int, int, int, float]]) -> float:
    """The paper's expected fragmentation of one node, in plain Python."""
    have = [f for f in free if f >= 0]
    total = sum(have)
    out = 0.0
    for t_cpu, milli, count, weight in types:
        if count == 0:
            out += weight * total
            continue
        if cpu >= t_cpu and sum(1 for f in have if f >= milli) >= count:
            out += weight * sum(f for f in have if f < milli)
        else:
            out += weight * total
    return out


def test_fgd_matches_the_definition_on_random_clusters() -> None:
    rng = np.random.default_rng(11)
    for trial in range(30):
        n, g = 12, 4
        counts = rng.integers(0, g + 1, size=n)
        free = np.where(
            np.arange(g)[None, :] < counts[:, None], rng.choice([0, 100, 250, 500, 700, 1000], size=(n, g)), -1
        )
        free = free.astype(np.int32)
        cpu = rng.integers(0, 16, size=n) * 1000
        raw = [
            (int(rng.integers(0, 8)) * 1000, int(m), int(c))
            for m, c in [(250, 1), (500, 1), (1000, 1), (1000, 2), (0, 0)]
        ]
        pops = rng.random(len(raw)) + 0.1
        workload = gp.TaskTypes.of(
            [(c, GpuRequest(m, k) if k else None, float(p)) for (c, m, k), p in zip(raw, pops, strict=True)]
        )
        types = [
            (int(a), int(b), int(c), float(d))
            for a, b, c, d in zip(workload.cpu, workload.milli, workload.count, workload.weight, strict=True)
        ]
        frag = gp.fragmentation(cpu, free, workload)
        assert frag.tolist() == pytest.approx(
            [_frag_by_definition(int(cpu[i]), free[i].tolist(), types) for i in range(n)]
        )
        task_cpu = int(rng.integers(0, 4)) * 1000
        for task in (GpuRequest(300, 1), GpuRequest(500, 1), GpuRequest(1000, 1), GpuRequest(1000, 2), None):
            best: tuple[float, int, tuple[int, ...]] | None = None  # least increase, exactly
            top: tuple[int, int, tuple[int, ...]] | None = None  # best integer score, as the simulator
            for i in range(n):  # every placement, by definition
                row = free[i].tolist()
                if cpu[i] < task_cpu:
                    continue
                options: list[tuple[int, ...]] = []
                if task is None:
                    options = [()]
                elif task.shared:
                    options = [(d,) for d in range(g) if row[d] >= task.milli]
                else:
                    whole = [d for d in range(g) if row[d] >= 1000]
                    options = [tuple(whole[: task.count])] if len(whole) >= task.count else []
                for devs in options:
                    after = list(row)
                    for d in devs:
                        after[d] -= task.milli
                    delta = _frag_by_definition(int(cpu[i]) - task_cpu, after, types) - frag[i]
                    if best is None or delta < best[0] - 1e-9:
                        best = (delta, i, devs)
                    # the simulator's score: int64(sigmoid((before - after) / 1000) * 100), the first best
                    score = int(1.0 / (1.0 + math.exp(delta / 1000.0)) * 100.0)
                    if top is None or score > top[0]:
                        top = (score, i, devs)
            got = gp.choose("fgd", cpu, free, np.ones(n, bool), task, task_cpu, workload, exact=True)
            if best is None or top is None:
                assert got == (-1, ()), (trial, task)
                assert gp.choose("fgd", cpu, free, np.ones(n, bool), task, task_cpu, workload) == (-1, ())
            else:
                cost, _ = gp.scores("fgd", cpu, free, np.ones(n, bool), task, task_cpu, workload, exact=True)
                assert cost[got[0]] == pytest.approx(best[0]), (trial, task)
                assert got == (best[1], best[2]), (trial, task)
                assert gp.choose("fgd", cpu, free, np.ones(n, bool), task, task_cpu, workload) == (top[1], top[2])
                cost, _ = gp.scores("fgd", cpu, free, np.ones(n, bool), task, task_cpu, workload)
                assert -cost[top[1]] == top[0], (trial, task)


@pytest.mark.parametrize("policy", gp.POLICIES)
def test_placer_decides_as_choose_on_the_current_arrays(policy: str) -> None:
    """The incremental placer (kept scores, changed rows scored again) places a stream of
    tasks exactly where ``choose`` on the current arrays would, until the cluster is full."""
    rng = np.random.default_rng(5)
    n, g = 40, 8
    counts = rng.choice([0, 1, 2, 4, 8], size=n)
    free = np.where(np.arange(g)[None, :] < counts[:, None], 1000, -1).astype(np.int32)
    cpu = rng.choice([32000, 64000, 96000], size=n).astype(np.int64)
    shapes = [
        (4000, GpuRequest(500, 1)),
        (8000, GpuRequest(250, 1)),
        (12000, GpuRequest(1000, 1)),
        (16000, GpuRequest(1000, 2)),
        (2000, None),
        (6000, GpuRequest(700, 1)),
    ]
    workload = gp.TaskTypes.learn([shapes[int(i)] for i in rng.integers(0, len(shapes), size=200)])
    placer = gp.Placer(policy, cpu, free, workload)
    kinds = gp.inferred_kinds(free)
    feasible = rng.random(n) > 0.1
    placed = 0
    for step in range(400):
        task_cpu, request = shapes[int(rng.integers(0, len(shapes)))]
        want = gp.choose(policy, cpu, free, feasible, request, task_cpu, workload, rng_key=step, kinds=kinds)
        got = placer.choose(request, task_cpu, feasible, rng_key=step)
        assert got == want, step
        node, devices = got
        if node < 0:
            continue
        placed += 1
        placer.place(node, devices, request, task_cpu)
        cpu[node] -= task_cpu
        for d in devices:
            free[node, d] -= request.milli if request else 0
        kinds[node] |= gp.kind_bit(request)
        assert (placer.gpu_free == free).all() and (placer.cpu_free == cpu).all()
    assert (free >= -1).all() and (cpu >= 0).all()
    assert placed > 100


def test_a_node_scores_the_same_alone_or_among_many_alike() -> None:
    """Scoring many nodes at once scores each distinct node state once; every node's cost
    and device are still those it gets scored alone."""
    rng = np.random.default_rng(3)
    n = 300
    free = np.full((n, 4), 1000, dtype=np.int32)
    free[::7, 0] = 400  # a few states, each shared by many nodes
    free[::11, 2] = 700
    free[::13, 3] = -1
    cpu = np.where(np.arange(n) % 5 == 0, 8000, 32000)
    workload = gp.TaskTypes.of(
        [(4000, GpuRequest(500, 1), 5), (1000, GpuRequest(300, 1), 3), (8000, GpuRequest(1000, 2), 2)]
    )
    feasible = rng.random(n) > 0.2
    for task in (GpuRequest(300, 1), GpuRequest(700, 1), GpuRequest(1000, 2), None):
        cost, device = gp.scores("fgd", cpu, free, feasible, task, 2000, workload)
        for i in range(n):
            c, d = gp.scores("fgd", cpu[i : i + 1], free[i : i + 1], feasible[i : i + 1], task, 2000, workload)
            assert (cost[i], device[i]) == (c[0], d[0]), (task, i)


def test_a_node_state_scored_alone_in_plain_python_scores_as_among_many() -> None:
    """The session scores the few node states new to a kind of task one at a time in plain
    Python (``PlainState``, kept across kinds of task, and ``fgd_state``): every node gets
    the cost and device it gets when many nodes are scored at once with numpy."""
    rng = np.random.default_rng(17)
    requests: list[GpuRequest | None] = [GpuRequest(m, 1) for m in (100, 250, 300, 500, 600, 700, 1000)]
    requests += [GpuRequest(1000, 2), GpuRequest(1000, 4), None]
    for trial in range(12):
        n, g = 60, int(rng.choice([2, 4, 8]))
        counts = rng.integers(0, g + 1, size=n)
        free = np.where(
            np.arange(g)[None, :] < counts[:, None], rng.choice(np.arange(0, 1001, 50), size=(n, g)), -1
        ).astype(np.int32)
        cpu = rng.choice(np.arange(0, 64001, 2000), size=n).astype(np.int64)
        workload = gp.TaskTypes.learn(
            [(int(rng.choice([1000, 4000, 8000, 16000])), requests[int(i)]) for i in rng.integers(0, 10, size=300)]
        )
        states = [gp.PlainState(int(cpu[i]), free[i].tolist(), workload) for i in range(n)]
        for request in requests:
            for task_cpu in (0, 2000, 8000):
                cost, device = gp.scores("fgd", cpu, free, None, request, task_cpu, workload, distinct=True)
                alone = [gp.fgd_state(state, request, task_cpu, workload) for state in states]
                assert [c for c, _ in alone] == cost.tolist(), (trial, request, task_cpu)
                assert [d for _, d in alone] == device.tolist(), (trial, request, task_cpu)


def test_one_score_in_plain_python_is_numpys_exactly() -> None:
    """FGD's integer score of one increase, from ``math.exp`` (numpy only near an integer),
    equals numpy's over increases from -9 to +9 GPUs, for several popularity sums."""
    for scale in (1.0, 7.0, 300.0, float(1 << 20)):
        deltas = np.unique(np.concatenate([np.arange(-9000, 9001, 7) * int(scale), np.arange(-50, 51)]))
        want = gp._fgd_score(deltas, scale).tolist()
        assert [gp._fgd_score_one(d, scale) for d in deltas.tolist()] == want
        assert gp._fgd_score_one(0, scale) == 50.0
