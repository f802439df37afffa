"""The CronJob controller alone, driven as the runtime drives it: its answers to requests, its
timers, what it does when its Jobs finish or go, and the status it reports; admission of CronJobs.

Each input is wrapped at the next position with its time, folded, decided on; the decisions are
folded after it, as the runner does. ``decide`` is checked not to change the state it is given.
The job controller's answers are given by hand (``JobCreated``, ``JobPhaseChanged``, ``JobRemoved``).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from handlers.cronjob import CronJobHandler, cronjob_status
from handlers.cronjob.handler import CronJobsState
from schemas.envelope import Causation, Envelope
from schemas.events import (
    CronJobDeleteRequested,
    CronJobSubmitRequested,
    JobCreated,
    JobPhaseChanged,
    JobRemoved,
    JobSubmitRequested,
    TimerFired,
    TimerScheduled,
)
from schemas.events.base import Event
from schemas.loaders import ManifestError, decode_manifest
from schemas.resources import CronJob

MIN = 60_000


class Driver:
    def __init__(self) -> None:
        self.handler = CronJobHandler()
        self.state: CronJobsState = self.handler.initial()
        self.position = 0

    def _fold(self, event: Event, now: int, causation: Causation | None = None) -> Envelope:
        envelope = Envelope.wrap(event, recorded_at=now, causation=causation).at(self.position)
        self.position += 1
        self.state = self.handler.fold(self.state, envelope)
        return envelope

    def send(self, event: Event, now: int) -> list[Event]:
        trigger = self._fold(event, now)
        before = copy.deepcopy(self.state)
        decisions = self.handler.decide(self.state, trigger)
        assert self.state == before, "decide changed the state"
        for i, decision in enumerate(decisions):
            self._fold(decision, now, Causation(trigger.position, self.handler.name, i))
        return decisions

    def fire(self, now: int) -> list[Event]:
        timer = self.state.cronjobs["default/tick"].timer
        assert timer, "no timer armed"
        return self.send(TimerFired(timer=timer, now=now, owner="default/tick", purpose="cronjob"), now)

    def job_runs(self, decisions: list[Event], now: int, phase: str = "Running") -> str:
        """The job controller creates the submitted Job and moves it to ``phase``."""
        (submitted,) = [d for d in decisions if isinstance(d, JobSubmitRequested)]
        self.send(JobCreated(job=submitted.job, manifest=submitted.manifest), now)
        self.send(JobPhaseChanged(job=submitted.job, phase=phase), now)
        return submitted.job


def cronjob(**spec: Any) -> CronJob:
    out = decode_manifest({
        "apiVersion": "batch.volcano.sh/v1alpha1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "*/5 * * * *", **spec, "jobTemplate": {"spec": {"tasks": [{
            "name": "t", "replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        }]}}},
    })
    assert isinstance(out, CronJob)
    return out


def types(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_a_cronjob_is_created_with_its_next_run_armed_and_a_same_apply_changes_nothing() -> None:
    d = Driver()
    out = d.send(CronJobSubmitRequested(cronjob="default/tick", manifest=cronjob()), 2 * MIN)
    assert types(out) == ["CronJobCreated", "TimerScheduled"]
    assert isinstance(out[1], TimerScheduled) and out[1].fire_at == 5 * MIN
    assert d.send(CronJobSubmitRequested(cronjob="default/tick", manifest=cronjob()), 3 * MIN) == []


def test_the_status_volcano_writes_active_last_schedule_last_success() -> None:
    d = Driver()
    d.send(CronJobSubmitRequested(cronjob="default/tick", manifest=cronjob()), 0)
    job = d.job_runs(d.fire(5 * MIN), 5 * MIN)
    assert cronjob_status(d.state, "default/tick") == {
        "active": [{"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "namespace": "default",
                    "name": "tick-5"}],
        "lastScheduleTime": "1970-01-01T00:05:00Z",
    }
    d.send(JobPhaseChanged(job=job, phase="Completed"), 7 * MIN)
    assert cronjob_status(d.state, "default/tick") == {
        "lastScheduleTime": "1970-01-01T00:05:00Z", "lastSuccessfulTime": "1970-01-01T00:07:00Z"}
    assert cronjob_status(d.state, "default/nope") is None


def test_deleting_a_cronjob_deletes_its_jobs_and_cancels_its_timer() -> None:
    d = Driver()
    d.send(CronJobSubmitRequested(cronjob="default/tick", manifest=cronjob()), 0)
    first = d.job_runs(d.fire(5 * MIN), 5 * MIN, phase="Completed")
    second = d.job_runs(d.fire(10 * MIN), 10 * MIN)
    out = d.send(CronJobDeleteRequested(cronjob="default/tick"), 11 * MIN)
    assert types(out) == ["TimerCancelled", "CronJobJobDeleting", "JobDeleteRequested", "CronJobJobDeleting",
                          "JobDeleteRequested", "CronJobDeleted"]
    assert [e.job for e in out if type(e).__name__ == "JobDeleteRequested"] == [first, second]  # type: ignore[attr-defined]
    assert d.state.cronjobs == {}
    # the Jobs going afterwards, and the timer if it still fires, change nothing
    assert d.send(JobRemoved(job=first, reason="Deleted"), 11 * MIN) == []
    assert d.send(CronJobDeleteRequested(cronjob="default/tick"), 12 * MIN)[0].reason == "cronjob default/tick not found"  # type: ignore[attr-defined]


def test_a_timer_that_is_not_the_armed_one_does_nothing() -> None:
    d = Driver()
    d.send(CronJobSubmitRequested(cronjob="default/tick", manifest=cronjob()), 0)
    stale = TimerFired(timer="cronjob:default/tick:1", now=5 * MIN, owner="default/tick", purpose="cronjob")
    assert d.send(stale, 5 * MIN) == []


def test_a_new_schedule_rearms_the_timer() -> None:
    d = Driver()
    d.send(CronJobSubmitRequested(cronjob="default/tick", manifest=cronjob()), 0)
    out = d.send(CronJobSubmitRequested(cronjob="default/tick", manifest=cronjob(schedule="@hourly")), MIN)
    assert types(out) == ["CronJobUpdated", "TimerCancelled", "TimerScheduled"]
    assert isinstance(out[2], TimerScheduled) and out[2].fire_at == 60 * MIN


def test_the_defaults_are_volcanos() -> None:
    spec = cronjob().spec
    assert (spec.concurrency_policy, spec.suspend, spec.successful_jobs_history_limit,
            spec.failed_jobs_history_limit) == ("Allow", False, 3, 1)
    assert cronjob(timeZone="Asia/Shanghai").spec.time_zone == "Asia/Shanghai"


@pytest.mark.parametrize(("change", "path", "reason"), [
    ({"schedule": "5 * * *"}, "spec.schedule", "not a valid cron expression: expected 5 fields"),
    ({"schedule": "TZ=UTC */5 * * * *"}, "spec.schedule", "must not contain TZ or CRON_TZ"),
    ({"timeZone": "Mars/Olympus"}, "spec.timeZone", "unknown time zone 'Mars/Olympus'"),
    ({"timeZone": "Local"}, "spec.timeZone", "not Local"),
    ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy", "is not one of Allow, Forbid, Replace"),
    ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds", "must be >= 0"),
    ({"successfulJobsHistoryLimit": -1}, "spec.successfulJobsHistoryLimit", "must be >= 0"),
    ({"failedJobsHistoryLimit": -2}, "spec.failedJobsHistoryLimit", "must be >= 0"),
])
def test_a_cronjob_volcano_refuses_is_refused_naming_the_field(change: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ManifestError) as refused:
        cronjob(**change)
    assert refused.value.path == path
    assert reason in refused.value.reason


def test_the_job_template_is_admitted_as_a_job_and_the_name_leaves_room_for_the_suffix() -> None:
    raw = {"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "CronJob", "metadata": {"name": "tick"},
           "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"minAvailable": 3, "tasks": [{
               "name": "t", "replicas": 1,
               "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}]}}}}
    with pytest.raises(ManifestError) as refused:
        decode_manifest(raw)
    assert refused.value.path == "spec.jobTemplate.spec.minAvailable"
    with pytest.raises(ManifestError) as long_name:
        decode_manifest({**raw, "metadata": {"name": "x" * 53}})
    assert long_name.value.path == "metadata.name" and "more than the 52 allowed" in long_name.value.reason
