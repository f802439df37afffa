"""Every command, given each kind of bad option, fails the same way: one line, exit 2, nothing created.

Where it sits: the end-to-end test of the command line's edge
(``eventbatch.cli.main``, ``eventbatch.cli.logcheck``). The commands are
found by walking the real argparse parser, so a command added later is in
the matrix at once; ``COMMANDS`` gives each its minimal valid arguments and
what it does with the log, and a discovered command missing from it fails
``test_every_command_is_in_the_table``.

Each case runs ``python -m eventbatch`` as a subprocess, with a clean
environment, the working directory and ``HOME`` in a fresh temporary
directory, and a timeout (a hang fails). It asserts exit status 2, exactly
one non-empty line on stderr naming the problem, no traceback, and that no
file or directory appeared or changed anywhere under the case's directory
(the not-a-log files it points at included). The cases run in parallel
threads, so the whole matrix takes seconds per core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from eventbatch.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30
EXAMPLE = str(ROOT / "examples" / "mpi.yaml")
QUEUES = str(ROOT / "examples" / "demo" / "queues.yaml")
JOB = str(ROOT / "examples" / "demo" / "mpi-job.yaml")

READS, WRITES, NONE = "existing", "create", "none"  # eventbatch.cli.logcheck's names


@dataclass(frozen=True)
class Command:
    access: str  # READS: the log must exist; WRITES: may create it; NONE: never opens it
    args: tuple[str, ...]  # minimal valid arguments; FILES is the case's folder of test files
    runs_alone: bool = True  # NONE only: can run here (no trace folder, no API server) to show --log is ignored


COMMANDS: dict[str, Command] = {
    "simulate": Command(WRITES, ("simulate", EXAMPLE)),
    "demo": Command(WRITES, ("demo",)),
    "serve": Command(WRITES, ("serve", "--cluster", "none")),
    "ui": Command(READS, ("ui", "--port", "0")),
    "apply": Command(WRITES, ("apply", "-f", QUEUES)),
    "job submit": Command(WRITES, ("job", "submit", "-f", JOB)),
    "job suspend": Command(READS, ("job", "suspend", "lm-mpi")),
    "job resume": Command(READS, ("job", "resume", "lm-mpi")),
    "job restart": Command(READS, ("job", "restart", "lm-mpi")),
    "job terminate": Command(READS, ("job", "terminate", "lm-mpi")),
    "job complete": Command(READS, ("job", "complete", "lm-mpi")),
    "job delete": Command(READS, ("job", "delete", "lm-mpi")),
    "job list": Command(READS, ("job", "list")),
    "job view": Command(READS, ("job", "view", "lm-mpi")),
    "queue create": Command(WRITES, ("queue", "create", "-f", QUEUES)),
    "queue operate": Command(READS, ("queue", "operate", "research", "--action", "close")),
    "queue delete": Command(READS, ("queue", "delete", "research")),
    "queue list": Command(READS, ("queue", "list")),
    "queue get": Command(READS, ("queue", "get", "research")),
    "node add": Command(WRITES, ("node", "add", "--name", "n1")),
    "node cordon": Command(READS, ("node", "cordon", "n1")),
    "node uncordon": Command(READS, ("node", "uncordon", "n1")),
    "node drain": Command(READS, ("node", "drain", "n1")),
    "node remove": Command(READS, ("node", "remove", "n1")),
    "node list": Command(READS, ("node", "list")),
    "events tail": Command(READS, ("events", "tail")),
    "events export": Command(READS, ("events", "export", "-o", "FILES/export.jsonl")),
    "events import": Command(WRITES, ("events", "import", str(ROOT / "tests" / "fixtures" / "export" / "nodes.jsonl"))),
    "schema events": Command(NONE, ("schema", "events")),
    "schema envelope": Command(NONE, ("schema", "envelope")),
    "schema asyncapi": Command(NONE, ("schema", "asyncapi")),
    "schema export": Command(NONE, ("schema", "export", "--check", str(ROOT / "docs" / "schema"))),
    "why": Command(READS, ("why", "lm-mpi")),
    "trace import": Command(NONE, ("trace", "import", "FILES/no-trace"), runs_alone=False),
    "trace experiment": Command(NONE, ("trace", "experiment", "FILES/no-trace"), runs_alone=False),
    "completion": Command(NONE, ("completion", "bash")),
    "replay": Command(READS, ("replay",)),
    "audit job": Command(READS, ("audit", "job", "lm-mpi")),
    "audit queue": Command(READS, ("audit", "queue", "research")),
    "compact": Command(READS, ("compact", "--snapshots", "FILES/snapshots.db")),
    "crds": Command(NONE, ("crds",)),
    "kubelet-sim": Command(NONE, ("kubelet-sim", "--kubeconfig", "FILES/no-kubeconfig"), runs_alone=False),
}

SYNTAX, LOG_FILE, ALWAYS = "syntax", "log file", "always"
NOT_APPLICABLE = object()
IGNORED = "ignored"  # a NONE command ignores what is wrong with the log itself: it succeeds


@dataclass(frozen=True)
class Bad:
    """One kind of bad option: the global flags and environment that give it, and the error it must cause."""

    flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    extra: tuple[str, ...] = ()  # appended after the command's own arguments
    error: str | dict[str, object] = ""  # substring of the one line; by access when it differs
    kind: str = SYNTAX  # SYNTAX and ALWAYS fail every command; LOG_FILE only the ones that open the log

    def expected(self, access: str) -> object:
        if isinstance(self.error, dict):
            return self.error.get(access, NOT_APPLICABLE)
        if self.kind == LOG_FILE and access == NONE:
            return IGNORED
        return self.error


UNREACHABLE = "kafka://127.0.0.1:1/events?connect_timeout=0.3"
VARIANTS: dict[str, Bad] = {
    "bad-scheme": Bad(("--log", "postgres://db/events"), error="unknown log scheme 'postgres'"),
    "no-scheme": Bad(("--log", "events.db"), error="not a log URL: 'events.db'"),
    "one-slash": Bad(("--log", "sqlite:/events.db"), error="not a log URL: 'sqlite:/events.db'"),
    "no-path": Bad(("--log", "sqlite://"), error="names no database file"),
    "unknown-option": Bad(("--log", "sqlite:///FILES/events.db?fsync=always"), error="unknown option 'fsync'"),
    "bad-value": Bad(("--log", "sqlite:///FILES/events.db?chunk=0"), error="bad value for 'chunk'"),
    "no-port": Bad(env={"EVENTBATCH_LOG": "kafka://broker/events"}, error="is not HOST:PORT"),
    "unreachable-broker": Bad(("--log", UNREACHABLE), kind=LOG_FILE, error="cannot reach Kafka broker 127.0.0.1:1"),
    "text-file": Bad(("--log", "sqlite:///FILES/notes.txt"), kind=LOG_FILE,
                     error="is not an eventbatch log (not an SQLite database)"),
    "other-database": Bad(("--log", "sqlite:///FILES/other.db"), kind=LOG_FILE,
                          error="is not an eventbatch log (an SQLite database with tables accounts"),
    "directory": Bad(("--log", "sqlite:///FILES/folder"), kind=LOG_FILE, error="is a directory"),
    "explicit": Bad(("--log", "sqlite:///FILES/events.db"), kind=LOG_FILE,
                    error={READS: "no log at FILES/events.db; run `eventbatch serve` or pass --log", NONE: IGNORED}),
    "default": Bad(kind=LOG_FILE, error={
        READS: "no log at var/eventbatch/events.db; run `eventbatch serve` or pass --log", NONE: IGNORED}),
    "missing-parent-directory": Bad(("--log", "sqlite:///FILES/no/such/dir/events.db"), kind=LOG_FILE, error={
        READS: "no log at FILES/no/such/dir/events.db",
        WRITES: "cannot create the log FILES/no/such/dir/events.db: no directory FILES/no/such/dir",
        NONE: IGNORED}),
    "flag": Bad(("--log-level", "LOUD"), kind=ALWAYS, error="--log-level: expected one of DEBUG"),
    "env": Bad(env={"EVENTBATCH_LOG_LEVEL": "loud"}, kind=ALWAYS, error="EVENTBATCH_LOG_LEVEL: expected one of"),
    "not-a-number": Bad(env={"EVENTBATCH_DEBOUNCE_MS": "soon"}, kind=ALWAYS,
                        error="EVENTBATCH_DEBOUNCE_MS: expected an integer, got 'soon'"),
    "too-small": Bad(env={"EVENTBATCH_SNAPSHOT_EVERY": "0"}, kind=ALWAYS,
                     error="EVENTBATCH_SNAPSHOT_EVERY: expected an integer >= 1"),
    "snapshots-url": Bad(env={"EVENTBATCH_SNAPSHOTS": "kafka://k:9092/snapshots"}, kind=ALWAYS,
                         error="EVENTBATCH_SNAPSHOTS: snapshot store"),
    "log-format": Bad(env={"EVENTBATCH_LOG_FORMAT": "xml"}, kind=ALWAYS, error="EVENTBATCH_LOG_FORMAT"),
    "unknown-flag": Bad(extra=("--no-such-flag",), kind=ALWAYS,
                        error="unrecognized arguments: --no-such-flag (see `eventbatch --help`)"),
}
# Each class of bad option, with its variants: every command meets every class, in one of its
# variants (taken in turn along the table), so each variant is met by several commands of each kind.
CLASSES: dict[str, list[str]] = {
    "bad-scheme": ["bad-scheme"],
    "no-scheme": ["no-scheme"],
    "malformed-sqlite-url": ["one-slash", "no-path"],
    "bad-url-option": ["unknown-option", "bad-value", "no-port"],
    "unreachable-broker": ["unreachable-broker"],
    "not-a-log": ["text-file", "other-database", "directory"],
    "missing-log": ["explicit", "default"],
    "missing-parent-directory": ["missing-parent-directory"],
    "bad-log-level": ["flag", "env"],
    "bad-setting": ["not-a-number", "too-small", "snapshots-url", "log-format"],
    "unknown-flag": ["unknown-flag"],
}


def discovered(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[str, argparse.ArgumentParser]:
    """Every runnable command of the real parser, found by walking its sub-parsers."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: dict[str, argparse.ArgumentParser] = {}
            seen: set[int] = set()
            for name, sub in action.choices.items():  # an alias names the same parser again
                if id(sub) not in seen:
                    seen.add(id(sub))
                    found.update(discovered(sub, (*path, name)))
            return found
    return {" ".join(path): parser}


