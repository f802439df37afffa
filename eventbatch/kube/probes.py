"""Liveness, readiness and Prometheus metrics over HTTP, for the Deployment's probes and Prometheus.

Where it sits: ``eventbatch serve`` starts one on ``--probe-port`` in every
cluster mode (``kube``: 8080 unless told otherwise; ``sim`` and ``none``: when
``--probe-port`` is given). ``/healthz`` answers while the event loop runs;
``/readyz`` once the replica is ready (kube: the API server answered, the
Lease was read, a standby replica is ready too: it is ready to take over;
sim and none: the pipeline is open); ``/metrics`` is
``eventbatch.metrics.Metrics``' registry in the Prometheus text format,
written by ``prometheus_client``.

The endpoint has no authentication, so it listens on 127.0.0.1 unless told
otherwise (``--probe-address``); the Deployment passes the pod's own IP
(``status.podIP``), which the kubelet's probes and Prometheus reach and
nothing outside the pod network does.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from eventbatch.metrics import Metrics

DEFAULT_ADDRESS = "127.0.0.1"


class AddressError(ValueError, argparse.ArgumentTypeError):
    """Not an address to listen on; ``str()`` is one line (argparse shows it as the option's error)."""


def check_address(text: str) -> str:
    """``text`` if it is an IPv4 or IPv6 address to listen on; ``AddressError`` otherwise.

    The command line's ``--probe-address`` type: cheap to import (aiohttp is
    imported when a server starts).
    """
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise AddressError(
            f"{text!r} is not an IP address (e.g. 127.0.0.1, the pod IP, or 0.0.0.0 for every interface)"
        ) from None


class ProbeServer:
    def __init__(
        self,
        *,
        port: int,
        host: str = DEFAULT_ADDRESS,
        metrics: Metrics | None = None,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.port = port
        self.host = host
        self.metrics = metrics
        self.ready = ready
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        from aiohttp import web

        from eventbatch.http_site import listen

        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)  # a scrape is not news
        self.port = await listen(self._runner, self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.Response(text="ok\n") if self.ready() else web.Response(status=503, text="not ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.metrics is None:
            body = generate_latest(CollectorRegistry())
        else:
            await self.metrics.refresh()
            body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
