"""Wiring of the kube cluster adapter: options, its reactors, and the leader-elected serve loop.

Where it sits: the composition root (``eventbatch.app``) calls
``kube_reactors`` when the cluster is ``kube``; ``eventbatch serve --cluster
kube`` runs ``serve_kube``: connect, start the probe and metrics endpoint,
campaign for the Lease, and only as leader build and run the pipeline (every
handler, the watch adapters, the actuator and the status writers). Losing the
Lease stops the pipeline and ends the process with status 1, so a
replacement starts clean; a standby never appends to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import dataclass, field

from eventbatch.clock import Clock
from eventbatch.kube.actuator import KubeActuator
from eventbatch.kube.client import Connection
from eventbatch.kube.crds import groups
from eventbatch.kube.flows import FlowWatch
from eventbatch.kube.leader import LeaderElector
from eventbatch.kube.observe import KubeObserver
from eventbatch.kube.operators import OperatorWatch
from eventbatch.kube.probes import DEFAULT_ADDRESS, ProbeServer, check_address
from eventbatch.kube.status import KubeStatusWriter
from eventbatch.log.port import EventLog
from eventbatch.metrics import Metrics, Sample
from eventbatch.reactor import Reactor
from eventbatch.settings import DEFAULT_API_GROUPS, Settings

log = logging.getLogger(__name__)
LOST_LEADERSHIP = 1


def default_identity() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class KubeOptions:
    kubeconfig: str | None = None
    leader_elect: bool = True
    lease_namespace: str = "eventbatch-system"
    lease_name: str = "eventbatch"
    identity: str = field(default_factory=default_identity)
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0
    watch_timeout_s: int = 300
    probe_port: int = 8080  # 0: an ephemeral port; -1: no probe endpoint
    probe_address: str = DEFAULT_ADDRESS  # the Deployment passes the pod IP
    api_groups: str = DEFAULT_API_GROUPS  # Settings.api_groups: which groups the custom resources are served in
    connection: Connection | None = None

    def connect(self) -> Connection:
        if self.connection is None:
            self.connection = Connection(self.kubeconfig)
        return self.connection


def kube_reactors(*, log: EventLog, clock: Clock, options: KubeOptions) -> list[Reactor]:
    connection = options.connect()
    api = groups(options.api_groups)
    return [
        KubeObserver(log=log, clock=clock, connection=connection, watch_timeout_s=options.watch_timeout_s, api_groups=api),
        KubeActuator(log=log, clock=clock, connection=connection, api_groups=api),
        KubeStatusWriter(log=log, clock=clock, connection=connection, api_groups=api),
        OperatorWatch(log=log, clock=clock, connection=connection, watch_timeout_s=options.watch_timeout_s, api_groups=api),
        FlowWatch(log=log, clock=clock, connection=connection, watch_timeout_s=options.watch_timeout_s, api_groups=api),
    ]


def samples(pipeline, elector: LeaderElector | None) -> list[Sample]:
    """The kube adapter's own metrics (``eventbatch.metrics`` has the pipeline's)."""
    out: list[Sample] = [("eventbatch_leader", {}, 1.0 if elector is None or elector.leading else 0.0)]
    if pipeline is None:
        return out
    for reactor in pipeline.reactors:
        if isinstance(reactor, KubeActuator):
            for kind, count in sorted(reactor.stats.by_kind.items()):
                out.append(("eventbatch_actuator_actions_total", {"decision": kind}, float(count)))
            out.append(("eventbatch_actuator_retries_total", {}, float(reactor.stats.retried)))
            out.append(("eventbatch_actuator_pending", {}, float(sum(len(q) for q in reactor.pending.values()))))
        if isinstance(reactor, KubeStatusWriter):
            out.append(("eventbatch_status_writes_total", {}, float(reactor.stats.written)))
    # every watch of every reactor (the observer, the operator and JobFlow watches): labelled by
    # reactor too, since two may watch the same resource (pods:volcano) and a series must be unique
    informers = [(r.name, i) for r in pipeline.reactors for i in getattr(r, "informers", ())]
    for name, stat in (("events", "events"), ("relists", "lists"), ("reconnects", "reconnects")):
        for reactor, informer in informers:
            labels = {"reactor": reactor, "resource": informer.name}
            out.append((f"eventbatch_watch_{name}_total", labels, float(getattr(informer.stats, stat))))
    return out


async def serve_kube(settings: Settings, options: KubeOptions) -> int:
    """Run as one replica of eventbatch in a cluster; returns the exit status.

    SIGTERM (what the kubelet sends) stops cleanly: the pipeline stops, the
    Lease is released so a standby takes over at once, status 0.
    """
    from eventbatch.app import open_pipeline

    probe_address = check_address(options.probe_address)  # before anything is opened
    options.api_groups = settings.api_groups
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
    connection = options.connect()
    kube = await connection.get()
    state: dict[str, object] = {"pipeline": None}
    elector = (
        LeaderElector(
            kube=kube,
            identity=options.identity,
            namespace=options.lease_namespace,
            name=options.lease_name,
            lease_duration=options.lease_duration_s,
            renew_deadline=options.renew_deadline_s,
            retry_period=options.retry_period_s,
        )
        if options.leader_elect
        else None
    )
    probes = None
    metrics = Metrics(lambda: state["pipeline"], extra=lambda: samples(state["pipeline"], elector))  # type: ignore[arg-type,return-value]
    if options.probe_port >= 0:
        probes = ProbeServer(
            port=options.probe_port,
            host=probe_address,
            metrics=metrics,
            ready=lambda: elector.reached if elector is not None else state["pipeline"] is not None,
        )
        await probes.start()
        log.info("probes listening", extra={"port": probes.port, "address": probes.host})
    try:
        if elector is not None:
            log.info("campaigning for the lease", extra={"identity": options.identity})
            if not await _until_stopped(elector.acquire(), stopping):
                return 0
        pipeline = await open_pipeline(settings, kube=options)
        metrics.instrument(pipeline)
        state["pipeline"] = pipeline
        try:
            return await _lead(pipeline, elector, stopping)
        finally:
            await pipeline.log.stop()
    finally:
        if elector is not None:
            await elector.release()
        if probes is not None:
            await probes.stop()
        await connection.close()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


async def _until_stopped(work, stopping: asyncio.Event) -> bool:
    """Run ``work``; False when stopped first."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, stop):
            t.cancel()
        await asyncio.gather(task, stop, return_exceptions=True)
    if task.done() and not task.cancelled():
        task.result()
        return True
    return False


async def _lead(pipeline, elector: LeaderElector | None, stopping: asyncio.Event) -> int:
    run = asyncio.create_task(pipeline.run(), name="pipeline")
    watchers = {run, asyncio.create_task(stopping.wait(), name="sigterm")}
    hold = None
    if elector is not None:
        hold = asyncio.create_task(elector.hold(), name="lease")
        watchers.add(hold)
    try:
        done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    if hold is not None and hold in done:
        return LOST_LEADERSHIP
    if run in done:
        run.result()
    return 0
