"""Liveness, readiness and Prometheus metrics over HTTP, for the Deployment's probes.

Where it sits: ``eventbatch serve --cluster kube`` starts one on
``--probe-port``. ``/healthz`` answers while the event loop runs;
``/readyz`` once the API server has answered (the Lease was read; a
standby replica is ready too: it is ready to take over); ``/metrics``
renders the gauges and counters the components expose, in the Prometheus
text format.

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

Sample = tuple[str, dict[str, str], float]  # (metric name, labels, value)
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
        samples: Callable[[], list[Sample]] = list,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.port = port
        self.host = host
        self.samples = samples
        self.ready = ready
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

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

        return web.Response(text=render(self.samples()), content_type="text/plain", charset="utf-8")


def render(samples: list[Sample]) -> str:
    lines, typed = [], set()
    for name, labels, value in samples:
        if name not in typed:
            kind = "counter" if name.endswith("_total") else "gauge"
            lines.append(f"# TYPE {name} {kind}")
            typed.add(name)
        label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
    return "\n".join(lines) + "\n"
