"""Commands (bus.volcano.sh Command / the CLI): each runs once, or is refused with a reason."""

from __future__ import annotations

import pytest

from schemas.events import JobCommandRefused, JobCommandRequested
from schemas.loaders import load_manifests
from tests.unit.job.driver import Loop, command, deleted, of, phases
from tests.unit.job.manifests import job


def running() -> Loop:
    loop = Loop()
    loop.submit(job(minAvailable=2))
    loop.enqueue()
    loop.run("default/job-worker-0")
    loop.run("default/job-worker-1")
    return loop


@pytest.mark.parametrize(
    ("action", "phase"),
    [("AbortJob", "Aborting"), ("RestartJob", "Restarting"), ("TerminateJob", "Terminating"),
     ("CompleteJob", "Completing")],
)
def test_command_moves_a_running_job(action, phase):
    loop = running()
    out = loop.command(action)
    assert phases(out)[0] == phase
    assert sorted(deleted(out)) == ["default/job-worker-0", "default/job-worker-1"]
    assert of(out, JobCommandRefused) == []


def test_resume_command_restarts_a_suspended_job():
    loop = running()
    loop.delete_requested(loop.command("AbortJob"))
    out = loop.command("ResumeJob")
    assert phases(out)[:2] == ["Restarting", "Pending"]


def test_a_command_runs_at_most_once():
    loop = running()
    cmd = command("RestartJob", name="restart-1")
    first = loop.feed(JobCommandRequested(job="default/job", command=cmd))
    loop.delete_requested(first)
    assert loop.job().retry_count == 1
    again = loop.feed(JobCommandRequested(job="default/job", command=cmd))
    assert [type(d) for d in again] == [JobCommandRefused]
    assert "at most once" in again[0].reason
    assert loop.job().retry_count == 1


@pytest.mark.parametrize(
    ("setup", "cmd", "reason"),
    [
        ("running", command("AbortJob", namespace="other"), "own namespace"),
        ("running", command("ResumeJob"), "only an aborted (suspended) job can be resumed"),
        ("running", command("FlyJob"), "unknown action 'FlyJob'"),
        ("aborted", command("RestartJob", name="r"), "applies to a Pending or Running job"),
    ],
    ids=["other-namespace", "resume-a-running-job", "unknown-action", "restart-an-aborted-job"],
)
def test_commands_that_cannot_apply_are_refused(setup, cmd, reason):
    loop = running()
    if setup == "aborted":
        loop.delete_requested(loop.command("AbortJob"))
    before = loop.phase()
    out = loop.feed(JobCommandRequested(job="default/job", command=cmd))
    assert [type(d) for d in out] == [JobCommandRefused]
    assert reason in out[0].reason
    assert out[0].action == cmd.action
    assert loop.phase() == before


def test_a_command_for_a_missing_job_is_refused():
    loop = Loop()
    out = loop.feed(JobCommandRequested(job="default/ghost", command=command("AbortJob", "ghost")))
    assert [type(d) for d in out] == [JobCommandRefused]
    assert out[0].reason == "job default/ghost not found"


SUSPEND = """
apiVersion: bus.volcano.sh/v1alpha1
kind: Command
metadata: {name: suspend-job, namespace: default}
action: AbortJob
target: {apiVersion: batch.volcano.sh/v1alpha1, kind: Job, name: job}
reason: maintenance
"""


def test_a_volcano_command_manifest_suspends_the_job():
    (cmd,) = load_manifests(SUSPEND)
    loop = running()
    out = loop.feed(JobCommandRequested(job="default/job", command=cmd))
    assert phases(out) == ["Aborting"]
    assert loop.job().reason == "maintenance"
    assert "AbortJob by command default/suspend-job" in loop.job().message
