"""``eventbatch ui``: the web console over a log, and ``serve --ui-port``'s options.

Where it sits: the CLI's read side, in a browser. It opens the log (which must
exist: the console never creates it, nor appends to it) and the read models
beside it when their file exists (caught up as every read command does; with
none, they are folded into memory and no file is created), then serves
``eventbatch.ui.app`` until interrupted.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

from eventbatch.cli import CliError
from eventbatch.kube.probes import check_address

log = logging.getLogger(__name__)


def register(commands) -> None:
    ui = commands.add_parser("ui", help="serve the read-only web console over the log (queues, jobs, why, time travel)")
    ui.add_argument("--port", type=int, default=8081, help="TCP port (default 8081; 0: any free port, logged)")
    add_address_and_token(ui, "--address", "--token")
    ui.add_argument("--views", help="read-model database (default: next to the SQLite log; env EVENTBATCH_VIEWS)")
    ui.set_defaults(run=_ui)


def add_address_and_token(parser, address: str, token: str) -> None:
    parser.add_argument(
        address, default="127.0.0.1", type=check_address,
        help="IP address the console listens on (default 127.0.0.1; anything else: set a token)",
    )
    parser.add_argument(
        token, default="",
        help="require this token on every request (Authorization: Bearer TOKEN, or ?token=TOKEN); 401 otherwise",
    )


def check_port(option: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise CliError(f"{option}: {port} is not a port (0 to 65535; 0 picks a free one)")


async def start_console(stack: AsyncExitStack, settings, *, port: int, address: str, token: str,
                        views: str | None = None, create_views: bool = False, option: str = "--port"):
    """Open the log and read models, start the console on ``address:port``; stopped by ``stack``."""
    from eventbatch.cli.views import views_path
    from eventbatch.log.factory import open_log
    from eventbatch.readmodels import ReadModelStore, ViewsAhead
    from eventbatch.ui.app import Console, UiServer

    path = views_path(settings, views)
    event_log = await stack.enter_async_context(open_log(settings.log_url))
    store = ReadModelStore(path if create_views or path.is_file() else ":memory:")
    await stack.enter_async_context(store)
    server = UiServer(Console(event_log, store), host=address, port=port, token=token)
    try:
        await server.start()
    except ViewsAhead as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        await server.console.stop()
        raise CliError(f"{option} {port}: {exc.strerror or exc}") from None
    stack.push_async_callback(server.stop)
    log.info("ui listening", extra={"port": server.port, "address": server.host})
    return server


async def _ui(args, settings) -> int:
    check_port("--port", args.port)
    async with AsyncExitStack() as stack:
        await start_console(stack, settings, port=args.port, address=args.address, token=args.token,
                            views=args.views)
        await asyncio.Event().wait()
    return 0
