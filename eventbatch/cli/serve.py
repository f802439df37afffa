"""``eventbatch serve``: run every processor against the configured log.

Where it sits: the long-running process. It builds the pipeline in the
composition root and follows the log with the job controller, the scheduler,
the timer service and the scheduling trigger until interrupted. With
``--cluster kube`` it runs as one replica in a cluster
(``eventbatch.kube.adapter.serve_kube``): leader election, probes and
metrics, the watch adapter, actuator and status writer.

One pipeline writes a log (``eventbatch.log.fenced``). A second ``serve`` on
an SQLite log is refused with one line while the first runs, or with
``--standby`` waits and takes over when it stops. On Kafka, where no lock
exists, the newer ``serve`` claims the log and the older one, as soon as it
reads that claim, stops and exits with one line; what it appended after the
claim is skipped by every reader.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from eventbatch.app import open_pipeline
from eventbatch.cli import CliError
from eventbatch.kube.probes import check_address
from eventbatch.log.fenced import FencedLog, WriterFenced

log = logging.getLogger(__name__)


def register(commands) -> None:
    serve = commands.add_parser("serve", help="run the handlers, timers and scheduler on the log")
    serve.add_argument(
        "--cluster",
        choices=["sim", "kube", "none"],
        help="cluster adapter: 'sim' (simulated kubelet on the wall clock; the default, "
        "env EVENTBATCH_CLUSTER), 'kube' (a Kubernetes API server) or 'none' (decisions only, no actuator)",
    )
    serve.add_argument("--scheduler-conf", help="Volcano scheduler conf file (actions, tiers)")
    serve.add_argument(
        "--api-groups",
        choices=["volcano", "eventbatch"],
        help="with --cluster kube, the API groups of Jobs, Queues, PodGroups and Commands: 'volcano' "
        "(batch/scheduling/bus.volcano.sh, replacing Volcano; the default, env EVENTBATCH_API_GROUPS) "
        "or 'eventbatch' (*.eventbatch.io, beside an installed Volcano)",
    )
    serve.add_argument(
        "--standby",
        action="store_true",
        help="if another serve is writing this SQLite log, wait and take over when it stops "
        "(default: refuse and exit 2)",
    )
    serve.add_argument(
        "--probe-port", type=int,
        help="port of /healthz, /readyz and /metrics (Prometheus), in every cluster mode "
        "(default: 8080 with --cluster kube, off otherwise; 0: any free port, logged; -1: off)",
    )
    serve.add_argument(
        "--probe-address", default="127.0.0.1", type=check_address,
        help="IP address the unauthenticated probe and metrics port listens on (default 127.0.0.1; "
        "deploy/ passes the pod IP)",
    )
    serve.add_argument(
        "--ui-port", type=int,
        help="port of the read-only web console (docs/console.md; default: off; 0: any free port, logged)",
    )
    from eventbatch.cli.ui import add_address_and_token

    add_address_and_token(serve, "--ui-address", "--ui-token")
    kube = serve.add_argument_group("kube cluster")
    kube.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    kube.add_argument(
        "--leader-elect", default=True, action=_Bool, help="campaign for a Lease before acting (default on)"
    )
    kube.add_argument("--leader-elect-namespace", default="eventbatch-system", help="namespace of the Lease")
    kube.add_argument("--leader-elect-name", default="eventbatch", help="name of the Lease")
    kube.add_argument("--leader-elect-identity", help="this replica's identity (default: $POD_NAME or host-pid)")
    kube.add_argument("--lease-duration", type=float, default=15.0, help="seconds (default 15)")
    kube.add_argument("--renew-deadline", type=float, default=10.0, help="seconds (default 10)")
    kube.add_argument("--retry-period", type=float, default=2.0, help="seconds (default 2)")
    kube.add_argument("--watch-timeout", type=int, default=300, help="server-side watch timeout, seconds")
    serve.set_defaults(run=_serve)


class _Bool:
    """``--flag`` / ``--flag=false``."""

    def __new__(cls, *args, **kwargs):
        import argparse

        return argparse.BooleanOptionalAction(*args, **kwargs)


async def _serve(args, settings) -> int:
    if args.ui_port is None:
        return await _serve_settings(args, settings)
    from contextlib import AsyncExitStack

    from eventbatch.cli.ui import check_port, start_console

    check_port("--ui-port", args.ui_port)
    async with AsyncExitStack() as stack:
        if settings.log_url.startswith("memory:"):
            raise CliError("--ui-port: a memory:// log is the pipeline's own; serve the console on a sqlite or kafka log")
        await _open_log_first(settings)
        await start_console(stack, settings, port=args.ui_port, address=args.ui_address, token=args.ui_token,
                            create_views=True, option="--ui-port")
        return await _serve_settings(args, settings)


async def _open_log_first(settings) -> None:
    """Create the log (as serve would) so the console can open it before the pipeline does."""
    from eventbatch.log.factory import open_log

    async with open_log(settings.log_url):
        pass


async def _serve_settings(args, settings) -> int:
    if args.scheduler_conf:
        settings = replace(settings, scheduler_conf=args.scheduler_conf)
    if args.cluster:
        settings = replace(settings, cluster=args.cluster)
    if args.api_groups:
        settings = replace(settings, api_groups=args.api_groups)
    if settings.cluster == "kube":
        return await _serve_kube(args, settings)
    opened: list = []
    probes = await _start_probes(args, lambda: opened[0] if opened else None)
    try:
        try:
            pipeline = await open_pipeline(settings, standby=args.standby)
        except (ValueError, OSError, WriterFenced) as exc:  # WriterBusy: another serve holds the lock
            raise CliError(str(exc)) from None
        if probes is not None and probes.metrics is not None:
            probes.metrics.instrument(pipeline)
        opened.append(pipeline)
        return await _serve_pipeline(pipeline, settings)
    finally:
        if probes is not None:
            await probes.stop()


async def _start_probes(args, pipeline):
    """The probe and metrics server of a sim or none cluster, when ``--probe-port`` asks for one."""
    if args.probe_port is None or args.probe_port < 0:
        return None
    from eventbatch.kube.probes import ProbeServer
    from eventbatch.metrics import Metrics

    probes = ProbeServer(
        port=args.probe_port, host=args.probe_address, metrics=Metrics(pipeline), ready=lambda: pipeline() is not None
    )
    try:
        await probes.start()
    except OSError as exc:
        raise CliError(f"--probe-port {args.probe_port}: {exc.strerror or exc}") from None
    log.info("probes listening", extra={"port": probes.port, "address": probes.host})
    return probes


async def _serve_pipeline(pipeline, settings) -> int:
    log.info("serving", extra={"settings": settings.redacted()})
    fenced: WriterFenced | None = None
    fence = pipeline.log
    assert isinstance(fence, FencedLog), "open_pipeline gives the pipeline a fenced log"
    try:
        run = asyncio.create_task(pipeline.run(), name="pipeline")
        # The pipeline's shared reader follows the log to its tail through the fence, so it
        # sees a newer claim as a watch of its own would: one reader of the log, not two.
        replaced = asyncio.create_task(fence.superseded(watch=False), name="fence")
        try:
            await asyncio.wait({run, replaced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (run, replaced):
                task.cancel()
            await asyncio.gather(run, replaced, return_exceptions=True)
        if replaced.done() and not replaced.cancelled():
            fenced = WriterFenced(replaced.result())
        elif not run.cancelled():
            run.result()
    except* WriterFenced as group:
        fenced = _first(group)
    finally:
        await pipeline.close()
    if fenced is not None:
        raise CliError(str(fenced))
    return 0


def _first(group: ExceptionGroup[WriterFenced]) -> WriterFenced:
    """The first ``WriterFenced`` of an ``except*`` group (which may hold groups)."""
    found: WriterFenced | ExceptionGroup[WriterFenced] = group
    while isinstance(found, ExceptionGroup):
        found = found.exceptions[0]
    return found


async def _serve_kube(args, settings) -> int:
    from eventbatch.kube.adapter import KubeOptions, default_identity, serve_kube

    options = KubeOptions(
        kubeconfig=args.kubeconfig,
        leader_elect=args.leader_elect,
        lease_namespace=args.leader_elect_namespace,
        lease_name=args.leader_elect_name,
        identity=args.leader_elect_identity or default_identity(),
        lease_duration_s=args.lease_duration,
        renew_deadline_s=args.renew_deadline,
        retry_period_s=args.retry_period,
        watch_timeout_s=args.watch_timeout,
        probe_port=8080 if args.probe_port is None else args.probe_port,
        probe_address=args.probe_address,
    )
    log.info("serving", extra={"settings": settings.redacted(), "identity": options.identity})
    fenced: WriterFenced | None = None
    try:
        try:
            return await serve_kube(settings, options)
        except (ValueError, OSError) as exc:
            raise CliError(str(exc)) from None
    except* WriterFenced as group:  # a newer leader claimed the log (this one lost its lease)
        fenced = _first(group)
    raise CliError(str(fenced))
