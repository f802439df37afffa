"""Lifecycle policies: every event, every action, precedence, timeouts and maxRetry."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from schemas.events import (
    JobPhaseChanged,
    JobUpdateRequested,
    PodDeleted,
    PodEvicted,
    PodRestarted,
    PodStarted,
    PodUnknown,
    TimerCancelled,
    TimerScheduled,
)
from schemas.resources import Job
from tests.unit.job.driver import Loop, deleted, of, phases, requested
from tests.unit.job.manifests import job, task

W0, W1 = "default/job-worker-0", "default/job-worker-1"


def running(**spec) -> Loop:
    loop = Loop()
    loop.submit(job(**spec))
    loop.enqueue()
    for pod in list(loop.job().pods):
        loop.run(pod)
    return loop


# --- every event ------------------------------------------------------------------------------


def _fail(loop: Loop) -> list:
    return loop.fail(W0, exit_code=3)


def _evict(loop: Loop) -> list:
    return loop.feed(PodEvicted(pod=W0, reason="node pressure"))


def _deleted_by_someone_else(loop: Loop) -> list:
    return loop.feed(PodDeleted(pod=W0))


def _unknown(loop: Loop) -> list:
    return loop.feed(PodUnknown(pod=W0, reason="node lost"))


def _task_completed(loop: Loop) -> list:
    loop.succeed(W0)
    return loop.succeed(W1)


def _task_failed(loop: Loop) -> list:
    loop.feed(PodRestarted(pod=W0, restart_count=1, exit_code=1))
    return loop.feed(PodRestarted(pod=W1, restart_count=1, exit_code=1))


def _updated(loop: Loop) -> list:
    return loop.feed(JobUpdateRequested(job="default/job", manifest=scaled(loop.job().manifest, 3)))


def scaled(manifest: Job, replicas: int) -> Job:
    tasks = [replace(manifest.spec.tasks[0], replicas=replicas)]
    return replace(manifest, spec=replace(manifest.spec, tasks=tasks))


EVENTS = [
    ("PodFailed", {"event": "PodFailed"}, _fail),
    ("PodEvicted", {"event": "PodEvicted"}, _evict),
    ("PodEvicted-on-unexpected-delete", {"event": "PodEvicted"}, _deleted_by_someone_else),
    ("Unknown", {"event": "Unknown"}, _unknown),
    ("TaskCompleted", {"event": "TaskCompleted"}, _task_completed),
    ("TaskFailed", {"event": "TaskFailed"}, _task_failed),
    ("JobUpdated", {"event": "JobUpdated"}, _updated),
    ("any-event", {"event": "*"}, _fail),
    ("events-list", {"events": ["PodEvicted", "PodFailed"]}, _fail),
    ("exitCode", {"exitCode": 3}, _fail),
]


@pytest.mark.parametrize(("match", "trigger"), [(e[1], e[2]) for e in EVENTS], ids=[e[0] for e in EVENTS])
def test_each_policy_event_triggers_its_action(match, trigger):
    policies = [{**match, "action": "AbortJob"}]
    tasks = [task("worker", 2, maxRetry=2)]
    loop = running(tasks=tasks, minAvailable=1, policies=policies)
    out = trigger(loop)
    assert "Aborting" in phases(out)


@pytest.mark.parametrize(("match", "trigger"), [(e[1], e[2]) for e in EVENTS], ids=[e[0] for e in EVENTS])
def test_without_a_policy_the_event_only_syncs(match, trigger):
    loop = running(tasks=[task("worker", 2, maxRetry=2)], minAvailable=1)
    out = trigger(loop)
    assert not {"Aborting", "Restarting", "Terminating", "Completing"} & set(phases(out))


def test_exit_code_policy_ignores_other_exit_codes():
    loop = running(minAvailable=1, policies=[{"exitCode": 3, "action": "RestartJob"}])
    assert phases(loop.fail(W0, exit_code=4)) == []
    assert loop.phase() == "Running"


# --- every action --------------------------------------------------------------------------------

ACTIONS = [
    ("AbortJob", "Aborting", [W0, W1]),
    ("RestartJob", "Restarting", [W0, W1, "default/job-worker-2"]),
    ("RestartTask", "Restarting", [W0, W1, "default/job-worker-2"]),
    ("RestartPod", "Restarting", [W0]),
    ("TerminateJob", "Terminating", [W0, W1]),
    ("CompleteJob", "Completing", [W0, W1]),
    ("ResumeJob", None, []),
]


@pytest.mark.parametrize(("action", "phase", "killed"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_each_action_as_a_policy(action, phase, killed):
    loop = running(replicas=3, minAvailable=1, policies=[{"event": "PodFailed", "action": action}])
    loop.succeed("default/job-worker-2")
    out = loop.fail(W0)
    if phase is None:  # ResumeJob only means something to an aborted job
        assert phases(out) == [] and loop.phase() == "Running"
        return
    assert phases(out)[0] == phase
    assert sorted(deleted(out)) == sorted(_expected_kills(action, killed))


SOFT = {"AbortJob", "TerminateJob", "CompleteJob"}


def _expected_kills(action: str, killed: list[str]) -> list[str]:
    # Soft kills keep the failed and the succeeded pod; only the running one goes.
    return [W1] if action in SOFT else killed


# --- precedence, staleness ---------------------------------------------------------------------


def test_task_policies_are_checked_before_job_policies():
    tasks = [task("worker", 2, policies=[{"event": "PodFailed", "action": "RestartPod"}])]
    loop = running(tasks=tasks, minAvailable=1, policies=[{"event": "PodFailed", "action": "AbortJob"}])
    out = loop.fail(W0)
    assert phases(out)[0] == "Restarting"
    assert deleted(out) == [W0]


def test_a_pod_killed_by_the_controller_does_not_trigger_policies():
    loop = running(minAvailable=2, policies=[{"event": "PodFailed", "action": "RestartJob"}])
    loop.command("AbortJob")
    out = loop.fail(W0, exit_code=137)
    assert phases(out) == []
    assert loop.job().retry_count == 0


# --- timeouts ------------------------------------------------------------------------------------


def test_pod_pending_timeout_fires_the_action_through_a_timer():
    tasks = [task("worker", 2, policies=[{"event": "PodPending", "action": "RestartTask", "timeout": "10m"}])]
    loop = Loop()
    loop.submit(job(tasks=tasks, minAvailable=2))
    out = loop.enqueue()
    timers = of(out, TimerScheduled)
    assert [t.fire_at - loop.now for t in timers] == [600_000, 600_000]
    loop.run(W0)
    fired = loop.fire(timers[1])  # worker-1 never started
    assert phases(fired)[0] == "Restarting"
    assert sorted(deleted(fired)) == [W0, W1]


def test_pod_pending_timer_is_cancelled_when_the_pod_starts():
    tasks = [task("worker", 1, policies=[{"event": "PodPending", "action": "RestartTask", "timeout": "90s"}])]
    loop = Loop()
    loop.submit(job(tasks=tasks, minAvailable=1))
    (timer,) = of(loop.enqueue(), TimerScheduled)
    out = loop.feed(PodStarted(pod=W0, node="n"))
    assert [c.timer for c in of(out, TimerCancelled)] == [timer.timer]
    assert loop.fire(timer) == []
    assert loop.phase() == "Running"


def test_pod_pending_without_timeout_never_fires():
    loop = Loop()
    loop.submit(job(minAvailable=2, policies=[{"event": "PodPending", "action": "AbortJob"}]))
    assert of(loop.enqueue(), TimerScheduled) == []


def test_a_timed_pod_failed_policy_waits_for_the_timer():
    loop = running(minAvailable=1, policies=[{"event": "PodFailed", "action": "RestartJob", "timeout": "30s"}])
    out = loop.fail(W0)
    assert phases(out) == []
    (timer,) = of(out, TimerScheduled)
    assert phases(loop.fire(timer))[0] == "Restarting"


# --- maxRetry per job and per task ---------------------------------------------------------------


def test_job_max_retry_counts_every_restart():
    loop = running(minAvailable=2, maxRetry=2, policies=[{"event": "PodFailed", "action": "RestartPod"}])
    out = loop.fail(W0)
    assert phases(out) == ["Restarting"]
    after = loop.delete_requested(out)
    assert phases(after) == ["Pending"]
    assert requested(after) == [W0]
    assert phases(loop.run(W0)) == ["Running"]
    out = loop.fail(W1)
    assert phases(out) == ["Restarting", "Failed"]


def test_task_max_retry_fails_the_job_for_that_task():
    tasks = [task("worker", 2, maxRetry=1, policies=[{"event": "PodFailed", "action": "RestartTask"}])]
    loop = running(tasks=tasks, minAvailable=2, maxRetry=10)
    out = loop.fail(W0)
    assert phases(out) == ["Restarting", "Failed"]
    assert "task worker" in loop.job().message


def test_phase_change_event_names_the_policy_that_caused_it():
    loop = running(minAvailable=1, policies=[{"exitCode": 3, "action": "RestartJob"}])
    (change,) = of(loop.fail(W0, exit_code=3), JobPhaseChanged)
    assert change.reason == "PodFailed"
    assert "exit code 3" in change.message and "exitCode 3 -> RestartJob" in change.message
