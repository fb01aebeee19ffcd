"""``wstrio.serve``: listen, hand each connection to a supervisor, stop gracefully.

Theory of operation: connections run in a nursery whose cancel scope is
shielded, so cancelling ``serve`` does not kill them mid-frame. Instead the
accept loop stops, every live supervisor is told to go away (1001) and the
server waits, bounded by ``shutdown_timeout + close_timeout``, before it
cancels whatever is left. ``Server.stop`` does the same without a
cancellation, and can say 1012 (service restart) instead: the accept loops
end first, so a worker that retires during a rolling restart takes no new
connection from the socket it shares with its successor. Nothing a peer or a
handler does escapes a connection's task: the server keeps serving everyone
else.
"""

from __future__ import annotations

import errno
import itertools
import socket
import ssl
from collections.abc import Callable, Sequence
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
from ._wire.streams import (
    address_text,
    bound_port,
    peer_address,
    set_keepalive,
    set_send_buffer,
    socket_of,
)

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
        self._stop_requested = trio.Event()
        self._restart = False
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

    def add_health_check(self, check: Callable[[], str | None]) -> None:
        """Have ``/healthz`` ask ``check()`` at each request: None while the dependency it
        watches is fine, else a one-line reason (say ``"redis: connection refused"``).

        While any check gives a reason, ``/healthz`` answers HTTP 200 with ``"status":
        "degraded"`` and ``"reasons": [...]`` (a degraded server still serves its local
        traffic); a stopping server answers 503 ``"stopping"`` whatever its checks say. A
        check runs in the server's Trio thread, so it must return at once (report a state
        kept up to date elsewhere, never do I/O); one that raises counts as a reason and its
        traceback is logged.
        """
        self._admission.health.checks.append(check)

    def stop(self, *, restart: bool = False) -> None:
        """Stop serving and make :meth:`run` return: stop accepting, close every session
        with 1001 (going away) or, with ``restart``, 1012 (service restart: clients should
        reconnect, to the server that replaces this one), give handlers ``shutdown_timeout``
        seconds, then cancel what is left.

        Cancelling ``run`` stops the same way, with 1001. Before ``run`` started, it makes
        ``run`` stop as soon as it has started; after the first call, later ones change
        nothing. A restart serves the requests of connections accepted just before it (an
        upgrade then gets its 101, then 1012) instead of refusing them.
        """
        if not self._stop_requested.is_set():
            self._restart = restart
            self._stop_requested.set()

    async def run(
        self,
        *,
        host: str | None = "127.0.0.1",
        port: int = 7777,
        ssl_context: ssl.SSLContext | None = None,
        sockets: Sequence[socket.socket] | None = None,
        worker: int | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until cancelled or :meth:`stop`, then shut down gracefully;
        reports the port.

        ``sockets``: listening TCP sockets, already bound, to serve instead of binding
        ``host`` and ``port`` (the server closes its handles to them when it stops; other
        processes sharing them keep theirs). ``worker``: the number ``/healthz`` and
        ``/metrics`` report (``"worker": N``, a ``worker`` label); ``serve_workers`` sets it.

        ValueError for a port outside 0-65535 (0: any free port), which the OS would
        otherwise take modulo 65536 or replace, or for a socket that is not a listening
        TCP socket; OSError if the address cannot be bound.
        """
        listeners: list[Any]
        if sockets is None:
            check_port(port)
            listeners = list(await trio.open_tcp_listeners(port, host=host))
        else:
            listeners = [_listener_of(sock) for sock in sockets]
            if not listeners:
                raise ValueError("sockets: give at least one listening socket, or None")
        self._admission.health.worker = worker
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
        """Serve connections from ``listeners`` until cancelled or :meth:`stop` (``run`` makes
        TCP ones)."""
        bound = bound_port(listeners[0])
        try:
            async with trio.open_nursery() as nursery:
                connections = await nursery.start(self._hold_connections)
                try:
                    async with trio.open_nursery() as accepting:
                        for listener in listeners:
                            accepting.start_soon(self._accept, listener, connections)
                        for url in listening_urls(listeners):
                            logger.info(
                                "listening on %s (HTTP on the same port)", url, extra={"url": url}
                            )
                        task_status.started(bound)
                        await self._stop_requested.wait()
                        accepting.cancel_scope.cancel()  # no new connection from here on
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
        """Stop: 1001 (1012 for a restart) to every session, wait for handlers, then cancel
        the rest."""
        self._admission.stop(restart=self._restart)
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
                set_keepalive(stream, self.config.tcp_keepalive)
                await serve_connection(stream, self._table, self._admission)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                logger.debug("connection lost: %r", exc)  # a reset client: nothing to report
            except Exception:
                logger.exception("wstrio bug while serving a connection (please report)")
            finally:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)


def _listener_of(sock: socket.socket) -> trio.SocketListener:
    """A trio listener on a listening TCP socket bound elsewhere (closed when it is)."""
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_ACCEPTCONN
    ):
        raise ValueError(f"not a listening TCP socket: {sock!r}")
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


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
