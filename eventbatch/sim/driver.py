"""The simulation driver: a scenario through the whole pipeline on a virtual clock.

Where it sits: behind ``eventbatch simulate``. It appends the scenario's
cluster (priority classes, nodes, queues, pods already running) at time 0,
then alternates between appending the workload entries that are due and
stepping the real pipeline (queue and job controllers, scheduler, timers,
scheduling trigger, simulated kubelet) until nothing moves, jumping the
virtual clock straight to the next thing that happens. A simulated day
therefore takes as long as its events take to process, not a day.

It stops at ``until``, when every submitted job has finished (``until:
all-finished``), when nothing more can happen, or after ``cycles``
scheduling sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventbatch.app import Pipeline, build_pipeline
from eventbatch.clock import VirtualClock
from eventbatch.follow import read_to_tail
from eventbatch.log.port import EventLog
from eventbatch.settings import Settings
from eventbatch.sim.inputs import cluster_events, step_events
from handlers.base import Handler
from handlers.job import JobHandler
from handlers.queue import QueueHandler
from handlers.scheduler import SchedulerHandler, is_relevant, load_conf
from schemas.envelope import Envelope
from schemas.events import JobCreated, JobPhaseChanged, JobRemoved, SchedulingRequested
from schemas.events.base import Event
from schemas.scenario import Scenario

FINAL = frozenset({"Completed", "Failed", "Terminated"})
HORIZON_MS = 366 * 24 * 3_600_000  # a year of virtual time at the most


@dataclass
class Progress:
    """What the driver has seen so far, folded from the log as it goes."""

    position: int = 0
    jobs: dict[str, str] = field(default_factory=dict)  # job -> phase ("" until one is decided)
    sessions: int = 0

    def observe(self, envelope: Envelope) -> None:
        self.position = envelope.position + 1
        event = envelope.payload
        if isinstance(event, JobCreated):
            self.jobs.setdefault(event.job, "")
        elif isinstance(event, JobPhaseChanged) and event.job in self.jobs:
            self.jobs[event.job] = event.phase
        elif isinstance(event, JobRemoved):
            self.jobs[event.job] = self.jobs.get(event.job) or "Removed"
        elif isinstance(event, SchedulingRequested):
            self.sessions += 1

    def all_finished(self) -> bool:
        return all(phase in FINAL or phase == "Removed" for phase in self.jobs.values())


@dataclass
class SimResult:
    start: int
    end: int
    now: int
    stopped: str  # why the simulation ended
    sessions: int


async def run_scenario(
    scenario: Scenario,
    *,
    log: EventLog,
    settings: Settings,
    clock: VirtualClock | None = None,
    cycles: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> SimResult:
    clock = clock or VirtualClock()
    conf = load_conf(scenario.scheduler_conf) if scenario.scheduler_conf else None
    handlers: list[Handler[Any]] = [
        QueueHandler(), JobHandler(), SchedulerHandler(conf) if conf is not None else SchedulerHandler()
    ]
    pipeline: Pipeline = build_pipeline(
        log=log, clock=clock, handlers=handlers, settings=settings, is_relevant=is_relevant, cluster="sim"
    )
    start = await log.end_position()
    progress = Progress(position=start)
    steps = list(scenario.steps)

    async def append(events: list[Event]) -> None:
        if events:
            await log.append([Envelope.wrap(e, recorded_at=clock.now()) for e in events])

    initial = cluster_events(scenario)
    while steps and steps[0].at_ms <= clock.now():
        initial += step_events(steps.pop(0))
    await append(initial)

    stopped = "nothing left to happen"
    while True:
        budget = None if cycles is None else max(cycles - progress.sessions, 0)
        await pipeline.settle(session_budget=budget)
        progress.position = await read_to_tail(log, progress.position, progress.observe)
        if on_progress is not None:
            on_progress(clock.now(), progress.position)
        if cycles is not None and progress.sessions >= cycles:
            stopped = f"{cycles} scheduling session(s)"
            break
        if scenario.until_ms is None and not steps and progress.jobs and progress.all_finished():
            stopped = "every job finished"
            break
        moments = [m for m in (pipeline.next_deadline(), steps[0].at_ms if steps else None) if m is not None]
        if not moments:
            break
        moment = max(min(moments), clock.now())
        limit = scenario.until_ms if scenario.until_ms is not None else HORIZON_MS
        if moment > limit:
            clock.advance_to(max(limit, clock.now()))
            stopped = "until reached" if scenario.until_ms is not None else "horizon reached"
            break
        clock.advance_to(moment)
        batch: list[Event] = []
        while steps and steps[0].at_ms <= clock.now():
            batch += step_events(steps.pop(0))
        await append(batch)
    end = await log.end_position()
    return SimResult(start=start, end=end, now=clock.now(), stopped=stopped, sessions=progress.sessions)
