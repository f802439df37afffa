"""Every row of the job phase table, driven through the controller as the runtime would."""

from __future__ import annotations

import pytest

from schemas.events import JobCommandRefused, PodDeleted, PodStarted
from tests.unit.job.driver import Loop, deleted, phases
from tests.unit.job.manifests import job, task

W0, W1, W2 = "default/job-worker-0", "default/job-worker-1", "default/job-worker-2"


def started(replicas: int = 2, run: int = 0, **spec) -> Loop:
    """A submitted, admitted job whose first ``run`` pods are running."""
    loop = Loop()
    loop.submit(job(replicas=replicas, **spec))
    loop.enqueue()
    for i in range(run):
        loop.run(f"default/job-worker-{i}")
    return loop


# --- Pending/Running --restart--> Restarting ----------------------------------------------

RESTARTS = [
    # (action, pods it deletes, version bump)
    ("RestartJob", [W0, W1], 1),
    ("RestartTask", [W0, W1], 0),
    ("RestartPod", [W0], 0),
]


@pytest.mark.parametrize("from_phase", ["Pending", "Running"])
@pytest.mark.parametrize(("action", "victims", "bump"), RESTARTS, ids=[r[0] for r in RESTARTS])
def test_restart_actions_move_to_restarting(from_phase, action, victims, bump):
    loop = started(run=2 if from_phase == "Running" else 0,
                   minAvailable=2, policies=[{"event": "PodFailed", "action": action}])
    if from_phase == "Pending":
        loop.feed(PodStarted(pod=W0, node="n"))
    assert loop.phase() == from_phase
    version = loop.job().version

    out = loop.fail(W0)

    assert phases(out)[0] == "Restarting"
    assert sorted(deleted(out)) == victims
    assert loop.job().retry_count == 1
    assert loop.job().version == version + bump


# --- Pending/Running --AbortJob/TerminateJob/CompleteJob--> soft kill --------------------

SOFT = [("AbortJob", "Aborting"), ("TerminateJob", "Terminating"), ("CompleteJob", "Completing")]


@pytest.mark.parametrize(("action", "target"), SOFT, ids=[s[0] for s in SOFT])
def test_soft_kill_from_running_keeps_finished_pods(action, target):
    loop = started(replicas=3, run=3, minAvailable=1)
    loop.succeed(W0)
    loop.fail(W1)
    assert loop.phase() == "Running"

    out = loop.command(action)

    assert phases(out) == [target]
    assert deleted(out) == [W2]  # the succeeded and the failed pod stay
    assert {W0, W1} <= set(loop.job().pods)
    assert loop.job().version == 1


@pytest.mark.parametrize(("action", "target"), SOFT, ids=[s[0] for s in SOFT])
def test_soft_kill_from_pending(action, target):
    loop = started(replicas=2)
    assert loop.phase() == "Pending"
    out = loop.command(action)
    assert phases(out) == [target]
    assert sorted(deleted(out)) == [W0, W1]


# --- Pending -> Running --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        (["run"], "Pending"),
        (["run", "run"], "Running"),
        (["succeed", "fail"], "Running"),
        (["run", "succeed"], "Running"),
    ],
    ids=["one-of-two-running", "both-running", "succeeded-plus-failed", "running-plus-succeeded"],
)
def test_pending_becomes_running_once_min_available_pods_started(outcomes, expected):
    loop = started(replicas=3, minAvailable=2)
    for i, outcome in enumerate(outcomes):
        pod = f"default/job-worker-{i}"
        loop.feed(PodStarted(pod=pod, node="n"))
        if outcome == "succeed":
            loop.succeed(pod)
        elif outcome == "fail":
            loop.fail(pod)
    assert loop.phase() == expected


# --- Running -> Completed / Failed -------------------------------------------------------


def test_min_success_completes_a_running_job_and_stops_the_rest():
    loop = started(replicas=3, run=3, minAvailable=1, minSuccess=2)
    loop.succeed(W0)
    assert loop.phase() == "Running"
    out = loop.succeed(W1)
    assert phases(out) == ["Completed"]
    assert loop.job().reason == "MinSuccessReached"
    assert deleted(out) == [W2]


