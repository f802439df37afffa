"""Live updates (scale, minAvailable, priority class), deletion and ttlSecondsAfterFinished."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from schemas.events import (
    ConfigMapDeletionRequested,
    ConfigMapRequested,
    JobDeleteRequested,
    JobRemoved,
    JobUpdateRefused,
    JobUpdateRequested,
    PodGroupDeleted,
    PodGroupUpdated,
    PodStarted,
    ServiceDeletionRequested,
    TimerFired,
    TimerScheduled,
)
from schemas.resources import Job
from tests.unit.job.driver import Loop, deleted, of, phases, requested
from tests.unit.job.manifests import job


def running(**spec) -> Loop:
    loop = Loop()
    loop.submit(job(**spec))
    loop.enqueue()
    for pod in list(loop.job().pods):
        loop.run(pod)
    return loop


def with_spec(manifest: Job, **changes) -> Job:
    return replace(manifest, spec=replace(manifest.spec, **changes))


def scaled(manifest: Job, replicas: int, **changes) -> Job:
    tasks = [replace(manifest.spec.tasks[0], replicas=replicas, min_available=min(replicas, 2))]
    return with_spec(manifest, tasks=tasks, **changes)


def test_scaling_up_requests_the_new_indexed_pods_and_refreshes_hosts():
    loop = running(replicas=2, minAvailable=2, plugins={"svc": []})
    out = loop.feed(JobUpdateRequested(job="default/job", manifest=scaled(loop.job().manifest, 4)))
    assert requested(out) == ["default/job-worker-2", "default/job-worker-3"]
    (group,) = of(out, PodGroupUpdated)
    assert group.min_resources["pods"] == 2
    (hosts,) = of(out, ConfigMapRequested)
    assert hosts.data["VC_WORKER_NUM"] == "4"
    assert loop.phase() == "Running"


def test_scaling_down_removes_the_highest_indices():
    loop = running(replicas=4, minAvailable=2)
    out = loop.feed(JobUpdateRequested(job="default/job", manifest=scaled(loop.job().manifest, 2)))
    assert deleted(out) == ["default/job-worker-2", "default/job-worker-3"]


def test_min_available_and_priority_class_may_change():
    loop = running(replicas=3, minAvailable=3)
    new = with_spec(loop.job().manifest, min_available=1, priority_class_name="low")
    (group,) = of(loop.feed(JobUpdateRequested(job="default/job", manifest=new)), PodGroupUpdated)
    assert (group.manifest.spec.min_member, group.manifest.spec.priority_class_name) == (1, "low")
    assert loop.job().manifest.spec.min_available == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: with_spec(m, queue="other"), "changed: queue"),
        (lambda m: with_spec(m, max_retry=9), "changed: maxRetry"),
        (lambda m: with_spec(m, tasks=[replace(m.spec.tasks[0], name="renamed")]), "cannot be added, removed"),
        (
            lambda m: with_spec(
                m, tasks=[replace(m.spec.tasks[0], template=replace(m.spec.tasks[0].template, spec=replace(
                    m.spec.tasks[0].template.spec, node_name="n9")))]
            ),
            "tasks[0] (worker) other than replicas",
        ),
        (lambda m: with_spec(m, min_available=7), "minAvailable 7 must be between 0 and the total replicas 2"),
    ],
    ids=["queue", "max-retry", "task-renamed", "pod-template", "min-available-too-big"],
)
def test_other_changes_are_refused_and_the_job_is_unchanged(change, reason):
    loop = running(replicas=2, minAvailable=2)
    before = loop.job().manifest
    out = loop.feed(JobUpdateRequested(job="default/job", manifest=change(before)))
    assert [type(d) for d in out] == [JobUpdateRefused]
    assert reason in out[0].reason
    assert loop.job().manifest == before


def test_updating_a_finished_job_is_refused():
    loop = running(replicas=1, minAvailable=1)
    loop.succeed("default/job-worker-0")
    out = loop.feed(JobUpdateRequested(job="default/job", manifest=scaled(loop.job().manifest, 3)))
    assert [type(d) for d in out] == [JobUpdateRefused]
    assert "finished job cannot be updated" in out[0].reason


def test_deleting_a_job_removes_its_pods_podgroup_and_plugin_resources():
    loop = running(replicas=2, minAvailable=2, plugins={"svc": []})
    out = loop.feed(JobDeleteRequested(job="default/job"))
    assert sorted(deleted(out)) == ["default/job-worker-0", "default/job-worker-1"]
    assert [type(d) for d in out[-4:]] == [PodGroupDeleted, ServiceDeletionRequested, ConfigMapDeletionRequested,
                                           JobRemoved]
    assert "default/job" not in loop.state.jobs
    assert loop.feed(PodStarted(pod="default/job-worker-0", node="n")) == []
    assert loop.state.ignored >= 1


def test_ttl_after_finished_removes_the_job_through_a_timer():
    loop = running(replicas=1, minAvailable=1, ttlSecondsAfterFinished=60)
    done = loop.succeed("default/job-worker-0")
    assert phases(done) == ["Completed"]
    (timer,) = of(done, TimerScheduled)
    assert timer.fire_at == loop.now + 60_000
    assert loop.phase() == "Completed"
    out = loop.fire(timer)
    assert [type(d) for d in out][-1] is JobRemoved
    assert out[-1].reason == "TTLExpired"
    assert "default/job" not in loop.state.jobs


def test_a_timer_that_is_not_armed_does_nothing():
    loop = running(replicas=1, minAvailable=1)
    assert loop.feed(TimerFired(timer="default/job|ttl|999", now=loop.now, owner="default/job")) == []
