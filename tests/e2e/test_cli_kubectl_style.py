"""The command line as kubectl users expect it: shell completion, ``-o wide`` on the list
commands, ``apply -f -`` (standard input) and ``apply -f DIR`` (every manifest file in it,
in name order, all or nothing). Real subprocesses on a real SQLite log; bash runs the
completion script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

QUEUE = """\
apiVersion: scheduling.volcano.sh/v1beta1
kind: Queue
metadata: {name: research}
spec: {weight: 2}
"""


def job(name: str, *, queue: str = "research", replicas: int = 1) -> str:
    return f"""\
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {{name: {name}}}
spec:
  queue: {queue}
  minAvailable: 1
  tasks:
  - name: main
    replicas: {replicas}
    template: {{spec: {{containers: [{{name: c, image: busybox}}]}}}}
"""


def eventbatch(*args: str, log: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    flags = ["--log", f"sqlite:///{log}"] if log is not None else []
    return subprocess.run(
        [sys.executable, "-m", "eventbatch", *flags, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, input=stdin if stdin is not None else "",
    )


def complete(script: str, *words: str) -> list[str]:
    """What bash offers for ``words`` (the last one being completed), through ``complete -p``'s function."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {script}\n"
        "spec=$(complete -p eventbatch) || exit 3\n"
        "function=$(echo \"$spec\" | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMPREPLY=()\n"
        "\"$function\"\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    run = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return [line for line in run.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_walks_the_command_tree(tmp_path: Path) -> None:
    made = eventbatch("completion", "bash")
    assert made.returncode == 0, made.stderr
    script = tmp_path / "eventbatch.bash"
    script.write_text(made.stdout)

    assert "job" in complete(str(script), "eventbatch", "")
    assert complete(str(script), "eventbatch", "jo") == ["job"]
    assert complete(str(script), "eventbatch", "job", "l") == ["list"]
    assert complete(str(script), "eventbatch", "job", "list", "-o", "") == ["text", "wide", "json", "yaml"]
    # options and their values before the command path are stepped over
    assert complete(str(script), "eventbatch", "--log", "sqlite:///x.db", "queue", "list", "--out") == ["--output"]
    assert complete(str(script), "eventbatch", "completion", "") == ["bash", "zsh"]
    assert "--filename" in complete(str(script), "eventbatch", "apply", "--")


def test_zsh_completion_is_the_same_function_through_bashcompinit() -> None:
    made = eventbatch("completion", "zsh")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("#compdef eventbatch\n")
    assert "bashcompinit" in made.stdout and "complete -F _eventbatch eventbatch" in made.stdout
    refused = eventbatch("completion", "fish")
    assert refused.returncode == 2 and "invalid choice: 'fish'" in refused.stderr


def test_apply_reads_standard_input(tmp_path: Path) -> None:
    log = tmp_path / "events.db"
    applied = eventbatch("apply", "-f", "-", log=log, stdin=QUEUE + "---\n" + job("train"))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == ["QueueCreateRequested research at #0", "JobSubmitRequested default/train at #1"]

    refused = eventbatch("apply", "-f", "-", log=log, stdin=job("broken", replicas=-1))
    assert refused.returncode == 2 and "<stdin>" in refused.stderr and "replicas" in refused.stderr


def test_list_commands_with_o_wide_add_columns(tmp_path: Path) -> None:
    simulated = subprocess.run(
        [sys.executable, "-m", "eventbatch", "simulate", "--json", str(ROOT / "examples" / "backfill.yaml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert simulated.returncode == 0, simulated.stderr
    log = tmp_path / json.loads(simulated.stdout)["log"].removeprefix("sqlite://")

    for command, added, row in [
        ("job", ["TERMINATING", "UNKNOWN", "VERSION", "SUBMITTED", "REASON"], "big-gang"),
        ("queue", ["PARENT", "DESERVED", "GUARANTEE", "CAPABILITY", "SHARE"], "default"),
        ("node", ["USED"], "node-0"),
    ]:
        narrow = eventbatch(command, "list", log=log)
        wide = eventbatch(command, "list", "-o", "wide", log=log)
        assert narrow.returncode == 0 and wide.returncode == 0, narrow.stderr + wide.stderr
        narrow_lines, wide_lines = narrow.stdout.splitlines(), wide.stdout.splitlines()
        assert wide_lines[0].split() == narrow_lines[0].split() + added
        assert len(wide_lines) == len(narrow_lines) > 1
        assert row in wide.stdout
        for narrow_line, wide_line in zip(narrow_lines[1:], wide_lines[1:], strict=True):
            cells = narrow_line.split()
            assert wide_line.split()[: len(cells)] == cells
            assert len(wide_line.split()) == len(cells) + len(added)
    jobs = eventbatch("job", "list", "-o", "wide", log=log).stdout
    assert "Completed" in jobs.splitlines()[1].split()[-1]  # REASON: the phase's reason


def test_apply_of_a_directory_takes_its_manifest_files_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "10-queue.yaml").write_text(QUEUE)
    (folder / "20-job.yml").write_text(job("a"))
    (folder / "30-job.json").write_text(
        '{"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "metadata": {"name": "b"}, "spec": '
        '{"queue": "research", "tasks": [{"name": "m", "replicas": 1, "template": {"spec": {"containers": '
        '[{"name": "c", "image": "x"}]}}}]}}'
    )
    (folder / "notes.txt").write_text("not a manifest")
    (folder / "nested").mkdir()
    (folder / "nested" / "ignored.yaml").write_text("this: is not read")
    log = tmp_path / "events.db"

    applied = eventbatch("apply", "-f", str(folder), log=log)
    assert applied.returncode == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert len(lines) == 3
    assert "research" in lines[0] and "default/a" in lines[1] and "default/b" in lines[2]


def test_one_bad_file_in_a_directory_refuses_them_all_naming_file_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "a-queue.yaml").write_text(QUEUE)
    (folder / "b-job.yaml").write_text(job("fine"))
    (folder / "c-job.yaml").write_text(job("broken", replicas=-1))
    log = tmp_path / "events.db"

    refused = eventbatch("apply", "-f", str(folder), log=log)
    assert refused.returncode == 2
    assert str(folder / "c-job.yaml") in refused.stderr and "replicas" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert not log.exists()  # nothing created

    # a job naming a queue nobody created: the planner's refusal names its file too
    (folder / "c-job.yaml").write_text(job("lost", queue="nosuch"))
    refused = eventbatch("apply", "-f", str(folder), log=log)
    assert refused.returncode == 2
    assert f"{folder / 'c-job.yaml'}: " in refused.stderr and "nosuch" in refused.stderr
    assert eventbatch("job", "list", log=log).stdout.count("\n") <= 1  # no job appended

    empty = tmp_path / "empty"
    empty.mkdir()
    refused = eventbatch("apply", "-f", str(empty), log=log)
    assert refused.returncode == 2 and "no *.yaml, *.yml or *.json file" in refused.stderr
