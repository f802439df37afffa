"""A planted store never runs code: the read commands open stores next to the log only, and read no pickle.

The read models of an SQLite log live next to it (``events.db`` ->
``events.views.db``) for every URL form, whatever the working directory, and
a store's saved state is read with ``eventbatch.statecodec``, never
unpickled. Each test plants a pickle that creates a marker file when
unpickled, at every path a store could be opened from (next to the log, and
where an earlier eventbatch looked for ``sqlite:///abs`` logs: ``./abs``
under the working directory), then runs the command line as a real
subprocess: the marker never appears, and a planted store next to the log is
refused in one line.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from eventbatch.cli.views import views_path
from eventbatch.log.factory import open_log
from eventbatch.readmodels import ReadModelStore
from eventbatch.settings import Settings
from eventbatch.sim.driver import run_scenario
from eventbatch.snapshots import ComponentSnapshot, SnapshotStore
from projections.views import ViewSet
from schemas.scenario import load_scenario
from tests.support.workloads import ONE_SHORT_JOB

ROOT = Path(__file__).resolve().parents[2]

# Every command that opens the read models of --log (none of them may unpickle).
READERS = [
    ("queue", "list"),
    ("job", "list"),
    ("queue", "get", "default"),
    ("job", "view", "default/short"),
    ("audit", "job", "default/short"),
    ("audit", "queue", "default"),
    ("node", "list"),
    ("compact", "--dry-run", "--snapshots", "SNAPSHOTS"),
]
# Commands that read the log without the read models' snapshot; they must work whatever is planted.
OTHERS = [("why", "default/short"), ("events", "tail"), ("replay", "--to", "3"), ("replay", "--verify")]


class _Touch:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # unpickled, it creates the marker file
        return (open, (str(self.path), "w"))


def evil(marker: Path, wrap=lambda state: state) -> bytes:
    return pickle.dumps(wrap(_Touch(marker)))


def plant_views(path: Path, blob: bytes) -> None:
    """A read-model store whose fold snapshot is ``blob``."""
    path.parent.mkdir(parents=True, exist_ok=True)

    async def make() -> None:
        async with ReadModelStore(path) as store:
            await store.apply(ViewSet().flush(), snapshot=blob)

    import asyncio

    asyncio.run(make())


def plant_snapshots(path: Path, blob: bytes) -> None:
    import asyncio

    async def make() -> None:
        async with SnapshotStore(path) as store:
            for name in ("queue-controller", "job-controller", "scheduler"):
                await store.save(ComponentSnapshot(name, 1, {}))

    asyncio.run(make())
    with sqlite3.connect(path) as db:
        db.execute("UPDATE snapshots SET data = ?", (blob,))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A log of one short job, run by the real pipeline."""
    folder = tmp_path_factory.mktemp("recorded")
    (folder / "one.yaml").write_text(ONE_SHORT_JOB)
    import asyncio

    async def record() -> None:
        async with open_log(f"sqlite:///{folder / 'events.db'}") as log:
            await run_scenario(load_scenario(str(folder / "one.yaml")), log=log, settings=Settings())

    asyncio.run(record())
    return folder / "events.db"


def run(cwd: Path, url: str, args: tuple[str, ...], snapshots: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTBATCH_")}
    argv = [str(snapshots) if a == "SNAPSHOTS" else a for a in args]
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", url, *argv],
        cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )


def copy_log(recorded: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    log = folder / "events.db"
    log.write_bytes(recorded.read_bytes())
    return log


@pytest.mark.parametrize("url_form", ["absolute", "relative", "absolute-with-options"])
def test_the_read_models_of_every_sqlite_url_are_next_to_the_log_whatever_the_working_directory(
    url_form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTBATCH_VIEWS", raising=False)
    (tmp_path / "elsewhere").mkdir()
    log = tmp_path / "logs" / "events.db"
    url = {
        "absolute": f"sqlite:///{log}",
        "relative": "sqlite://logs/events.db",
        "absolute-with-options": f"sqlite:///{log}?busy_timeout=5&synchronous=FULL",
    }[url_form]
    for cwd in (tmp_path, tmp_path / "elsewhere"):
        monkeypatch.chdir(cwd)
        found = Path(os.path.abspath(views_path(SimpleNamespace(log_url=url))))
        expected_log = log if url_form != "relative" else cwd / "logs" / "events.db"
        assert found == expected_log.parent / "events.views.db"


@pytest.mark.slow
@pytest.mark.parametrize("url_form", ["absolute", "relative"])
def test_a_pickle_planted_where_a_store_could_be_opened_never_runs(
    url_form: str, recorded: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    log = copy_log(recorded, tmp_path / "logs")
    url = f"sqlite:///{log}" if url_form == "absolute" else "sqlite://logs/events.db"
    next_to_log = log.with_name("events.views.db")
    old_bug = tmp_path / str(log.parent).lstrip("/") / "events.views.db"  # sqlite:///abs read as ./abs
    plant_views(old_bug, evil(marker))
    planted_old_bug = old_bug.read_bytes()
    snapshots = tmp_path / "snapshots.db"
    plant_snapshots(snapshots, evil(marker, lambda state: ComponentSnapshot("scheduler", 1, state)))

    # Planted next to the log: refused in one line, exit 2, never unpickled.
    plant_views(next_to_log, evil(marker))
    refusal = f"read-model store {'' if url_form == 'absolute' else 'logs/'}"
    for args in READERS:
        result = run(tmp_path, url, args, snapshots)
        assert not marker.exists(), args
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (args, result.stderr[-2000:])
        assert lines[0].startswith(f"eventbatch: error: {refusal}") and lines[0].endswith(
            "events.views.db was written by an older eventbatch; delete it to rebuild from the log"), lines
    for args in OTHERS:
        result = run(tmp_path, url, args, snapshots)
        assert not marker.exists(), args
        assert result.returncode == 0, (args, result.stderr[-2000:])

    # Deleted as told, the read models are rebuilt from the log next to it; the file an
    # earlier eventbatch would have opened under the working directory is never read.
    next_to_log.unlink()

    # A snapshot store an older eventbatch pickled: refused in one line, never unpickled.
    for args in (("replay", "--verify", "--snapshots", str(snapshots)), READERS[-1]):
        result = run(tmp_path, url, args, snapshots)
        assert not marker.exists()
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [
            f"eventbatch: error: snapshot store {snapshots} was written by an older eventbatch; "
            "delete it to rebuild from the log"
        ], (args, result.stderr[-2000:])

    for args in READERS[:-1]:
        result = run(tmp_path, url, args, snapshots)
        assert not marker.exists(), args
        assert result.returncode == 0, (args, result.stderr[-2000:])
    listed = run(tmp_path, url, ("job", "list"), snapshots).stdout.splitlines()
    assert listed[1].split()[:4] == ["default", "short", "default", "Completed"], listed
    assert next_to_log.exists() and old_bug.read_bytes() == planted_old_bug

    # The planted bytes do create the marker when unpickled: the checks above can fail.
    pickle.loads(evil(marker))
    assert marker.exists()
