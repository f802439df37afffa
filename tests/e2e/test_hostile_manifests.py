"""Hostile manifests and arguments on the command line: each is refused in one line, quickly, and appends nothing.

Where it sits: the end-to-end test of the edge's limits (``schemas.limits``,
``docs/limits.md``) through ``python -m eventbatch`` as a subprocess. A log is
first created with the demo queues; then each hostile input (YAML alias bombs
of 760 and 809 bytes, ``replicas: 1000000000``, a queue ``weight: 2147483648``,
a 10 MB string, a ``target`` whose name is not a Kubernetes name or
that names a namespace, out-of-range integer flags) must exit 2 with exactly one
line on stderr naming the limit, within a deadline and under a memory cap
(the bombs used to take gigabytes), and leave the number of records on the
log unchanged.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ROOT / "examples" / "demo" / "queues.yaml"
DEADLINE_S = 20
MEMORY_CAP = 1024 * 1024 * 1024  # address space of each case's process

JOB_HEAD = """\
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: hostile}
spec:
  tasks:
  - name: main
    replicas: REPLICAS
    template:
      spec:
        containers:
        - name: c
          image: busybox
"""


def alias_bomb(levels: int) -> str:
    """A Job whose container carries a 'billion laughs': each level lists the previous one 9 times."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    body = "\n".join("            " + line for line in lines)
    return JOB_HEAD.replace("REPLICAS", "1") + "          bomb:\n" + body + "\n"


def job(replicas: str = "1", extra: str = "") -> str:
    return JOB_HEAD.replace("REPLICAS", replicas) + extra


QUEUE_WEIGHT = """\
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: heavy}
spec: {weight: 2147483648}
"""

BAD_TARGET = """\
apiVersion: bus.volcano.sh/v1alpha1
kind: Command
metadata: {name: hostile-command}
action: AbortJob
target: {apiVersion: batch.volcano.sh/v1alpha1, kind: Job, name: "../../Bad_NS!/Not A Valid/Name!"}
"""

BAD_TARGET_NAMESPACE = """\
apiVersion: bus.volcano.sh/v1alpha1
kind: Command
metadata: {name: hostile-command}
action: AbortJob
target: {apiVersion: batch.volcano.sh/v1alpha1, kind: Job, name: ok, namespace: "../../Bad_NS!"}
"""


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # FILE is the case's manifest
    text: str | None  # the manifest's text, if any
    says: tuple[str, ...]  # what the one line must contain


CASES: dict[str, Case] = {
    # 847 bytes, 9^10 strings once expanded (the reported 809-byte bomb's kind): apply used to segfault.
    "bomb-10-levels": Case(("apply", "-f", "FILE"), alias_bomb(10), ("alias", "10000")),
    # 781 bytes, 9^9 strings (the reported 760-byte bomb's kind): used to append a record of hundreds of MB.
    "bomb-9-levels": Case(("apply", "-f", "FILE"), alias_bomb(9), ("alias", "10000")),
    "replicas-1e9": Case(("job", "submit", "-f", "FILE"), job("1000000000"), ("spec.tasks[0].replicas", "10000")),
    "replicas-1e40": Case(("apply", "-f", "FILE"), job("1" + "0" * 40), ("spec.tasks[0].replicas", "int32")),
    "replicas-5000-digits": Case(("apply", "-f", "FILE"), job("9" * 5000), ("spec.tasks[0].replicas", "digits")),
    "weight-2^31": Case(("queue", "create", "-f", "FILE"), QUEUE_WEIGHT, ("spec.weight", "int32", "2147483647")),
    "string-10MB": Case(
        ("apply", "-f", "FILE"), job(extra="          workingDir: " + "x" * 10_000_000 + "\n"), ("3145728", "bytes")
    ),
    "string-300KiB": Case(
        ("apply", "-f", "FILE"),
        job(extra="          workingDir: " + "x" * 300_000 + "\n"),
        ("workingDir", "300000", "262144"),
    ),
    "target-name": Case(("apply", "-f", "FILE"), BAD_TARGET, ("target.name", "RFC 1123")),
    "target-namespace": Case(("apply", "-f", "FILE"), BAD_TARGET_NAMESPACE, ("target.namespace", "unknown field")),
    "deep-json": Case(("apply", "-f", "FILE"), "[" * 5000 + "]" * 5000, ("nest", "64")),
    "job-path-arg": Case(("job", "suspend", "--force", "../../Bad_NS!/Not A Valid/Name!"), None, ("not a job name",)),
    "job-namespace-arg": Case(("job", "suspend", "--force", "Bad_NS!/lm-mpi"), None, ("namespace", "RFC 1123")),
    "job-name-arg": Case(("job", "delete", "--force", "Not A Valid Name!"), None, ("job name", "RFC 1123")),
    "queue-name-arg": Case(("queue", "operate", "--force", "Not A Queue", "-a", "close"), None, ("RFC 1123",)),
    "node-name-arg": Case(("node", "cordon", "--force", "../etc", "--cluster", "sim"), None, ("RFC 1123",)),
    "node-pods-flag": Case(("node", "add", "--name", "n1", "--pods", "9" * 5000), None, ("pods", "characters")),
    "events-from": Case(("events", "tail", "--from", "1" + "0" * 40), None, ("--from", "9223372036854775807")),
}


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "EVENTBATCH_LOG": "sqlite://events.db"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "eventbatch", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=DEADLINE_S + 10, preexec_fn=_cap_memory,
    )
    return done, time.monotonic() - started


def records(log: Path) -> int:
    with sqlite3.connect(log) as db:
        return db.execute("SELECT count(*) FROM events").fetchone()[0]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, float, int, int]]:
    folder = tmp_path_factory.mktemp("hostile")
    created, _ = run(["apply", "-f", str(QUEUES)], folder)
    assert created.returncode == 0, created.stderr
    before = records(folder / "events.db")

    def one(name: str):
        case = CASES[name]
        args = list(case.args)
        if case.text is not None:
            path = folder / f"{name}.yaml"
            path.write_text(case.text)
            args = [str(path) if a == "FILE" else a for a in args]
        done, took = run(args, folder)
        return name, (done, took, before, records(folder / "events.db"))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, CASES))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_is_one_line_exit_2_and_appends_nothing(name, outcomes):
    done, took, before, after = outcomes[name]
    lines = done.stderr.splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("eventbatch: error: "), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert len(lines[0]) < 600, "the error names the value's size, never the huge value itself"
    for word in CASES[name].says:
        assert word in lines[0], lines[0]
    assert took < DEADLINE_S, f"took {took:.1f}s"
    assert after == before, "nothing is appended"
