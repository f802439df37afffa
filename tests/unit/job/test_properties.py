"""Properties that hold for any sequence of cluster answers and commands."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import (
    JobCommandRequested,
    JobPhaseChanged,
    PodDeleted,
    PodDeletionRequested,
    PodEvicted,
    PodFailed,
    PodGroupEnqueued,
    PodReady,
    PodRequested,
    PodRestarted,
    PodStarted,
    PodSucceeded,
    PodUnknown,
    TimerFired,
    TimerScheduled,
)
from tests.unit.job.driver import Loop, command, encoded
from tests.unit.job.manifests import job, task

FINAL = {"Completed", "Failed", "Terminated"}
PODS = [f"default/job-{t}-{i}" for t in ("ps", "worker") for i in range(2)]

pod = st.sampled_from(PODS)
op = st.one_of(
    st.tuples(st.just("enqueue")),
    st.tuples(st.just("start-all")),
    st.tuples(st.just("start"), pod),
    st.tuples(st.just("ready"), pod),
    st.tuples(st.just("succeed"), pod),
    st.tuples(st.just("fail"), pod, st.sampled_from([1, 3, 137])),
    st.tuples(st.just("restart"), pod, st.integers(1, 4)),
    st.tuples(st.just("evict"), pod),
    st.tuples(st.just("unknown"), pod),
    st.tuples(st.just("deleted"), pod),
    st.tuples(
        st.just("command"), st.sampled_from(["AbortJob", "ResumeJob", "RestartJob", "TerminateJob", "CompleteJob"])
    ),
    st.tuples(st.just("fire")),
)


def manifest():
    return job(
        tasks=[
            task("ps", 2, policies=[{"event": "PodPending", "action": "RestartTask", "timeout": "5m"}]),
            task("worker", 2, dependsOn={"name": ["ps"], "iteration": "any"}, maxRetry=5),
        ],
        minAvailable=2,
        maxRetry=4,
        ttlSecondsAfterFinished=30,
        policies=[{"exitCode": 3, "action": "RestartJob"}, {"event": "PodEvicted", "action": "RestartTask"}],
    )


def run(ops: list[tuple]) -> Loop:
    loop = Loop()
    loop.submit(manifest())
    timers: list[TimerScheduled] = []
    for n, (kind, *args) in enumerate(ops):
        if "default/job" not in loop.state.jobs:
            break
        if kind == "enqueue":
            event = PodGroupEnqueued(podgroup=loop.job().podgroup, job="default/job")
        elif kind == "command":
            event = JobCommandRequested(job="default/job", command=command(args[0], name=f"c{n}"))
        elif kind == "start-all":
            for _ in range(2):  # the second round starts the pods the first one released
                for key, rec in list(loop.job().pods.items()) if "default/job" in loop.state.jobs else []:
                    if rec.phase == "Pending" and not rec.terminating:
                        timers += [d for d in loop.feed(PodStarted(pod=key, node="n")) if isinstance(d, TimerScheduled)]
                        loop.feed(PodReady(pod=key))
            continue
        elif kind == "fire":
            if not timers:
                continue
            timer = timers.pop(0)
            loop.now = max(loop.now, timer.fire_at)
            event = TimerFired(timer=timer.timer, now=timer.fire_at, owner=timer.owner)
        else:
            event = {
                "start": lambda p: PodStarted(pod=p, node="n"),
                "ready": lambda p: PodReady(pod=p),
                "succeed": lambda p: PodSucceeded(pod=p),
                "fail": lambda p, code=1: PodFailed(pod=p, exit_code=code),
                "restart": lambda p, count=1: PodRestarted(pod=p, restart_count=count, exit_code=1),
                "evict": lambda p: PodEvicted(pod=p),
                "unknown": lambda p: PodUnknown(pod=p),
                "deleted": lambda p: PodDeleted(pod=p),
            }[kind](*args)
        timers += [d for d in loop.feed(event) if isinstance(d, TimerScheduled)]
    return loop


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=40))
def test_any_history_keeps_the_controller_consistent(ops):
    loop = run(ops)
    enqueued = False
    phase = ""
    deleting: set[str] = set()
    for env in loop.log:
        e = env.payload
        if isinstance(e, PodGroupEnqueued):
            enqueued = True
        elif isinstance(e, PodRequested):
            assert enqueued, "a pod was requested before the queue admitted the PodGroup"
            deleting.discard(e.pod)
        elif isinstance(e, PodDeletionRequested):
            assert e.pod not in deleting, f"{e.pod} asked to be deleted twice"
            deleting.add(e.pod)
        elif isinstance(e, PodDeleted):
            deleting.discard(e.pod)
        elif isinstance(e, JobPhaseChanged):
            assert e.previous == phase
            assert phase not in FINAL, f"left final phase {phase} for {e.phase}"
            phase = e.phase


@settings(max_examples=50, deadline=None)
@given(st.lists(op, max_size=40))
def test_any_history_gives_the_same_decisions_twice(ops):
    first, second = run(ops), run(ops)
    assert encoded(e.payload for e in first.decisions()) == encoded(e.payload for e in second.decisions())