def cases() -> list[tuple[str, str, str]]:
    """``(command, class, variant)`` for every command and every class that applies to it."""
    out = []
    for turn, (command, spec) in enumerate(COMMANDS.items()):
        for name, variants in CLASSES.items():
            variant = variants[turn % len(variants)]
            expected = VARIANTS[variant].expected(spec.access)
            if expected is NOT_APPLICABLE or (expected == IGNORED and not spec.runs_alone):
                continue
            out.append((command, name, variant))
    return out


def case_id(command: str, name: str, variant: str) -> str:
    return f"{command.replace(' ', '-')}--{name}" + ("" if variant == name else f"-{variant}")


# --- running the matrix --------------------------------------------------


@dataclass
class Outcome:
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    before: dict[str, tuple]
    after: dict[str, tuple]
    files: Path


def _tree(root: Path) -> dict[str, tuple]:
    """Every file and directory under ``root``, with its size and modification time."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            stat = path.lstat()
            out[str(path.relative_to(root))] = (path.is_dir(), stat.st_size, stat.st_mtime_ns)
    return out


def _template(folder: Path) -> Path:
    """The files a case points at: a text file, another program's database, a snapshot store, a folder."""
    files = folder / "files"
    files.mkdir(parents=True)
    (files / "notes.txt").write_text("not a log\n")
    with sqlite3.connect(files / "other.db") as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
    conn.close()
    with sqlite3.connect(files / "snapshots.db") as conn:
        conn.execute("CREATE TABLE snapshots (name TEXT PRIMARY KEY, position INTEGER NOT NULL, data BLOB NOT NULL)")
    conn.close()
    (files / "folder").mkdir()
    return files


