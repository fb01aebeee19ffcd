"""``wstrio.serve``: listen, hand each connection to a supervisor, stop gracefully.

Theory of operation: connections run in a nursery whose cancel scope is
shielded, so cancelling ``serve`` does not kill them mid-frame. Instead the
accept loop stops, every live supervisor is told to go away (1001) and the
server waits, bounded by ``shutdown_timeout + close_timeout``, before it
cancels whatever is left. Nothing a peer or a handler does escapes a
connection's task: the server keeps serving everyone else.
"""

from __future__ import annotations

import functools
import logging
import ssl
from typing import Any

import trio
import trio_websocket

from ._config import Config
from ._engine import EngineTransport
from ._routes import Route, Routes, resolve_routes
from ._supervisor import Supervisor
from ._transport import ConnectionInfo, Headers

logger = logging.getLogger("wstrio.server")


def _peer_address(stream: trio.abc.Stream) -> tuple[str, int] | None:
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        try:
            host, port, *_ = stream.socket.getpeername()
        except OSError:
            return None
        return str(host), int(port)
    return None


class _Server:
    def __init__(self, routes: dict[str, Route], config: Config) -> None:
        self.routes = routes
        self.config = config
        self.live: set[Supervisor] = set()
        self.stopping = False
        self.active = 0
        self.idle = trio.Event()
        self.done = trio.Event()
        self.connections: trio.Nursery | None = None

    async def hold_connections(self, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        """Own the (shielded) nursery every connection runs in."""
        async with trio.open_nursery() as nursery:
            nursery.cancel_scope.shield = True
            self.connections = nursery
            task_status.started(nursery)
            await self.done.wait()

    async def shut_down(self) -> None:
        """Stop: 1001 to every session, wait for handlers, then cancel the rest."""
        self.stopping = True
        for supervisor in list(self.live):
            supervisor.go_away()
        if self.active:
            with trio.move_on_after(self.config.shutdown_timeout + self.config.close_timeout):
                await self.idle.wait()
        if self.connections is not None:
            self.connections.cancel_scope.cancel()
        self.done.set()

    async def connection(self, stream: trio.abc.Stream) -> None:
        self.active += 1
        try:
            await self._connection(stream)
        except Exception:
            logger.exception("wstrio bug while serving a connection (please report)")
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            self.active -= 1
            if self.stopping and self.active == 0:
                self.idle.set()

    async def _connection(self, stream: trio.abc.Stream) -> None:
        config = self.config
        async with trio.open_nursery() as engine:
            request = None
            with trio.move_on_after(config.handshake_timeout):
                request = await trio_websocket.wrap_server_stream(
                    engine,
                    stream,
                    message_queue_size=1,
                    max_message_size=config.max_message_size,
                    receive_buffer_size=config.receive_buffer_size,
                )
            if request is None:
                engine.cancel_scope.cancel()
                return
            path, _, query = request.path.partition("?")
            route = self.routes.get(path)
            if route is None or self.stopping:
                status, body = (503, b"server shutting down\n") if route else (404, b"not found\n")
                with trio.move_on_after(config.close_timeout):
                    await request.reject(status, body=body)
                engine.cancel_scope.cancel()
                return
            subprotocol = route.choose_subprotocol(request.proposed_subprotocols)
            ws = await request.accept(subprotocol=subprotocol)
            info = ConnectionInfo(
                path=path,
                query=query,
                headers=Headers(
                    tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers)
                ),
                remote=_peer_address(stream),
                subprotocol=subprotocol,
            )
            supervisor = Supervisor(
                EngineTransport(ws, stream, info),
                route.handler,
                config,
                accepts=route.accepted_type,
            )
            await self._supervise(supervisor)
            engine.cancel_scope.cancel()

    async def _supervise(self, supervisor: Supervisor) -> None:
        session = supervisor.session
        started = trio.current_time()
        logger.info("open %s from %s", session.path, _fmt(session.remote))
        self.live.add(supervisor)
        try:
            if self.stopping:
                supervisor.go_away()
            closed = await supervisor.run()
        finally:
            self.live.discard(supervisor)
        logger.info(
            "close %s from %s: %d %s (%s%s) after %.3fs",
            session.path,
            _fmt(session.remote),
            closed.code,
            closed.reason or "-",
            closed.ending.value,
            ", aborted" if closed.aborted else "",
            trio.current_time() - started,
        )


def _fmt(remote: tuple[str, int] | None) -> str:
    return f"{remote[0]}:{remote[1]}" if remote else "?"


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
    server = _Server(resolve_routes(routes), config)
    listeners: list[Any] = list(await trio.open_tcp_listeners(port, host=host))
    if ssl_context is not None:
        listeners = [trio.SSLListener(lst, ssl_context, https_compatible=True) for lst in listeners]
    bound = _bound_port(listeners[0])
    async with trio.open_nursery() as nursery:
        connections = await nursery.start(server.hold_connections)
        await nursery.start(
            functools.partial(
                trio.serve_listeners, server.connection, listeners, handler_nursery=connections
            )
        )
        logger.info("listening on port %d", bound)
        task_status.started(bound)
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await server.shut_down()


def _bound_port(listener: Any) -> int:
    if isinstance(listener, trio.SSLListener):
        listener = listener.transport_listener
    return int(listener.socket.getsockname()[1])
