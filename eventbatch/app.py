"""The composition root: one place that wires the log, the clock, the handlers,
the timer service and the scheduling trigger from ``Settings``.

Where it sits: the CLI builds a ``Pipeline`` here and either follows the log
forever (``run``: every component a named task in one TaskGroup) or steps it
deterministically (``settle``: every component catches up in a fixed order
until nothing moves), which is what tests, the demo and simulations use with
a virtual clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from eventbatch.checkpointed import CheckpointedFollower
from eventbatch.clock import Clock, SystemClock
from eventbatch.follow import SharedReads
from eventbatch.log.factory import open_log
from eventbatch.log.port import EventLog
from eventbatch.reactor import Reactor
from eventbatch.runtime import HandlerRunner, long_lived_frozen
from eventbatch.settings import Settings
from eventbatch.snapshots import SnapshotStore
from eventbatch.timers import TimerService
from eventbatch.triggers import SchedulingTrigger
from handlers.base import Handler

log = logging.getLogger(__name__)


def default_handlers(settings: Settings) -> list[Handler]:
    """The decision-makers of a full eventbatch: queue and job controllers, scheduler
    (``build_pipeline`` adds the node controller where nodes live on the log)."""
    from handlers.job import JobHandler
    from handlers.queue import QueueHandler
    from handlers.scheduler import SchedulerHandler, load_conf_file

    conf = load_conf_file(settings.scheduler_conf) if settings.scheduler_conf else None
    scheduler = SchedulerHandler(conf) if conf is not None else SchedulerHandler()
    return [QueueHandler(), JobHandler(), scheduler]


def cluster_handlers(cluster: str, handlers: Sequence[Handler]) -> list[Handler]:
    """``handlers``, the podgroup controller (other operators' PodGroups and plain pods),
    the JobFlow controller (JobTemplates, JobFlows and their steps' Jobs), the CronJob
    controller (a Job at each scheduled time) and, on a
    cluster whose nodes live on the log (``sim``, ``none``), the node controller
    that answers node requests; a kube cluster's nodes are the API server's."""
    from handlers.cronjob import CronJobHandler
    from handlers.hypernode import HyperNodeHandler
    from handlers.jobflow import JobFlowHandler
    from handlers.node import NodeHandler
    from handlers.podgroup import PodGroupHandler

    out = list(handlers)
    if not any(h.name == PodGroupHandler.name for h in out):
        out.append(PodGroupHandler())
    if not any(h.name == JobFlowHandler.name for h in out):
        out.append(JobFlowHandler())
    if not any(h.name == CronJobHandler.name for h in out):
        out.append(CronJobHandler())
    if not any(h.name == HyperNodeHandler.name for h in out):
        out.append(HyperNodeHandler())  # HyperNodes (network domains), on every cluster
    if cluster == "kube" or any(h.name == NodeHandler.name for h in out):
        return out
    return [*out, NodeHandler()]


def scheduling_relevance():
    from handlers.scheduler import is_relevant

    return is_relevant


@dataclass
class Pipeline:
    log: EventLog
    clock: Clock
    runners: list[HandlerRunner]
    timers: TimerService
    trigger: SchedulingTrigger | None
    reactors: list[Reactor] = field(default_factory=list)  # cluster adapters, e.g. the simulator
    snapshots: SnapshotStore | None = None
    shared: SharedReads | None = None  # the components' handle on ``log`` (one reader, grouped appends)

    async def close(self) -> None:
        """Stop the snapshot store and the log. No last snapshot: after a cancellation a
        runner may stand between an append and its fold; the periodic ones are taken
        between events."""
        try:
            if self.snapshots is not None:
                await self.snapshots.stop()
        finally:
            await self.log.stop()

    def runner(self, name: str) -> HandlerRunner:
        for runner in self.runners:
            if runner.name == name:
                return runner
        raise KeyError(name)

    async def settle(self, *, max_rounds: int = 10_000, session_budget: int | None = None) -> int:
        """Step every component until the log stops growing; returns the tail position.

        Order within a round is fixed (handlers in their given order, then
        timers and cluster reactors with what is due now), so the same inputs
        and clock give the same log. A scheduling request is made only once a
        round changed nothing: everything that happens at one moment of the
        clock (a pod finishing, the job controller's answer, the simulated
        kubelet's) is seen by one session, not by one session per event.
        With ``session_budget``, at most that many scheduling requests are made.
        """
        for _ in range(max_rounds):
            before = await self.log.end_position()
            for runner in self.runners:
                await runner.catch_up()
            for reactor in (self.timers, *self.reactors):
                if type(reactor).act is not Reactor.act:  # the base act catches up first itself
                    await reactor.catch_up()
                await reactor.act()
            after = await self.log.end_position()
            if after != before:
                continue  # the burst is still unfolding at this moment: one session will see all of it
            if self.trigger is not None:
                await self.trigger.catch_up()
                if self.trigger.due and (session_budget is None or session_budget > 0):
                    await self.trigger.request()
                    session_budget = None if session_budget is None else session_budget - 1
                    continue
            return after
        raise RuntimeError(f"pipeline did not settle within {max_rounds} rounds")

    def components(self) -> list[CheckpointedFollower]:
        """The time-triggered components: timers, cluster reactors, the scheduling trigger."""
        return [self.timers, *self.reactors, *([self.trigger] if self.trigger is not None else [])]

    def snapshot_names(self) -> dict[str, bool]:
        """Every component that reads the log, and whether it keeps a snapshot."""
        names = {runner.name: True for runner in self.runners}
        names.update({component.name: component.keeps_snapshots for component in self.components()})
        return names

    async def checkpoint(self) -> dict[str, int]:
        """Snapshot every handler's and component's state now (needs a snapshot store)."""
        positions = {runner.name: await runner.checkpoint() for runner in self.runners}
        for component in self.components():
            if component.keeps_snapshots:
                positions[component.name] = await component.checkpoint()
        return positions

    def next_deadline(self) -> int | None:
        """The earliest clock time at which a timer or the cluster has something due."""
        deadlines = [d for r in (self.timers, *self.reactors) if (d := r.next_deadline()) is not None]
        return min(deadlines, default=None)

    async def run(self) -> None:
        """Follow the log with every component until cancelled.

        The components' appends are grouped (``SharedReads.append``: what they append
        within one turn of the event loop, or while an append is on its way, is one
        append), and a runner whose handler allows it answers the triggers of a chunk and
        appends their decisions together (``HandlerRunner.run``). Where the backend appends
        a batch of any size as one atomic write (SQLite, memory) a chunk's decisions are one
        append. A Kafka append larger than one record batch (``max_batch_bytes``) is sent as
        several, so there a group is appended only if it fits one record batch (else its
        batches go one by one) and a chunk's decisions are one append per trigger, which
        the shared log groups: each component's batch, and each trigger's decisions, stays
        all on the log or none of it."""
        if self.shared is not None:
            self.shared.group_appends = True
            split = getattr(self.log, "max_batch_bytes", None) is not None
            if split:
                from eventbatch.log.kafka import one_record_batch

                self.shared.group_whole = one_record_batch
            for runner in self.runners:
                runner.answer_chunks = True
                runner.chunk_in_one = not split
        with long_lived_frozen():  # no pause of the event loop that grows with history
            async with asyncio.TaskGroup() as tasks:
                for runner in self.runners:
                    tasks.create_task(runner.run(), name=f"handler:{runner.name}")
                for reactor in (self.timers, *self.reactors):
                    tasks.create_task(reactor.run(), name=reactor.name)
                if self.trigger is not None:
                    tasks.create_task(self.trigger.run(), name="scheduling-trigger")


def build_pipeline(
    *,
    log: EventLog,
    clock: Clock,
    handlers: Sequence[Handler],
    settings: Settings,
    is_relevant=None,
    cluster: str = "none",
    kube=None,
    snapshots: SnapshotStore | None = None,
    snapshot_every: int | None = None,
) -> Pipeline:
    pipeline_log = log
    # Every component follows the log through one shared reader: each record is read
    # and decoded once, not once per component. Appends and plain reads go to ``log``.
    log = log if isinstance(log, SharedReads) else SharedReads(log)
    reactors: list[Reactor] = []
    if cluster == "sim":
        from eventbatch.sim.kubelet import SimKubelet

        reactors.append(SimKubelet(log=log, clock=clock, startup_latency_ms=settings.sim_startup_ms))
    elif cluster == "kube":
        from eventbatch.kube.adapter import KubeOptions, kube_reactors

        reactors.extend(kube_reactors(log=log, clock=clock, options=kube or KubeOptions()))
    elif cluster != "none":
        raise ValueError(f"unknown cluster {cluster!r}: expected sim, kube or none")
    pipeline = Pipeline(
        log=pipeline_log,
        clock=clock,
        runners=[
            HandlerRunner(handler=h, log=log, snapshots=snapshots, snapshot_every=snapshot_every)
            for h in cluster_handlers(cluster, handlers)
        ],
        timers=TimerService(log=log, clock=clock),
        trigger=(
            SchedulingTrigger(
                log=log,
                clock=clock,
                is_relevant=is_relevant,
                debounce_ms=settings.debounce_ms,
                min_debounce_ms=settings.min_debounce_ms,
            )
            if is_relevant is not None
            else None
        ),
        reactors=reactors,
        snapshots=snapshots,
        shared=log,
    )
    if pipeline.trigger is not None:
        scheduler = next((r for r in pipeline.runners if r.name == "scheduler"), None)
        if scheduler is not None:  # one request outstanding at a time (``SchedulingTrigger.taken_up``)
            pipeline.trigger.taken_up = lambda position, runner=scheduler: runner.next_position > position
            pipeline.trigger.session_ms = lambda runner=scheduler: runner.stats.last_decide_ms
    for component in pipeline.components():
        component.snapshots, component.snapshot_every = snapshots, snapshot_every
    return pipeline


async def open_pipeline(
    settings: Settings,
    *,
    clock: Clock | None = None,
    kube=None,
    standby: bool | None = None,
    identity: str | None = None,
) -> Pipeline:
    """The full pipeline on the configured log (started; stop it with ``pipeline.close()``).

    The pipeline is the log's one writer (``eventbatch.log.fenced``): on an SQLite
    log it first takes the lock beside it, refusing with ``WriterBusy`` while
    another pipeline holds it or, as a ``standby`` (the default for a kube
    replica, which already leads), waiting for it; on every backend it then
    appends ``WriterClaimed``, whose position stamps everything it appends.
    """
    from eventbatch.log.factory import sqlite_path
    from eventbatch.log.fenced import FencedLog
    from eventbatch.log.lockfile import WriterLock

    clock = clock or SystemClock()
    if standby is None:
        standby = kube is not None
    event_log = open_log(settings.log_url)
    await event_log.start()
    lock = None
    try:
        if settings.log_url.startswith("sqlite:"):
            lock = WriterLock(sqlite_path(settings.log_url), settings.log_url)
            await lock.acquire(standby=standby)
        fenced = FencedLog(event_log, identity=identity or getattr(kube, "identity", None), lock=lock)
        epoch = await fenced.claim(clock.now())
    except BaseException:
        try:
            await event_log.stop()
        finally:
            if lock is not None:
                lock.release()
        raise
    log.info("log opened", extra={"log": settings.log_url, "epoch": epoch, "identity": fenced.identity})
    snapshots = None
    if settings.snapshots:
        snapshots = SnapshotStore(settings.snapshots)
        await snapshots.start()
        log.info("snapshots", extra={"path": settings.snapshots, "every": settings.snapshot_every})
    return build_pipeline(
        log=fenced,
        clock=clock,
        handlers=default_handlers(settings),
        settings=settings,
        is_relevant=scheduling_relevance(),
        cluster=settings.cluster,
        kube=kube,
        snapshots=snapshots,
        snapshot_every=settings.snapshot_every if snapshots is not None else None,
    )


def install_uvloop() -> bool:
    """Use uvloop's event loop when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
