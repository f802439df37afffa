"""Every command, given a damaged log or store, says what is wrong in one line, exits 2 and leaves the file as it was.

Where it sits: the end-to-end test of the command line on damaged SQLite
files (``eventbatch.cli.logcheck``, ``eventbatch.sqlitefile``,
``eventbatch.log.sqlite``). A real log of about 1 MB is written by
``eventbatch simulate`` and damaged as files get damaged in use
(``tests.support.damage``): cut in half, cut at a page, its header
overwritten, a B-tree page in the middle overwritten; beside those a text
file and ``/proc/self/environ``. Every command that opens the log (the
table of ``tests/e2e/test_cli_errors.py``) meets the broken page, which only
a read of every page finds, and one of the others in turn. Each case is a subprocess with
a deadline (a hang fails); it must exit 2 with one line on stderr naming the
file and the damage, no traceback, no file created, and the damaged file
byte for byte as it was. The read-model and snapshot stores are held to the
same, and a log damaged after its read models were built is found by the
read that meets the damage.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_cli_errors import COMMANDS, NONE, _tree
from tests.support.damage import bad_header, broken_btree_page, checksum, cut_at_a_page, cut_in_half

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 20
JOBS = 64  # about 1 MB of log

pytestmark = pytest.mark.slow

# name: (the file the case's --log names, a substring of the one line)
DAMAGE: dict[str, tuple[str, str]] = {
    "cut-in-half": ("FILES/events.db", "FILES/events.db is damaged: database disk image is malformed (truncated"),
    "cut-at-a-page": ("FILES/events.db", "FILES/events.db is damaged: database disk image is malformed (truncated"),
    "bad-header": ("FILES/events.db", "FILES/events.db is damaged: file is not a database"),
    "broken-page": ("FILES/events.db", "FILES/events.db: database disk image is malformed (the file is damaged"),
    "text-file": ("FILES/events.db", "FILES/events.db is not an eventbatch log (not an SQLite database)"),
    "proc-environ": ("/proc/self/environ", "/proc/self/environ is not an eventbatch log (not an SQLite database)"),
}
EVERY_COMMAND = ["broken-page"]  # the deepest damage: only a read of every page finds it
IN_TURN = ["cut-in-half", "cut-at-a-page", "bad-header", "text-file", "proc-environ"]
# simulate and demo refuse a log that holds events before they read it, damaged or not: also one line
HOLDS_EVENTS = "FILES/events.db already holds"
EXPECTED = {("simulate", "broken-page"): HOLDS_EVENTS, ("demo", "broken-page"): HOLDS_EVENTS}
OPENING = [name for name, spec in COMMANDS.items() if spec.access != NONE]


def cases() -> list[tuple[str, str]]:
    return [
        (command, damage)
        for turn, command in enumerate(OPENING)
        for damage in (*EVERY_COMMAND, IN_TURN[turn % len(IN_TURN)])
    ]


def scenario(jobs: int) -> str:
    entries = "".join(
        f"""- at: {i}s
  apply:
    apiVersion: batch.volcano.sh/v1alpha1
    kind: Job
    metadata: {{name: job-{i}, namespace: default}}
    spec:
      minAvailable: 2
      tasks:
      - name: main
        replicas: 2
        template:
          metadata: {{annotations: {{eventbatch.io/sim-duration: 30s}}}}
          spec: {{containers: [{{name: c, image: x, resources: {{requests: {{cpu: "1", memory: 1Gi}}}}}}]}}
"""
        for i in range(jobs)
    )
    return (
        "nodes:\n- {prefix: node-, count: 4, allocatable: {cpu: 8, memory: 32Gi}}\n"
        "queues:\n- {apiVersion: scheduling.volcano.sh/v1beta1, kind: Queue, metadata: {name: default}, "
        "spec: {weight: 1}}\n"
        f"workload:\n{entries}until: all-finished\n"
    )


def run(
    argv: list[str], cwd: Path, home: Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess | None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(home), **(extra or {})}
    try:
        return subprocess.run([sys.executable, "-m", "eventbatch", *argv], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real log written by ``eventbatch simulate``: JOBS jobs, about 1 MB, closed cleanly."""
    folder = tmp_path_factory.mktemp("healthy")
    (folder / "scenario.yaml").write_text(scenario(JOBS))
    result = run(["--log", f"sqlite://{folder}/events.db", "simulate", str(folder / "scenario.yaml")],
                 folder, folder)
    assert result is not None and result.returncode == 0, result and result.stderr[-2000:]
    data = (folder / "events.db").read_bytes()
    assert len(data) > 900_000 and not Path(f"{folder}/events.db-wal").exists()
    return data


