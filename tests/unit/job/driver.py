"""Drives the job controller as the runtime does, and scripts the cluster's answers.

Each input is wrapped in an envelope at the next position and folded; the
handler decides; every decision is wrapped with the trigger's ``recorded_at``
and causation ``(trigger, "job-controller", i)``, given the next positions
and folded too. The scheduler's and the cluster's answers (PodGroupEnqueued,
PodStarted, PodFailed, ...) are inputs like any other. Every ``decide`` is
checked not to change the state it is given, and every job's pod tally to
match its pods.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import msgspec

from handlers.job import JobHandler
from projections.job_records import Counts, JobRecord
from projections.jobs import job_status
from schemas.envelope import Causation, Envelope
from schemas.events import (
    JobCommandRequested,
    JobPhaseChanged,
    JobSubmitRequested,
    PodDeleted,
    PodDeletionRequested,
    PodFailed,
    PodGroupEnqueued,
    PodReady,
    PodRequested,
    PodStarted,
    PodSucceeded,
    TimerFired,
    TimerScheduled,
)
from schemas.events.base import Event
from schemas.loaders import load_manifests
from schemas.resources import Command, Job, JobStatus, ObjectMeta, OwnerReference


def job_from_yaml(text: str) -> Job:
    (job,) = load_manifests(text)
    assert isinstance(job, Job)
    return job


def command(action: str, job: str = "job", *, name: str = "", namespace: str = "default") -> Command:
    return Command(
        metadata=ObjectMeta(name=name or f"{job}-{action.lower()}", namespace=namespace),
        action=action,
        target_object=OwnerReference(api_version="batch.volcano.sh/v1alpha1", kind="Job", name=job),
    )


class Loop:
    def __init__(self, *, check_pure: bool = True) -> None:
        self.check_pure = check_pure
        self.handler = JobHandler()
        self.state = self.handler.initial()
        self.log: list[Envelope] = []
        self.now = 1_000_000

    # --- the runtime ---------------------------------------------------------------

    def _append(self, env: Envelope) -> Envelope:
        env = env.at(len(self.log))
        self.log.append(env)
        self.handler.fold(self.state, env)
        return env

    def feed(self, event: Event, *, after_ms: int = 1000) -> list[Event]:
        """Append one input; return the decisions that answer it."""
        self.now += after_ms
        trigger = self._append(Envelope.wrap(event, recorded_at=self.now))
        before = copy.deepcopy(self.state) if self.check_pure else None
        decisions = self.handler.decide(self.state, trigger)
        if before is not None:
            assert self.state == before, "decide changed the state it was given"
        for i, decision in enumerate(decisions):
            self._append(
                Envelope.wrap(
                    decision,
                    recorded_at=trigger.recorded_at,
                    causation=Causation(trigger.position, self.handler.name, i),
                )
            )
        if self.check_pure:
            for rec in self.state.jobs.values():
                assert rec.counts() == counted(rec), "the running pod tally disagrees with the pods"
        return decisions

    def feed_all(self, events: Iterable[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            out.extend(self.feed(event))
        return out

    # --- reading the state -------------------------------------------------------------

    def job(self, key: str = "default/job") -> JobRecord:
        return self.state.jobs[key]

    def status(self, key: str = "default/job") -> JobStatus:
        status = job_status(self.state, key)
        assert status is not None
        return status

    def phase(self, key: str = "default/job") -> str:
        return self.job(key).phase

    def live_pods(self, key: str = "default/job") -> list[str]:
        """Pods that exist and are not being deleted, in request order."""
        return [p.key for p in self.job(key).pods.values() if not p.terminating]

    def decisions(self) -> list[Envelope]:
        return [e for e in self.log if e.causation is not None]

    # --- scripting the scheduler and the cluster -------------------------------------------

    def submit(self, job: Job) -> list[Event]:
        key = f"{job.metadata.namespace or 'default'}/{job.metadata.name}"
        return self.feed(JobSubmitRequested(job=key, manifest=job))

    def enqueue(self, key: str = "default/job") -> list[Event]:
        rec = self.job(key)
        return self.feed(PodGroupEnqueued(podgroup=rec.podgroup, job=key, queue=rec.manifest.spec.queue))

    def run(self, pod: str, *, ready: bool = True) -> list[Event]:
        out = self.feed(PodStarted(pod=pod, node="node-1"))
        if ready:
            out += self.feed(PodReady(pod=pod))
        return out

    def succeed(self, pod: str) -> list[Event]:
        return self.feed(PodSucceeded(pod=pod))

    def fail(self, pod: str, exit_code: int = 1) -> list[Event]:
        return self.feed(PodFailed(pod=pod, exit_code=exit_code))

    def delete_requested(self, decisions: Iterable[Event]) -> list[Event]:
        """The cluster confirms every deletion asked for in ``decisions``."""
        out: list[Event] = []
        for d in list(decisions):
            if isinstance(d, PodDeletionRequested):
                out += self.feed(PodDeleted(pod=d.pod))
        return out

    def fire(self, timer: TimerScheduled) -> list[Event]:
        self.now = max(self.now, timer.fire_at)
        return self.feed(TimerFired(timer=timer.timer, now=timer.fire_at, owner=timer.owner), after_ms=0)

    def command(self, action: str, job: str = "job", **kw: str) -> list[Event]:
        return self.feed(JobCommandRequested(job=f"default/{job}", command=command(action, job, **kw)))


def counted(rec: JobRecord) -> Counts:
    """Pod counts the slow way, one pod at a time."""
    c = Counts()
    for pod in rec.pods.values():
        if pod.terminating:
            c.terminating += 1
        else:
            field = {"Pending": "pending", "Running": "running", "Succeeded": "succeeded", "Failed": "failed"}
            name = field.get(pod.phase, "unknown")
            setattr(c, name, getattr(c, name) + 1)
    return c


def of(decisions: Iterable[Event], cls: type) -> list:
    return [d for d in decisions if isinstance(d, cls)]


def requested(decisions: Iterable[Event]) -> list[str]:
    return [d.pod for d in decisions if isinstance(d, PodRequested)]


def deleted(decisions: Iterable[Event]) -> list[str]:
    return [d.pod for d in decisions if isinstance(d, PodDeletionRequested)]


def phases(decisions: Iterable[Event]) -> list[str]:
    return [d.phase for d in decisions if isinstance(d, JobPhaseChanged)]


def encoded(decisions: Iterable[Event]) -> list[bytes]:
    return [msgspec.json.encode(d) for d in decisions]
