"""``wstrio.run``: a server as a program's main loop, stopped gracefully by SIGINT or SIGTERM.

A process manager stops a service with SIGTERM, a terminal with Ctrl-C (SIGINT).
Left alone, SIGTERM kills the process and every client sees 1006; Ctrl-C raises
``KeyboardInterrupt`` wherever the code happens to be. ``run`` catches both
signals instead and cancels the server, which then shuts down the way
cancelling ``serve`` always does: stop accepting, 1001 to every session after
its queued messages, ``shutdown_timeout`` for the handlers, then return.
"""

from __future__ import annotations

import functools
import logging
import signal
import ssl

import trio

from ._conn.config import Config
from ._http.routes import Routes
from ._server import Server

logger = logging.getLogger("wstrio.server")

#: The signals ``run`` turns into a graceful shutdown.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve_until_signalled(
    routes: Routes | Server,
    *,
    host: str | None = "127.0.0.1",
    port: int = 7777,
    config: Config = Config(),  # noqa: B008 - frozen, so sharing it is safe
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``routes`` (or a built ``Server``) until SIGINT or SIGTERM, then shut down
    gracefully and return; reports the bound port like ``serve``. Must run in the main
    thread (signals); ValueError for a bad port, OSError if it cannot be bound."""
    server = routes if isinstance(routes, Server) else Server(routes, config=config)
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as nursery:
            serve = functools.partial(server.run, host=host, port=port, ssl_context=ssl_context)
            task_status.started(await nursery.start(serve))
            async for signum in signals:
                logger.info("%s: shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def run(
    routes: Routes | Server,
    *,
    host: str | None = "127.0.0.1",
    port: int = 7777,
    config: Config = Config(),  # noqa: B008 - frozen, so sharing it is safe
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """``trio.run`` a server until SIGINT (Ctrl-C) or SIGTERM, then stop it gracefully (1001
    to every session) and return: the main loop of a program that is only a server."""
    trio.run(
        functools.partial(
            serve_until_signalled,
            routes,
            host=host,
            port=port,
            config=config,
            ssl_context=ssl_context,
        )
    )
