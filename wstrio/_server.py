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
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs
import trio

from ._conn.closecodes import Ending
from ._conn.config import Config
from ._conn.errors import leaves
from ._conn.session import Session
from ._conn.supervisor import Supervisor
from ._http.front import serve_connection
from ._http.routes import Routes, resolve_routes

logger = logging.getLogger("wstrio.server")

#: accept() errors that mean "out of resources for now", not "listener broken".
_ACCEPT_CAN_RETRY = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


@attrs.frozen
class ServerStatistics:
    """What a server is doing now, and has done since it started."""

    open_connections: int  # sessions being supervised
    handshakes: int  # accepted TCP connections not yet (or never) upgraded
    connections_total: int  # sessions supervised since start
    closes_by_code: Mapping[int, int]  # how the finished sessions closed
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    handler_errors: int = 0
    slow_consumer_drops: int = 0  # broadcasts dropped for slow sessions (drop policies)
    slow_consumer_closes: int = 0  # sessions closed with 1008 "slow consumer"
    http_requests: int = 0
    uptime: float = 0.0


class Server:
    """A WebSocket server for ``routes``; ``await nursery.start(server.run)``.

    Most programs call :func:`serve`; a ``Server`` also lets them read
    ``statistics()`` and ``await wait_idle()``.
    """

    def __init__(self, routes: Routes, *, config: Config = Config()) -> None:  # noqa: B008
        self.routes, self.statics = resolve_routes(routes)
        self.config = config
        self.fronts: set[trio.CancelScope] = set()  # connections reading an HTTP request
        self.http_requests = 0
        self.upgrading = 0  # WebSocket handshakes past the front, not yet supervised
        self._finished = [0, 0, 0, 0, 0]  # _counters() summed over ended sessions
        self._handler_errors = 0
        self._slow_closes = 0
        self._started = trio.current_time()
        self.live: set[Supervisor] = set()
        self.stopping = False
        self.active = 0
        self._total = 0
        self._closes: Counter[int] = Counter()
        self._idle_waiters: list[trio.Event] = []
        self.done = trio.Event()
        self.connections: trio.Nursery | None = None

    def statistics(self) -> ServerStatistics:
        """Connection and message counts, now and since start."""
        totals = list(self._finished)
        for supervisor in self.live:
            for i, value in enumerate(_counters(supervisor.session)):
                totals[i] += value
        return ServerStatistics(
            open_connections=len(self.live),
            handshakes=self.active - len(self.live),
            connections_total=self._total,
            closes_by_code=dict(self._closes),
            messages_in=totals[0],
            messages_out=totals[1],
            bytes_in=totals[2],
            bytes_out=totals[3],
            handler_errors=self._handler_errors,
            slow_consumer_drops=totals[4],
            slow_consumer_closes=self._slow_closes,
            http_requests=self.http_requests,
            uptime=trio.current_time() - self._started,
        )

    async def wait_idle(self) -> None:
        """Return once no connection (open or handshaking) is left."""
        if self.active:
            event = trio.Event()
            self._idle_waiters.append(event)
            await event.wait()
        else:
            await trio.lowlevel.checkpoint()

    async def run(
        self,
        *,
        host: str | None = "127.0.0.1",
        port: int = 7777,
        ssl_context: ssl.SSLContext | None = None,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until cancelled, then shut down gracefully; reports the port."""
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
        bound = _bound_port(listeners[0])
        try:
            async with trio.open_nursery() as nursery:
                connections = await nursery.start(self._hold_connections)
                for listener in listeners:
                    nursery.start_soon(self._accept, listener, connections)
                logger.info("listening on port %d", bound)
                task_status.started(bound)
                try:
                    await trio.sleep_forever()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._shut_down()
        except BaseExceptionGroup as group:  # Ctrl-C, a broken listener: one exception, unwrapped
            raise _one_of(group) from None

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
            self.connections = nursery
            task_status.started(nursery)
            await self.done.wait()

    async def _shut_down(self) -> None:
        """Stop: 1001 to every session, wait for handlers, then cancel the rest."""
        self.stopping = True
        for scope in list(self.fronts):
            scope.cancel()  # requests not yet complete: 503 if under way, else close
        for supervisor in list(self.live):
            supervisor.go_away()
        with trio.move_on_after(self.config.shutdown_timeout + self.config.close_timeout):
            await self.wait_idle()
        if self.connections is not None:
            self.connections.cancel_scope.cancel()
        self.done.set()

    async def _connection(self, stream: trio.abc.Stream) -> None:
        self.active += 1
        try:
            _tune_socket(stream, self.config)
            await serve_connection(self, stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            logger.debug("connection lost: %r", exc)  # a reset client: nothing to report
        except Exception:
            logger.exception("wstrio bug while serving a connection (please report)")
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)
            self.active -= 1
            if self.active == 0:
                waiters, self._idle_waiters = self._idle_waiters, []
                for event in waiters:
                    event.set()

    async def supervise(self, supervisor: Supervisor) -> None:
        """Run one session to its end, counted and logged."""
        session = supervisor.session
        started = trio.current_time()
        logger.info("open %s from %s", session.path, _fmt(session.remote))
        self.live.add(supervisor)
        self._total += 1
        try:
            if self.stopping:
                supervisor.go_away()
            closed = await supervisor.run()
        finally:
            self.live.discard(supervisor)
        self._closes[closed.code] += 1
        self._handler_errors += closed.ending is Ending.HANDLER_ERROR
        self._slow_closes += closed.ending is Ending.SLOW_CONSUMER
        for i, value in enumerate(_counters(session)):
            self._finished[i] += value
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


def _one_of(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception a caller should see: KeyboardInterrupt/SystemExit, an error, Cancelled."""
    parts = list(leaves(group))
    fatal = [e for e in parts if not isinstance(e, Exception | trio.Cancelled)]
    errors = [e for e in parts if isinstance(e, Exception)]
    return (fatal or errors or parts)[0]


def _tune_socket(stream: trio.abc.Stream, config: Config) -> None:
    if config.socket_send_buffer is None:
        return
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        try:
            stream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, config.socket_send_buffer)
        except OSError as exc:  # the peer may be gone already
            logger.debug("cannot set SO_SNDBUF: %s", exc)


def _counters(session: Session) -> tuple[int, int, int, int, int]:
    """Messages in/out, bytes in/out and slow-consumer drops of one session."""
    return (
        session._messages_in,
        session._messages_out,
        session._bytes_in,
        session._bytes_out,
        session._drops,
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
    server = Server(routes, config=config)
    await server.run(host=host, port=port, ssl_context=ssl_context, task_status=task_status)


def _bound_port(listener: Any) -> int:
    """The TCP port a listener is bound to; 0 for one that is not on a socket."""
    if isinstance(listener, trio.SSLListener):
        listener = listener.transport_listener
    if isinstance(listener, trio.SocketListener):
        return int(listener.socket.getsockname()[1])
    return 0
