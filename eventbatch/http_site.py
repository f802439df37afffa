"""Serving an aiohttp application on a TCP address, the port read back when the system picks it.

Where it sits: beside the HTTP servers ``eventbatch serve`` and ``eventbatch ui``
start: the probes and metrics endpoint (``eventbatch.kube.probes``) and the web
console (``eventbatch.ui.app``). Both listen through ``listen``.
"""

from __future__ import annotations

from aiohttp import web


async def listen(runner: web.AppRunner, host: str, port: int) -> int:
    """Set ``runner`` up and listen on ``host:port``; returns the port it listens on (0: a free one, read back)."""
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    if port == 0:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return port
