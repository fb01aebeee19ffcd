"""``wstrio.connect``: a client session, supervised exactly like a server one.

Theory of operation
-------------------
A client connection is one *connection task*: it opens the byte stream (TCP,
TLS for ``wss://``, or whatever an ``opener`` gives, such as the test kit's
memory streams), runs the engine's client handshake (h11 for the native engine), and then runs the
same :class:`Supervisor` as the server, whose "handler" is a stand-in that
waits for the caller to be done with the session. The caller's code is the
real handler: when it ends, :meth:`ClientConnection.end_body` turns the way it ended
into an :class:`Ending` (returned: 1000, ``CloseConnection``: its code, an
exception: 1011, cancelled: 1001) and the supervisor closes the connection.

``connect`` runs the connection task in a nursery around the caller's block;
``reconnecting`` runs it as a Trio system task, because an async generator may
not yield inside a nursery (the caller could abandon it mid-iteration).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import h11
import trio

from .._conn.closecodes import Ending
from .._conn.config import Config
from .._conn.errors import (
    CloseConnection,
    ConnectError,
    ConnectionClosed,
    HandshakeRejected,
    InternalError,
    split_group,
)
from .._conn.session import Session
from .._conn.supervisor import Supervisor
from .._conn.transport import Transport
from .._wire.tws import client_transport
from .dial import (
    HeadersLike,
    Opener,
    Options,
    Target,
    make_options,
    open_stream,
    parse_url,
    timeout_error,
    unreachable_error,
)
from .handshake import handshake


class ClientConnection:
    """One client connection: its task, and what the caller waits on."""

    def __init__(self, target: Target, options: Options) -> None:
        self.target = target
        self.options = options
        self.scope = trio.CancelScope()
        self.ready = trio.Event()
        self.finished = trio.Event()
        self.failure: BaseException | None = None  # why no session was opened
        self.error: InternalError | None = None  # a bug in the supervisor
        self.supervisor: Supervisor | None = None
        self._body_done = trio.Event()

    async def opened(self) -> Session:
        """Wait for the handshake; the session, or the reason there is none."""
        try:
            await self.ready.wait()
        except BaseException:
            self.scope.cancel()
            raise
        if self.supervisor is None:
            assert self.failure is not None
            raise self.failure
        return self.supervisor.session

    def end_body(self, exc: BaseException | None) -> None:
        """The caller is done with the session: close it the way its code ended."""
        supervisor = self.supervisor
        if supervisor is not None:
            if isinstance(exc, CloseConnection):
                supervisor.decide(Ending.HANDLER_CLOSED, exc.code, exc.reason)
            elif isinstance(exc, trio.Cancelled) or not isinstance(exc, Exception | None):
                supervisor.decide(Ending.GOING_AWAY)
            elif exc is not None and not isinstance(exc, ConnectionClosed):
                supervisor.decide(Ending.HANDLER_ERROR)
        self._body_done.set()

    async def run(self) -> None:
        """The connection task; it never raises (outcomes are in the attributes)."""
        try:
            with self.scope:
                await self._run()
        except BaseException as exc:  # a task of ours must not crash the caller's nursery
            if split_group(exc, trio.Cancelled)[1] is not None and self.failure is None:
                self.error = InternalError(f"bug in wstrio's client: {exc!r}")
                self.error.__cause__ = exc
        finally:
            if self.failure is None and self.supervisor is None:
                self.failure = self.error or ConnectError(
                    f"connecting to {self.target.url} was cancelled"
                )
            self.ready.set()
            self.finished.set()

    async def _run(self) -> None:
        target, options = self.target, self.options
        config = options.config
        deadline = trio.current_time() + config.handshake_timeout
        stream: trio.abc.Stream | None = None
        with trio.move_on_at(deadline):
            try:
                if options.opener is not None:
                    stream = await options.opener(target)
                else:
                    stream = await open_stream(target, options.ssl_context, options.proxy)
            except ConnectError as exc:  # a proxy's refusal says so itself
                self.failure = exc
                return
            except (OSError, trio.BrokenResourceError) as exc:  # TLS failures are the latter
                self.failure = unreachable_error(target, exc)
                return
        if stream is None:
            self.failure = timeout_error(target, config)
            return
        try:
            async with self._handshake(stream, deadline) as transport:
                if transport is None:
                    return
                self.supervisor = Supervisor(
                    transport, self._wait_for_body, config, quiet=options.quiet
                )
                self.ready.set()
                try:
                    await self.supervisor.run()
                except InternalError as exc:
                    self.error = exc
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    @asynccontextmanager
    async def _handshake(
        self, stream: trio.abc.Stream, deadline: float
    ) -> AsyncIterator[Transport | None]:
        """The configured engine's handshake by ``deadline``: the transport, or None with
        ``failure`` set."""
        target, options = self.target, self.options
        if options.config.engine == "trio-websocket":
            async with client_transport(
                stream,
                target.host_header,
                target.resource,
                subprotocols=options.subprotocols,
                headers=options.headers,
                config=options.config,
                deadline=deadline,
            ) as outcome:
                if outcome.transport is None:
                    self.failure = self._handshake_failure(outcome.failure)
                yield outcome.transport
            return
        transport = None
        with trio.move_on_at(deadline):
            try:
                transport = await handshake(stream, target, options)
            except (HandshakeRejected, ConnectError) as exc:
                self.failure = exc
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.failure = unreachable_error(target, exc)
        if transport is None and self.failure is None:
            self.failure = timeout_error(target, options.config)
        yield transport

    def _handshake_failure(self, failure: Exception | None) -> BaseException:
        if isinstance(failure, HandshakeRejected):
            return failure
        if isinstance(failure, h11.LocalProtocolError):  # trio-websocket's own HTTP state
            return ConnectError(
                f"{self.target.url} answered the handshake with a 101 the trio-websocket engine"
                " refused (usually a subprotocol or extension the client did not offer; the"
                " native engine names it)"
            )
        if failure is not None:
            return ConnectError(f"handshake with {self.target.url} failed: {failure}")
        return timeout_error(self.target, self.options.config)

    async def _wait_for_body(self, session: Session) -> None:
        await self._body_done.wait()


@asynccontextmanager
async def connect(
    url: str,
    *,
    config: Config = Config(),  # noqa: B008 - frozen, so sharing it is safe
    subprotocols: Iterable[str] = (),
    headers: HeadersLike | None = None,
    ssl_context: ssl.SSLContext | None = None,
    opener: Opener | None = None,
    proxy: str | bool | None = True,
) -> AsyncIterator[Session]:
    """Open a WebSocket to ``url``; ``async with connect(url) as session: ...``.

    ``proxy``: an ``http://`` (CONNECT) or ``socks5://`` proxy URL, None for no
    proxy, or True (the default) for the environment's (``https_proxy``,
    ``http_proxy``, ``all_proxy``, ``no_proxy``).

    The session is supervised like a server session (heartbeat, bounded
    queues, the close-code table). Leaving the block closes it: 1000 when the
    block ends, the code of a ``CloseConnection`` it raises, 1011 for any
    other exception (which then propagates, unwrapped). Raises
    :class:`HandshakeRejected`, :class:`ConnectError` (an ``OSError``) or
    :class:`HandshakeTimeout` when no session could be opened.
    """
    options = make_options(config, subprotocols, headers, ssl_context, opener, proxy=proxy)
    client = ClientConnection(parse_url(url), options)
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.run)
        try:
            await client.ready.wait()
        except BaseException as exc:  # cancelled or interrupted while connecting
            client.scope.cancel()
            error = exc
        if client.supervisor is not None and error is None:
            try:
                yield client.supervisor.session
            except BaseException as exc:  # re-raised below, once the close is done
                error = exc
            finally:
                client.end_body(error)
    if error is not None and client.supervisor is None:
        raise error
    if client.supervisor is None:
        assert client.failure is not None
        raise client.failure  # outside the nursery: never wrapped in an ExceptionGroup
    if client.error is not None:
        raise client.error
    if error is not None and not isinstance(error, CloseConnection):
        raise error
