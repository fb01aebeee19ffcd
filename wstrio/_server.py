"""``wstrio.serve``: listen, hand each connection to a supervisor, stop gracefully.

Theory of operation: connections run in a nursery whose cancel scope is
shielded, so cancelling ``serve`` does not kill them mid-frame. Instead the
accept loop stops, every live supervisor is told to go away (1001) and the
server waits, bounded by ``shutdown_timeout + close_timeout``, before it
cancels whatever is left. Nothing a peer or a handler does escapes a
connection's task: the server keeps serving everyone else.
"""

from __future__ import annotations

import errno
import itertools
import ssl
from typing import Any

import trio
from prometheus_client import CollectorRegistry

from ._conn.config import Config
from ._conn.errors import one_of
from ._conn.logfields import get_logger, log_fields
from ._conn.stats import ServerStatistics
from ._http.admission import Admission
from ._http.dashboard import dashboard_routes
from ._http.front import serve_connection
from ._http.routes import Routes, resolve_routes
from ._wire.streams import address_text, bound_port, peer_address, set_send_buffer, socket_of

logger = get_logger("wstrio.server")

#: accept() errors that mean "out of resources for now", not "listener broken".
_ACCEPT_CAN_RETRY = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


def check_port(port: object) -> int:
    """``port`` if it is an int from 0 to 65535, else ValueError (no bools, no floats)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535 (0: any free port), not {port!r}")
    return port


def listening_urls(listeners: list[trio.abc.Listener[Any]]) -> list[str]:
    """``ws://host:port/`` (``wss://`` under TLS) for each listener on a socket."""
    urls = []
    for listener in listeners:
        sock = socket_of(listener)
        if sock is None:
            continue
        host, port = sock.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        scheme = "wss" if isinstance(listener, trio.SSLListener) else "ws"
        urls.append(f"{scheme}://{host}:{port}/")
    return urls


class Server:
    """A WebSocket server for ``routes``; ``await nursery.start(server.run)``.

    Most programs call :func:`serve`; a ``Server`` also lets them read
    ``statistics()`` and ``await wait_idle()``.
    """

    def __init__(
        self,
        routes: Routes,
        *,
        config: Config = Config(),  # noqa: B008 - frozen, so sharing it is safe
        registry: CollectorRegistry | None = None,
    ) -> None:
        if config.dashboard:
            extra = dashboard_routes(self.statistics)
            taken = sorted(set(extra) & set(routes))
            if taken:
                raise ValueError(f"{', '.join(taken)}: served by wstrio with Config.dashboard on")
            routes = {**routes, **extra}
        self._table = resolve_routes(routes)  # before anything needs a running Trio
        self._admission = Admission(config, registry)
        self._done = trio.Event()
        self._numbers = itertools.count(1)  # each accepted connection's number, for the log

    @property
    def registry(self) -> CollectorRegistry:
        """The ``prometheus_client`` registry ``/metrics`` shows: wstrio's metrics, process
        metrics, and any the application registers in it."""
        return self._admission.registry

    @property
    def config(self) -> Config:
        """The settings every connection of this server runs with."""
        return self._admission.config

    def statistics(self) -> ServerStatistics:
        """Connection and message counts, now and since start."""
        return self._admission.statistics()

    async def wait_idle(self) -> None:
        """Return once no connection (open or handshaking) is left."""
        await self._admission.wait_idle()

    async def run(
        self,
        *,
        host: str | None = "127.0.0.1",
        port: int = 7777,
        ssl_context: ssl.SSLContext | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until cancelled, then shut down gracefully; reports the port.

        ValueError for a port outside 0-65535 (0: any free port), which the OS would
        otherwise take modulo 65536 or replace; OSError if the address cannot be bound.
        """
        check_port(port)
        listeners: list[Any] = list(await trio.open_tcp_listeners(port, host=host))
        if ssl_context is not None:
            listeners = [
                trio.SSLListener(lst, ssl_context, https_compatible=True) for lst in listeners
            ]
        await self.serve_listeners(listeners, task_status=task_status)

    async def serve_listeners(
        self,
        listeners: list[trio.abc.Listener[Any]],
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve connections from ``listeners`` until cancelled (``run`` makes TCP ones)."""
        bound = bound_port(listeners[0])
        try:
            async with trio.open_nursery() as nursery:
                connections = await nursery.start(self._hold_connections)
                for listener in listeners:
                    nursery.start_soon(self._accept, listener, connections)
                for url in listening_urls(listeners):
                    logger.info("listening on %s (HTTP on the same port)", url, extra={"url": url})
                task_status.started(bound)
                try:
                    await trio.sleep_forever()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._shut_down(connections)
        except BaseExceptionGroup as group:  # Ctrl-C, a broken listener: one exception, unwrapped
            raise one_of(group) from None

    async def _accept(self, listener: trio.abc.Listener[Any], connections: trio.Nursery) -> None:
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    if exc.errno not in _ACCEPT_CAN_RETRY:
                        raise
                    logger.error("accept failed (%s); retrying in 0.1 s", exc)
                    await trio.sleep(0.1)
                else:
                    connections.start_soon(self._connection, stream)

    async def _hold_connections(self, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        """Own the (shielded) nursery every connection runs in."""
        async with trio.open_nursery() as nursery:
            nursery.cancel_scope.shield = True
            task_status.started(nursery)
            await self._done.wait()

    async def _shut_down(self, connections: trio.Nursery) -> None:
        """Stop: 1001 to every session, wait for handlers, then cancel the rest."""
        self._admission.stop()
        with trio.move_on_after(self.config.shutdown_timeout + self.config.close_timeout):
            await self.wait_idle()
        connections.cancel_scope.cancel()
        self._done.set()

    async def _connection(self, stream: trio.abc.Stream) -> None:
        peer = peer_address(stream)
        number = next(self._numbers)
        with self._admission.connection(), log_fields(connection=number, peer=address_text(peer)):
            try:
                set_send_buffer(stream, self.config.socket_send_buffer)
                await serve_connection(stream, self._table, self._admission)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                logger.debug("connection lost: %r", exc)  # a reset client: nothing to report
            except Exception:
                logger.exception("wstrio bug while serving a connection (please report)")
            finally:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)


async def serve(
    routes: Routes,
    *,
    host: str | None = "127.0.0.1",
    port: int = 7777,
    config: Config = Config(),  # noqa: B008 - frozen, so sharing it is safe
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve WebSocket ``routes`` until cancelled, then shut down gracefully.

    ``routes`` maps a path (``"/ws/echo"``) to ``async def handler(session)``
    or to a :class:`Route`. With ``nursery.start`` it reports the bound port,
    so ``port=0`` works.
    """
    server = Server(routes, config=config)
    await server.run(host=host, port=port, ssl_context=ssl_context, task_status=task_status)