def run_case(base: Path, template: Path, command: str, name: str, variant: str) -> Outcome:
    case = base / case_id(command, name, variant)
    work, home, files = case / "work", case / "home", case / "files"
    work.mkdir(parents=True)
    home.mkdir()
    shutil.copytree(template, files)

    def place(text: str) -> str:
        return text.replace("FILES", str(files))

    bad, spec = VARIANTS[variant], COMMANDS[command]
    argv = [*map(place, bad.flags), *map(place, spec.args), *bad.extra]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(home),
           **{k: place(v) for k, v in bad.env.items()}}
    before = _tree(case)
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "eventbatch", *argv], cwd=work, env=env,
                                capture_output=True, text=True, timeout=TIMEOUT_S)
        returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
    except subprocess.TimeoutExpired as exc:
        returncode, stdout, stderr = None, str(exc.stdout or ""), str(exc.stderr or "")
    return Outcome(returncode, stdout, stderr, time.monotonic() - started, before, _tree(case), files)


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple, Outcome]:
    """The selected cases of the matrix, run in parallel threads (each one a subprocess)."""
    wanted = [
        (item.callspec.params["command"], item.callspec.params["name"], item.callspec.params["variant"])
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_a_bad_option_is_one_line_exit_2_and_nothing_created"
    ]
    base = tmp_path_factory.mktemp("cli-errors")
    template = _template(tmp_path_factory.mktemp("cli-errors-template"))
    workers = max(2, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {case: pool.submit(run_case, base, template, *case) for case in wanted}
        return {case: future.result() for case, future in futures.items()}


# --- the tests -----------------------------------------------------------


def test_every_command_is_in_the_table() -> None:
    commands = discovered(_parser())
    missing = sorted(set(commands) - set(COMMANDS))
    assert not missing, f"add each new command to COMMANDS with its minimal arguments and log access: {missing}"
    assert not set(COMMANDS) - set(commands), "COMMANDS names commands the parser no longer has"
    declared = {name: parser.get_default("log_access") for name, parser in commands.items()}
    assert declared == {name: spec.access for name, spec in COMMANDS.items()}, (
        "eventbatch.cli.logcheck.ACCESS (or the command's set_defaults(log_access=...)) and COMMANDS disagree"
    )
    for name, spec in COMMANDS.items():  # the minimal arguments parse
        files = "/nonexistent-files"
        commands[name].parse_args([a.replace("FILES", files) for a in spec.args[len(name.split()):]])


@pytest.mark.parametrize(("command", "name", "variant"), cases(), ids=[case_id(*case) for case in cases()])
def test_a_bad_option_is_one_line_exit_2_and_nothing_created(
    outcomes: dict[tuple, Outcome], command: str, name: str, variant: str
) -> None:
    outcome = outcomes[(command, name, variant)]
    assert outcome.returncode is not None, f"no answer in {TIMEOUT_S}s (a hang): {outcome.stderr[-500:]}"
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    assert outcome.after == outcome.before, (
        f"files appeared or changed: {sorted(set(outcome.after.items()) ^ set(outcome.before.items()))}"
    )
    expected = VARIANTS[variant].expected(COMMANDS[command].access)
    if expected == IGNORED:
        assert outcome.returncode == 0, f"{command} never opens the log, so it must ignore it: {outcome.stderr}"
        return
    lines = outcome.stderr.splitlines()
    assert outcome.returncode == 2, outcome.stderr
    assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr, got {lines}"
    assert lines[0].startswith("eventbatch: error: "), lines[0]
    assert str(expected).replace("FILES", str(outcome.files)) in lines[0]


def test_an_unreachable_broker_is_retried_for_the_connect_timeout_only() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "eventbatch", "--log", "kafka://127.0.0.1:1/events?connect_timeout=1.5",
         "events", "tail"],
        capture_output=True, text=True, timeout=TIMEOUT_S, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    seconds = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "cannot reach Kafka broker 127.0.0.1:1" in result.stderr and "attempt(s) in 1.5s" in result.stderr
    assert 1.5 <= seconds < 1.5 + 10  # the retries last the timeout, then it stops (start-up aside)


def test_argparse_help_still_works() -> None:
    result = subprocess.run([sys.executable, "-m", "eventbatch", "job", "--help"], capture_output=True, text=True,
                            timeout=TIMEOUT_S, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0 and result.stdout.startswith("usage: eventbatch job")
    assert "submit" in result.stdout and result.stderr == ""