def damaged(healthy: bytes, damage: str) -> bytes:
    if damage == "cut-in-half":
        return cut_in_half(healthy)
    if damage == "cut-at-a-page":
        return cut_at_a_page(healthy)
    if damage == "bad-header":
        return bad_header(healthy)
    if damage == "broken-page":
        return broken_btree_page(healthy)[0]
    return b"not a log\n"


@dataclass
class Outcome:
    result: subprocess.CompletedProcess | None
    seconds: float
    files: Path
    before: dict[str, tuple]
    after: dict[str, tuple]
    sums: tuple[str, str]


def run_case(base: Path, healthy: bytes, command: str, damage: str) -> Outcome:
    case = base / f"{command.replace(' ', '-')}--{damage}"
    work, home, files = case / "work", case / "home", case / "files"
    for folder in (work, home, files):
        folder.mkdir(parents=True)
    (files / "events.db").write_bytes(damaged(healthy, damage))
    with sqlite3.connect(files / "snapshots.db") as conn:
        conn.execute("CREATE TABLE snapshots (name TEXT PRIMARY KEY, position INTEGER NOT NULL, data BLOB NOT NULL)")
    conn.close()
    log = DAMAGE[damage][0].replace("FILES", str(files))
    argv = ["--log", f"sqlite://{log}", *(a.replace("FILES", str(files)) for a in COMMANDS[command].args)]
    before, sum_before = _tree(case), checksum(files / "events.db")
    started = time.monotonic()
    result = run(argv, work, home)
    seconds = time.monotonic() - started
    return Outcome(result, seconds, files, before, _tree(case), (sum_before, checksum(files / "events.db")))


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, healthy: bytes, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Outcome]:
    """The selected cases, run in parallel threads (each one a subprocess)."""
    wanted = [
        (item.callspec.params["command"], item.callspec.params["damage"])
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_a_damaged_log_is_one_line_exit_2_and_left_as_it_was"
    ]
    base = tmp_path_factory.mktemp("corrupt-cli")
    with ThreadPoolExecutor(max_workers=max(2, 2 * (os.cpu_count() or 1))) as pool:
        futures = {case: pool.submit(run_case, base, healthy, *case) for case in wanted}
        return {case: future.result() for case, future in futures.items()}


def assert_one_line(result: subprocess.CompletedProcess | None, expected: str) -> str:
    assert result is not None, f"no answer in {TIMEOUT_S}s (a hang)"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("eventbatch: error: "), lines
    assert expected in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(("command", "damage"), cases(), ids=[f"{c.replace(' ', '-')}--{d}" for c, d in cases()])
def test_a_damaged_log_is_one_line_exit_2_and_left_as_it_was(
    outcomes: dict[tuple[str, str], Outcome], command: str, damage: str
) -> None:
    outcome = outcomes[(command, damage)]
    expected = EXPECTED.get((command, damage), DAMAGE[damage][1])
    assert_one_line(outcome.result, expected.replace("FILES", str(outcome.files)))
    assert outcome.sums[0] == outcome.sums[1], "the damaged log was written to"
    after, before = _files(outcome.after), _files(outcome.before)
    assert after == before, f"files appeared or changed: {sorted(set(after.items()) ^ set(before.items()))}"


def _files(tree: dict[str, tuple]) -> dict[str, tuple]:
    """Every name, and each file's size and time; not a folder's time (SQLite's -wal and -shm come and go)."""
    return {name: entry if not entry[0] else (True,) for name, entry in tree.items()}


