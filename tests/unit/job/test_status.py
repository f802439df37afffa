"""The jobs projection: Volcano's JobStatus, duplicate decisions, stale observations."""

from __future__ import annotations

from eventbatch import statecodec
from projections.jobs import job_status
from schemas.envelope import Causation, Envelope
from schemas.events import PodFailed, PodStarted
from tests.unit.job.driver import Loop
from tests.unit.job.manifests import job, task


def test_job_status_counts_pods_per_phase_and_per_task():
    loop = Loop()
    loop.submit(job(tasks=[task("ps", 1), task("worker", 3)], minAvailable=2))
    loop.enqueue()
    loop.run("default/job-ps-0")
    loop.run("default/job-worker-0")  # Running from its PodStarted on; its PodReady is 1s later
    loop.now += 90_000
    loop.fail("default/job-worker-0")
    loop.run("default/job-worker-1")
    loop.succeed("default/job-worker-1")

    status = loop.status()
    assert status.state.phase == "Running"
    assert status.state.last_transition_time is not None and status.state.last_transition_time.endswith("Z")
    assert (status.pending, status.running, status.succeeded, status.failed, status.terminating) == (1, 1, 1, 1, 0)
    assert {t: s.phase for t, s in status.task_status_count.items()} == {
        "ps": {"Running": 1},
        "worker": {"Pending": 1, "Succeeded": 1, "Failed": 1},
    }
    assert status.min_available == 2
    assert [c.status for c in status.conditions] == ["Pending", "Running"]
    assert status.running_duration == "1m35s"  # from entering Running to the latest event


def test_missing_job_has_no_status():
    assert job_status(Loop().state, "default/nope") is None


def test_a_decision_folded_twice_counts_once():
    loop = Loop()
    loop.submit(job(minAvailable=2))
    loop.enqueue()
    duplicate = next(e for e in loop.log if e.type == "PodRequested")
    assert isinstance(duplicate.causation, Causation)
    pods_before = dict(loop.job().pods)
    loop.handler.fold(loop.state, duplicate.at(len(loop.log)))
    assert loop.job().pods.keys() == pods_before.keys()
    assert loop.state.ignored == 1


def test_observations_about_unknown_pods_are_ignored_and_counted():
    loop = Loop()
    loop.submit(job(minAvailable=2))
    assert loop.feed(PodFailed(pod="default/stranger", exit_code=1)) == []
    assert loop.feed(PodStarted(pod="default/job-worker-0", node="n")) == []  # not requested yet
    assert loop.state.ignored == 2


def test_fold_alone_rebuilds_the_same_state_as_the_live_loop():
    loop = Loop()
    loop.submit(job(minAvailable=2))
    loop.enqueue()
    loop.run("default/job-worker-0")
    loop.fail("default/job-worker-1")
    rebuilt = loop.handler.initial()
    for env in loop.log:
        loop.handler.fold(rebuilt, Envelope.wrap(env.payload, recorded_at=env.recorded_at,
                                                 causation=env.causation).at(env.position))
    assert job_status(rebuilt, "default/job") == loop.status()


def test_a_snapshotted_state_decides_like_the_original():
    """Runner snapshots keep the state with eventbatch.statecodec; a restored one must answer the same way."""
    loop = Loop()
    loop.submit(job(minAvailable=2, policies=[{"event": "PodFailed", "action": "RestartJob"}]))
    loop.enqueue()
    loop.run("default/job-worker-0")
    restored = statecodec.decode(statecodec.encode(loop.state))
    assert restored == loop.state
    trigger = Envelope.wrap(PodFailed(pod="default/job-worker-0", exit_code=1), recorded_at=loop.now + 1)
    trigger = trigger.at(len(loop.log))
    loop.handler.fold(loop.state, trigger)
    loop.handler.fold(restored, trigger)
    assert loop.handler.decide(restored, trigger) == loop.handler.decide(loop.state, trigger)
