"""``eventbatch trace experiment`` as a process: a small generated trace, JSON, SVG, bad input.

Where it sits: the end-to-end test of the experiment's command line
(``eventbatch.cli.trace``). Each case runs ``python -m eventbatch`` as a
subprocess with a timeout, in a fresh folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.unit.test_trace_experiment import SMALL_NODES, SMALL_PODS, write_lists

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "trace", "experiment", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
    )


def test_json_and_plot_one_curve_per_policy_and_the_same_output_twice(tmp_path: Path) -> None:
    write_lists(tmp_path, SMALL_NODES, SMALL_PODS)
    args = [str(tmp_path), "--nodes", "nodes.csv", "--pods", "pods.csv", "--seeds", "2", "--step", "10", "--json"]
    with ThreadPoolExecutor(2) as pool:
        first, again = pool.map(lambda a: run(a, tmp_path), [[*args, "--plot", "fig.svg"], args])
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout  # the same seeds: the same figures
    result = json.loads(first.stdout)
    assert result["gpus"] == 6 * 2 + 3 * 4 + 2 * 8 and result["seeds"] == [42, 43]
    policies = result["policies"]
    assert list(policies) == ["fgd", "bestfit", "dotproduct", "gpupacking", "gpuclustering", "random"]
    for data in policies.values():
        assert data["arrival_pct"][0] == 0 and data["arrival_pct"][-1] == 130
        assert data["at_100"]["unallocated_pct"]["mean"] > 0
    svg = (tmp_path / "fig.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 2 * len(policies)
    for name in policies:
        assert f">{name}</text>" in svg

    table = run([str(tmp_path), "--nodes", "nodes.csv", "--pods", "pods.csv", "--seeds", "1", "--policies", "fgd,bestfit"], tmp_path)
    assert table.returncode == 0, table.stderr
    assert "== at 100 % arrival ==" in table.stdout and "fgd" in table.stdout and "random" not in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pods", "missing.csv"], "missing.csv: not found"),
        (["--pods", "nodes.csv"], "not an openb pod list (no column num_gpu"),
        (["--policies", "fgd,tetris"], "unknown policy tetris"),
        (["--plot", "fig.png"], "the plot is written as SVG"),
        (["--plot", "no/such/dir/fig.svg"], "no such directory"),
        (["--ratio", "0"], "out of range"),
        (["--seeds", "0"], "out of range"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_created(tmp_path: Path, args: list[str], message: str) -> None:
    write_lists(tmp_path, SMALL_NODES, SMALL_PODS)
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run([str(tmp_path), "--nodes", "nodes.csv", "--pods", "pods.csv", *args], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eventbatch: error:") and message in lines[0], done.stderr
    assert done.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before