def _copy_log(healthy: bytes, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "events.db"
    path.write_bytes(healthy)
    return path


def test_serve_on_a_damaged_log_ends_at_once(healthy: bytes, tmp_path: Path) -> None:
    path = _copy_log(broken_btree_page(healthy)[0], tmp_path)
    before = checksum(path)
    started = time.monotonic()
    result = run(["--log", f"sqlite://{path}", "serve", "--cluster", "sim"], tmp_path, tmp_path)
    seconds = time.monotonic() - started
    assert_one_line(result, f"{path}: database disk image is malformed")
    assert seconds < 10, f"serve took {seconds:.1f}s to give up on a damaged log"
    assert checksum(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["events.db"]


def test_damage_met_by_a_read_after_the_read_models_were_built(healthy: bytes, tmp_path: Path) -> None:
    """The read models are built from the healthy log; then a page in the middle is damaged.
    A command that reads the log from the start meets the damage mid-read: one line with the position."""
    path = _copy_log(healthy, tmp_path)
    built = run(["--log", f"sqlite://{path}", "job", "list"], tmp_path, tmp_path)
    assert built is not None and built.returncode == 0 and "job-0" in built.stdout, built and built.stderr
    path.write_bytes(broken_btree_page(healthy)[0])
    before, tree = checksum(path), _tree(tmp_path)
    result = run(["--log", f"sqlite://{path}", "events", "tail"], tmp_path, tmp_path)
    line = assert_one_line(result, f"cannot read the log {path} from position ")
    assert "database disk image is malformed (the file is damaged)" in line
    assert checksum(path) == before and _tree(tmp_path) == tree


def test_a_damaged_read_model_store_is_named_and_replay_rebuilds_it(healthy: bytes, tmp_path: Path) -> None:
    path = _copy_log(healthy, tmp_path)
    url = f"sqlite://{path}"
    built = run(["--log", url, "job", "list"], tmp_path, tmp_path)
    assert built is not None and built.returncode == 0, built and built.stderr
    views = tmp_path / "events.views.db"
    views.write_bytes(broken_btree_page(views.read_bytes())[0])
    before = checksum(views)
    queues = str(ROOT / "examples" / "demo" / "queues.yaml")
    for argv in (["job", "list"], ["queue", "get", "default"], ["apply", "-f", queues]):
        line = assert_one_line(run(["--log", url, *argv], tmp_path, tmp_path), f"{views}")
        assert "database disk image is malformed" in line and "`eventbatch replay` rebuilds them" in line, line
        assert checksum(views) == before
    rebuilt = run(["--log", url, "replay"], tmp_path, tmp_path)
    assert rebuilt is not None and rebuilt.returncode == 0, rebuilt and rebuilt.stderr
    again = run(["--log", url, "job", "list"], tmp_path, tmp_path)
    assert again is not None and again.returncode == 0 and again.stdout == built.stdout


def test_a_damaged_snapshot_store_is_named(healthy: bytes, tmp_path: Path) -> None:
    path = _copy_log(healthy, tmp_path)
    store = tmp_path / "snapshots.db"
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TABLE snapshots (name TEXT PRIMARY KEY, position INTEGER NOT NULL, data BLOB NOT NULL)")
        conn.executemany("INSERT INTO snapshots VALUES (?, ?, ?)", [(f"h{i}", i, b"x" * 600) for i in range(300)])
    conn.close()
    store.write_bytes(broken_btree_page(store.read_bytes())[0])
    before = checksum(store)
    for argv, env in ((["compact", "--snapshots", str(store)], {}),
                      (["serve", "--cluster", "none"], {"EVENTBATCH_SNAPSHOTS": str(store)})):
        line = assert_one_line(run(["--log", f"sqlite://{path}", *argv], tmp_path, tmp_path, env), f"{store}")
        assert "database disk image is malformed" in line, line
        assert checksum(store) == before


def test_read_models_another_eventbatch_wrote_are_refused_and_rebuilt_once_deleted(healthy: bytes, tmp_path: Path) -> None:
    """A read-model store whose fold state has a shape this code does not have (an older or
    newer eventbatch) is never folded on from: one line naming it, and deleting it rebuilds."""
    import msgspec

    from eventbatch import statecodec

    path = _copy_log(healthy, tmp_path)
    url = f"sqlite://{path}"
    built = run(["--log", url, "job", "list"], tmp_path, tmp_path)
    assert built is not None and built.returncode == 0, built and built.stderr
    views = tmp_path / "events.views.db"
    with sqlite3.connect(views) as conn:
        [(name, blob)] = conn.execute("SELECT name, state FROM snapshots").fetchall()
        version, table, root, shapes = msgspec.msgpack.decode(blob[len(statecodec.MAGIC):])
        shapes["projections.views.viewset:ViewSet"] = "0" * 16  # what another shape of ViewSet kept
        other = statecodec.MAGIC + msgspec.msgpack.encode([version, table, root, shapes])
        conn.execute("UPDATE snapshots SET state = ? WHERE name = ?", (other, name))
    conn.close()
    before = checksum(views)
    line = assert_one_line(run(["--log", url, "job", "list"], tmp_path, tmp_path), f"{views}")
    assert "written by another eventbatch" in line and "ViewSet" in line and "delete it" in line, line
    assert checksum(views) == before
    views.unlink()
    again = run(["--log", url, "job", "list"], tmp_path, tmp_path)
    assert again is not None and again.returncode == 0 and again.stdout == built.stdout
