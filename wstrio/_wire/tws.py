"""The trio-websocket engine: a :class:`Transport` over trio-websocket's public API.

Theory of operation: the HTTP front has already read the upgrade request with
h11; :func:`server_transport` replays those bytes into trio-websocket's
``wrap_server_stream`` (:class:`ReplayStream`, which also times frames for
``frame_timeout``), which parses them again and answers 101.
:func:`client_transport` runs ``wrap_client_stream``. Either way
trio-websocket starts its own reader task, which runs in a
:class:`GuardedNursery` so that an error inside the engine drops this one
connection's socket instead of tearing down the connection's task tree. Only
public names of trio-websocket are used.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import attrs
import trio
import trio_websocket

from .._conn.closecodes import Ending
from .._conn.config import Config
from .._conn.errors import HandshakeRejected
from .._conn.headers import Headers
from .._conn.logfields import get_logger
from .._conn.outbox import unwrap
from .._conn.transport import ConnectionInfo, Message, Outgoing, TransportClosed
from .frames import close_frame
from .replay import ReplayStream
from .streams import peer_address

logger = get_logger("wstrio.engine")

#: trio-websocket closes with this reason when a message exceeds its limit.
_TOO_BIG_PREFIX = "Exceeded maximum message size"
_PARSE_FAILED_CODES = frozenset({1002, 1007})
_FRAME_TIMEOUT = TransportClosed(Ending.FRAME_TIMEOUT, 1008, "frame timeout")


def closed_from_engine(exc: trio_websocket.ConnectionClosed) -> TransportClosed:
    """Translate trio-websocket's ConnectionClosed into our ending vocabulary."""
    reason = exc.reason
    if reason is None:  # the engine dropped the stream after a protocol error
        return TransportClosed(Ending.PROTOCOL_ERROR, 1002, "protocol error")
    text = reason.reason or ""
    if reason.code == 1006:
        return TransportClosed(Ending.PEER_VANISHED, 1006, text)
    if reason.code == 1009 and text.startswith(_TOO_BIG_PREFIX):
        return TransportClosed(Ending.MESSAGE_TOO_BIG, 1009, text)
    if reason.code in _PARSE_FAILED_CODES:
        # wsproto turns a frame it cannot parse into a close event with 1002/1007
        # and trio-websocket then drops TCP without a close frame; a peer's own
        # 1002/1007 close is reported the same way (the code is right either way).
        return TransportClosed(Ending.PROTOCOL_ERROR, reason.code, text)
    return TransportClosed(Ending.PEER_CLOSED, reason.code, text)