@pytest.mark.parametrize(
    ("spec", "tasks", "ends", "phase", "reason"),
    [
        ({"minAvailable": 2}, None, ["succeed", "succeed", "fail"], "Completed", "Completed"),
        ({"minAvailable": 1}, None, ["succeed", "fail", "fail"], "Completed", "Completed"),
        ({"minAvailable": 3}, None, ["succeed", "succeed", "fail"], "Failed", "TaskMinAvailableNotMet"),
        ({"minAvailable": 2, "minSuccess": 3}, None, ["succeed", "succeed", "fail"], "Failed", "MinSuccessNotMet"),
        (
            {"minAvailable": 3},
            [task("worker", 3, minAvailable=1)],
            ["fail", "fail", "succeed"],
            "Failed",
            "MinAvailableNotMet",
        ),
        (
            {"minAvailable": 3},
            [task("worker", 3, minAvailable=2)],
            ["succeed", "fail", "fail"],
            "Failed",
            "TaskMinAvailableNotMet",
        ),
    ],
    ids=[
        "enough-succeeded",
        "one-success-meets-min-1",
        "task-min-available-not-met",
        "below-min-success",
        "below-job-min-available",
        "task-with-own-min-too-few",
    ],
)
def test_running_job_ends_when_every_replica_finished(spec, tasks, ends, phase, reason):
    kwargs = {"tasks": tasks} if tasks else {"replicas": 3}
    loop = Loop()
    loop.submit(job(**kwargs, **spec))
    loop.enqueue()
    for i in range(3):
        loop.run(f"default/job-worker-{i}")
    assert loop.phase() == "Running"
    out = []
    for i, end in enumerate(ends):
        out = loop.succeed(f"default/job-worker-{i}") if end == "succeed" else loop.fail(f"default/job-worker-{i}")
    assert phases(out) == [phase]
    assert loop.job().reason == reason


def test_running_falls_back_to_pending_when_too_many_pods_pending():
    loop = started(replicas=2, run=2, minAvailable=2)
    out = loop.feed(PodDeleted(pod=W0))  # gone without being asked: treated as evicted, recreated
    assert [p.split("/")[1] for p in loop.live_pods()] == ["job-worker-1", "job-worker-0"]
    assert phases(out) == ["Pending"]


# --- Restarting ------------------------------------------------------------------------------


def test_restarting_fails_once_retry_count_reaches_max_retry():
    loop = started(run=2, minAvailable=2, maxRetry=1, policies=[{"event": "PodFailed", "action": "RestartJob"}])
    out = loop.fail(W0)
    assert phases(out) == ["Restarting", "Failed"]
    assert loop.job().reason == "MaxRetryExceeded"


def test_restarting_waits_for_enough_pods_to_be_gone_then_pends_and_recreates():
    loop = started(run=2, minAvailable=2, policies=[{"event": "PodFailed", "action": "RestartJob"}])
    out = loop.fail(W0)
    assert phases(out) == ["Restarting"]
    first = loop.feed(PodDeleted(pod=W0))
    assert phases(first) == [] and loop.phase() == "Restarting"
    second = loop.feed(PodDeleted(pod=W1))
    assert phases(second) == ["Pending"]
    assert [d for d in deleted(second)] == []
    assert sorted(loop.live_pods()) == [W0, W1]
    assert {p.version for p in loop.job().pods.values()} == {1}


# --- Aborting / Aborted ------------------------------------------------------------------


def test_aborting_resumes_into_restarting():
    loop = started(run=2, minAvailable=2)
    loop.command("AbortJob")
    assert loop.phase() == "Aborting"
    out = loop.command("ResumeJob")
    assert phases(out)[0] == "Restarting"
    assert loop.job().retry_count == 1


@pytest.mark.parametrize(
    ("action", "settling", "final"),
    [("AbortJob", "Aborting", "Aborted"), ("CompleteJob", "Completing", "Completed"),
     ("TerminateJob", "Terminating", "Terminated")],
    ids=["aborting", "completing", "terminating"],
)
def test_soft_kill_settles_once_nothing_is_pending_running_or_terminating(action, settling, final):
    loop = started(run=2, minAvailable=2)
    out = loop.command(action)
    assert phases(out) == [settling]
    first = loop.feed(PodDeleted(pod=W0))
    assert phases(first) == []
    last = loop.feed(PodDeleted(pod=W1))
    assert phases(last) == [final]
    assert loop.phase() == final


def test_aborted_resumes_into_restarting_and_recreates_pods():
    loop = started(run=2, minAvailable=2)
    loop.delete_requested(loop.command("AbortJob"))
    assert loop.phase() == "Aborted"
    out = loop.command("ResumeJob")
    assert phases(out) == ["Restarting", "Pending"]
    assert sorted(loop.live_pods()) == [W0, W1]


# --- final phases ------------------------------------------------------------------------------


@pytest.mark.parametrize("final", ["Completed", "Failed", "Terminated"])
def test_final_phases_do_not_move(final):
    loop = started(replicas=1, run=1, minAvailable=1)
    if final == "Completed":
        loop.succeed(W0)
    elif final == "Failed":
        loop.fail(W0)
    else:
        loop.delete_requested(loop.command("TerminateJob"))
    assert loop.phase() == final
    for action in ("RestartJob", "AbortJob", "ResumeJob", "CompleteJob"):
        out = loop.command(action, name=f"late-{action.lower()}")
        assert [type(d) for d in out] == [JobCommandRefused]
        assert "finished" in out[0].reason
    assert loop.feed(PodStarted(pod=W0, node="n")) == []
    assert loop.phase() == final
