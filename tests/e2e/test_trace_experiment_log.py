"""``eventbatch trace experiment --log URL``: one run recorded through the real pipeline.

Where it sits: the end-to-end test of the experiment's ``--log`` (``eventbatch.cli.trace``
``record_experiment``, ``eventbatch.trace_experiment.recorded_run``). A small openb node and
pod list in a temporary folder; ``python -m eventbatch`` as a subprocess onto a real SQLite
log, read back with the project's fold; ``replay --verify`` on it as a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eventbatch.follow import read_to_tail
from eventbatch.log.factory import open_log
from schemas.envelope import Envelope
from schemas.events import NodeAdded, PodBound
from tests.unit.test_trace_experiment import SMALL_NODES, SMALL_PODS, write_lists

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "eventbatch", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)


def events_of(url: str) -> list[Envelope]:
    async def read() -> list[Envelope]:
        out: list[Envelope] = []
        async with open_log(url) as log:
            await read_to_tail(log, 0, out.append)
        return out
    return asyncio.run(read())


LISTS = ["--nodes", "nodes.csv", "--pods", "pods.csv"]


def test_one_run_recorded_nodes_binds_with_devices_figures_and_a_clean_verify(tmp_path: Path) -> None:
    write_lists(tmp_path, SMALL_NODES, SMALL_PODS)
    url = f"sqlite:///{tmp_path}/run.db"
    done = cli(["trace", "experiment", str(tmp_path), *LISTS, "--policies", "fgd", "--seeds", "1", "--log", url], tmp_path)
    assert done.returncode == 0, done.stderr
    figures = re.search(r"at 100 % arrival\s+([\d.]+)\s+([\d.]+)", done.stdout)
    assert figures is not None, done.stdout
    in_memory, from_log = float(figures[1]), float(figures[2])
    assert 0 < in_memory < 100 and 0 < from_log < 100
    assert abs(in_memory - from_log) <= 5  # the same arrivals, the same policy: close, if not always equal
    assert "may differ a little" in done.stdout

    events = events_of(url)
    nodes = {e.payload.node: e.payload.manifest for e in events if isinstance(e.payload, NodeAdded)}
    assert len(nodes) == sum(1 for _, gpus in SMALL_NODES if gpus)  # the experiment's GPU nodes only
    assert sorted(int(m.status.allocatable["nvidia.com/gpu"]) for m in nodes.values()) == sorted(g for _, g in SMALL_NODES if g)
    binds = [e.payload for e in events if isinstance(e.payload, PodBound)]
    gpu_binds = [b for b in binds if b.devices]
    assert len(gpu_binds) >= 30 and all(b.node in nodes for b in binds)
    for bind in gpu_binds:  # the devices exist on the node they are bound to
        assert max(bind.devices) < int(nodes[bind.node].status.allocatable["nvidia.com/gpu"])
    assert f"{len(gpu_binds)} pods holding GPU devices" in done.stdout

    conf = tmp_path / "run.db.scheduler.yaml"
    assert "fgd.policy: fgd" in conf.read_text()
    verify = cli(["--log", url, "replay", "--verify", "--scheduler-conf", str(conf)], tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "not reproduced" not in verify.stdout

    again = cli(["--log", f"sqlite:///{tmp_path}/again.db", "trace", "experiment", str(tmp_path), *LISTS,
                 "--policies", "fgd", "--seeds", "1"], tmp_path)  # the global --log as well; the same run
    assert again.returncode == 0, again.stderr
    assert again.stdout.replace("again.db", "run.db") == done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policies", "fgd,bestfit", "--seeds", "1"], "give one policy and one seed"),
        (["--policies", "fgd"], "give one policy and one seed"),  # --seeds defaults to 5
        (["--policies", "fgd", "--seeds", "1", "--json"], "leave out --plot and --json"),
    ],
)
def test_more_than_one_run_refused_one_line_nothing_created(tmp_path: Path, args: list[str], message: str) -> None:
    write_lists(tmp_path, SMALL_NODES, SMALL_PODS)
    before = sorted(p.name for p in tmp_path.iterdir())
    done = cli(["trace", "experiment", str(tmp_path), *LISTS, *args, "--log", f"sqlite:///{tmp_path}/run.db"], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert done.stdout == "" and sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_log_that_holds_events_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    write_lists(tmp_path, SMALL_NODES, SMALL_PODS)
    url = f"sqlite:///{tmp_path}/used.db"
    first = cli(["trace", "experiment", str(tmp_path), *LISTS, "--policies", "bestfit", "--seeds", "1", "--log", url], tmp_path)
    assert first.returncode == 0, first.stderr
    held = len(events_of(url))
    (tmp_path / "used.db.scheduler.yaml").unlink()
    before = sorted(p.name for p in tmp_path.iterdir())
    done = cli(["trace", "experiment", str(tmp_path), *LISTS, "--policies", "fgd", "--seeds", "1", "--log", url], tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "used.db" in lines[0] and f"already holds {held:,} event(s)" in lines[0], done.stderr
    assert len(events_of(url)) == held and sorted(p.name for p in tmp_path.iterdir()) == before