class GuardedNursery:
    """What trio-websocket gets instead of a nursery: it starts the engine's
    reader task so that an error inside trio-websocket (for example wsproto
    refusing to answer a ping that crossed our close frame) drops this
    connection's socket instead of tearing down the connection's task tree.

    A client passes ``on_failure`` (told of a rejected handshake, an error, or
    the reader ending at EOF) and ``shield=True``: the reader keeps reading
    (the peer's close reply) when the caller is cancelled, so whoever made the
    nursery must call :meth:`cancel`."""

    def __init__(
        self,
        nursery: trio.Nursery,
        stream: trio.abc.Stream,
        on_failure: Callable[[Exception], object] | None = None,
        *,
        shield: bool = False,
    ) -> None:
        self._nursery = nursery
        self._stream = stream
        self._on_failure = on_failure
        self._shield = shield
        self._scopes: list[trio.CancelScope] = []

    def cancel(self) -> None:
        """Stop the tasks started here (needed when they are shielded)."""
        for scope in self._scopes:
            scope.cancel()

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        self._nursery.start_soon(self._guard, fn, *args)

    async def _guard(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        scope = trio.CancelScope(shield=self._shield)
        self._scopes.append(scope)
        try:
            with scope:
                await fn(*args)
        except Exception as exc:
            if self._on_failure is not None:
                self._on_failure(exc)
            else:
                logger.warning("trio-websocket failed on a connection; dropping it: %r", exc)
            await trio.aclose_forcefully(self._stream)
        else:  # the reader ended: EOF or reset (during a handshake: a failure)
            if self._on_failure is not None:
                self._on_failure(trio.BrokenResourceError("the server closed the connection"))


class EngineTransport:
    """A :class:`~wstrio._conn.transport.Transport` over a trio-websocket connection."""

    def __init__(
        self,
        ws: trio_websocket.WebSocketConnection,
        stream: trio.abc.Stream,
        info: ConnectionInfo,
        *,
        client: bool = False,
        replay: ReplayStream | None = None,
    ) -> None:
        self._ws = ws
        self._stream = stream
        self._info = info
        self._client = client
        self._replay = replay  # a server's: it says whether a frame timed out
        self._ping_ids = itertools.count()

    def _closed(self, exc: trio_websocket.ConnectionClosed) -> TransportClosed:
        if self._replay is not None and self._replay.timed_out:
            return _FRAME_TIMEOUT  # the engine saw a broken stream; the peer was too slow
        return closed_from_engine(exc)

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    async def receive(self) -> Message:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def send(self, message: Message) -> None:
        try:
            await self._ws.send_message(message)
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def send_many(self, messages: Sequence[Outgoing]) -> None:
        for message in messages:  # trio-websocket writes each message under its own lock
            await self.send(unwrap(message))

    @property
    def writes_now(self) -> bool:
        return False

    def write_now(self, message: Outgoing) -> bool:
        return False  # trio-websocket writes only from a task

    def set_writer_wakeup(self, wake: Callable[[], None]) -> None:
        pass  # trio-websocket writes its control frames itself

    async def ping(self) -> None:
        payload = struct.pack("!Q", next(self._ping_ids))
        try:
            await self._ws.ping(payload)
        except trio_websocket.ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def close(self, code: int, reason: str) -> TransportClosed | None:
        earlier = self._ws.closed
        if earlier is None:
            await self._ws.aclose(code, reason or None)
            after = self._ws.closed
            if after is not None and after.code == 1006:  # the stream broke: no close frame
                return self._closed(trio_websocket.ConnectionClosed(after))
            return None
        ended = self._closed(trio_websocket.ConnectionClosed(earlier))
        if ended.ending in (Ending.PROTOCOL_ERROR, Ending.FRAME_TIMEOUT):
            # trio-websocket gave up without telling the peer: send the close
            # frame it did not (RFC 6455 5.1: a client masks, a server does not).
            frame = close_frame(
                ended.code, ended.reason, mask=os.urandom(4) if self._client else None
            )
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._stream.send_all(frame)
        return ended

    async def abort(self) -> None:
        await trio.aclose_forcefully(self._stream)


@contextlib.asynccontextmanager
async def server_transport(
    stream: trio.abc.Stream,
    request: bytes,
    received: bytes,
    info: ConnectionInfo,
    config: Config,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> AsyncIterator[EngineTransport | None]:
    """Answer the upgrade ``request`` (its head's raw bytes; ``received``: what came after
    it) with 101, with ``info.subprotocol`` and ``extra_headers``; the transport while the
    block runs, or None if the handshake did not finish within ``handshake_timeout``."""
    replay = ReplayStream(stream, request, received, timeout=config.frame_timeout)
    async with trio.open_nursery() as engine:
        ws_request = None
        with trio.move_on_after(config.handshake_timeout):
            ws_request = await trio_websocket.wrap_server_stream(
                GuardedNursery(engine, stream),  # type: ignore[arg-type]
                replay,
                message_queue_size=1,
                max_message_size=config.max_message_size,
                receive_buffer_size=config.receive_buffer_size,
            )
        if ws_request is None:
            engine.cancel_scope.cancel()
            yield None
            return
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra_headers]
        ws = await ws_request.accept(subprotocol=info.subprotocol, extra_headers=extra)
        yield EngineTransport(ws, stream, info, replay=replay)
        engine.cancel_scope.cancel()


@attrs.frozen
class ClientHandshake:
    """How a client handshake went: ``transport``, or ``failure`` (None with no
    transport: it timed out). A refusal is a :class:`HandshakeRejected`."""

    transport: EngineTransport | None = None
    failure: Exception | None = None


@contextlib.asynccontextmanager
async def client_transport(
    stream: trio.abc.Stream,
    host_header: str,
    resource: str,
    *,
    subprotocols: tuple[str, ...],
    headers: tuple[tuple[str, str], ...],
    config: Config,
    deadline: float,
) -> AsyncIterator[ClientHandshake]:
    """Run the client handshake by ``deadline``; the outcome while the block runs."""
    async with trio.open_nursery() as engine:
        failures: list[Exception] = []
        handshake = trio.CancelScope(deadline=deadline)

        def failed(exc: Exception) -> None:
            failures.append(exc)
            handshake.cancel()

        # Shielded: when the caller is cancelled, the engine's reader must
        # still read the server's close reply while the supervisor closes.
        guard = GuardedNursery(engine, stream, on_failure=failed, shield=True)
        try:
            with handshake:
                ws = await trio_websocket.wrap_client_stream(
                    guard,  # type: ignore[arg-type]
                    stream,  # type: ignore[arg-type]
                    host_header,
                    resource,
                    subprotocols=list(subprotocols) or None,
                    extra_headers=[(k.encode(), v.encode()) for k, v in headers] or None,
                    message_queue_size=1,
                    max_message_size=config.max_message_size,
                    receive_buffer_size=config.receive_buffer_size,
                )
            if handshake.cancelled_caught:
                yield ClientHandshake(failure=_client_failure(failures))
            else:
                path, _, query = resource.partition("?")
                pairs = tuple(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in ws.handshake_headers
                )
                info = ConnectionInfo(
                    path, query, Headers(pairs), peer_address(stream), ws.subprotocol
                )
                yield ClientHandshake(EngineTransport(ws, stream, info, client=True))
        finally:
            guard.cancel()
            engine.cancel_scope.cancel()


def _client_failure(failures: list[Exception]) -> Exception | None:
    if failures and isinstance(failures[0], trio_websocket.ConnectionRejected):
        rejected = failures[0]
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in rejected.headers]
        return HandshakeRejected(rejected.status_code, pairs, rejected.body or b"")
    return failures[0] if failures else None
