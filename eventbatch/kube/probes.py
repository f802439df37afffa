"""Liveness, readiness and Prometheus metrics over HTTP, for the Deployment's probes.

Where it sits: ``eventbatch serve --cluster kube`` starts one on
``--probe-port``. ``/healthz`` answers while the event loop runs;
``/readyz`` once the API server has answered (the Lease was read; a
standby replica is ready too: it is ready to take over); ``/metrics``
renders the gauges and counters the components expose, in the Prometheus
text format.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

Sample = tuple[str, dict[str, str], float]  # (metric name, labels, value)


class ProbeServer:
    def __init__(
        self,
        *,
        port: int,
        host: str = "0.0.0.0",
        samples: Callable[[], list[Sample]] = list,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.port = port
        self.host = host
        self.samples = samples
        self.ready = ready
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
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
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n") if self.ready() else web.Response(status=503, text="not ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
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
