"""The handler's view of one connection: :class:`Session`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import attrs
import trio

from .closecodes import QUIET_CODES, Closed, check_close
from .errors import ConnectionClosed, OutboxFull
from .outbox import Outbox
from .transport import ConnectionInfo, Headers, Message, TransportClosed

if TYPE_CHECKING:
    from .._rooms.hub import Room
    from .supervisor import Supervisor


@attrs.frozen
class SessionStatistics:
    """Counters of one session; bytes are payload bytes (UTF-8 for text)."""

    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    inbox_used: int
    inbox_size: int
    outbox_used: int
    outbox_size: int
    drops: int = 0  # broadcasts dropped for this session by a room's slow-consumer policy
    backlog_used: int = 0  # broadcasts waiting beyond the full outbox
    backlog_bytes: int = 0


def check_message(message: object) -> Message:
    if isinstance(message, str | bytes):
        return message
    if isinstance(message, bytearray | memoryview):
        return bytes(message)
    raise TypeError(f"a message is str (text) or bytes (binary), not {type(message).__name__}")


class Session:
    """One WebSocket connection, as a handler sees it.

    Messages are ``str`` (text frames) or ``bytes`` (binary frames). Sending
    never writes to the socket directly: it queues into a bounded outbox that
    the connection's writer task drains. Created by wstrio, never by users.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        info: ConnectionInfo,
        inbox: trio.MemoryReceiveChannel[Message],
        outbox: Outbox,
    ) -> None:
        self._supervisor = supervisor
        self._info = info
        self._inbox = inbox
        self._outbox = outbox.send  # the hot path sends straight into the channel
        self._queue = outbox
        self._latency: float | None = None
        self._query: Mapping[str, str] | None = None
        self._messages_in = 0
        self._messages_out = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._drops = 0
        self._quiet_all = False  # a reconnecting client's session: async for never raises
        self._rooms: set[Room] = set()

    # -- what the handshake carried -------------------------------------------------
    @property
    def path(self) -> str:
        """The request path, without the query string (``"/ws/echo"``)."""
        return self._info.path

    @property
    def query(self) -> Mapping[str, str]:
        """Query parameters; for a repeated name, the first value wins."""
        if self._query is None:
            parsed: dict[str, str] = {}
            for key, value in parse_qsl(self._info.query, keep_blank_values=True):
                parsed.setdefault(key, value)
            self._query = parsed
        return self._query

    @property
    def query_string(self) -> str:
        """The raw query string, without the ``?``."""
        return self._info.query

    @property
    def headers(self) -> Headers:
        """The request headers (case-insensitive ``get`` and ``get_all``)."""
        return self._info.headers

    @property
    def remote(self) -> tuple[str, int] | None:
        """The peer's ``(host, port)``, or None when not on a socket."""
        return self._info.remote

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, if any."""
        return self._info.subprotocol

    @property
    def latency(self) -> float | None:
        """Seconds of the last ping's round trip (None before the first pong)."""
        return self._latency

    @property
    def closed(self) -> Closed | None:
        """How the connection ended, once it has; None while it is open."""
        return self._supervisor.closed

    # -- messages --------------------------------------------------------------------
    def _closed_error(self) -> ConnectionClosed:
        closed = self._supervisor.closed
        if closed is None:  # pragma: no cover - channels close only after a decision
            return ConnectionClosed(1006, "")
        return ConnectionClosed(closed.code, closed.reason)

    async def receive(self) -> Message:
        """The next message; raises ConnectionClosed once the connection has ended."""
        try:
            return await self._inbox.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise self._closed_error() from None

    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self._inbox.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            exc = self._closed_error()
            if exc.code in QUIET_CODES or self._quiet_all:
                raise StopAsyncIteration from None
            raise exc from None

    async def send(self, message: Message) -> None:
        """Queue a message for sending; waits while the outbox is full."""
        if type(message) is not str and type(message) is not bytes:
            message = check_message(message)
        try:
            # Fast path: room in the outbox means no wait. (Not a checkpoint then;
            # the loop that sends yields once the outbox is full.)
            self._outbox.send_nowait(message)
        except trio.WouldBlock:
            try:
                await self._outbox.send(message)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise self._closed_error() from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._closed_error() from None

    def send_nowait(self, message: Message) -> None:
        """Queue a message for sending; raises OutboxFull instead of waiting."""
        message = check_message(message)
        try:
            self._outbox.send_nowait(message)
        except trio.WouldBlock:
            raise OutboxFull(f"outbox full ({self._outbox.statistics().max_buffer_size})") from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._closed_error() from None

    async def ping(self) -> float:
        """Ping the peer and wait for its pong; the round trip in seconds (also ``latency``)."""
        if self.closed is not None:
            raise self._closed_error()
        started = trio.current_time()
        try:
            await self._supervisor.ping()
        except TransportClosed as exc:
            raise ConnectionClosed(exc.code, exc.reason) from None
        self._latency = trio.current_time() - started
        return self._latency

    async def wait_closed(self) -> Closed:
        """Wait until the connection has ended and the close handshake is done; how it closed."""
        await self._supervisor.wire_closed.wait()
        closed = self._supervisor.closed
        assert closed is not None
        return closed

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Flush the outbox, close with ``code`` and ``reason``, wait for the handshake."""
        code, reason = check_close(code, reason)
        await self._supervisor.close_from_handler(code, reason)

    def statistics(self) -> SessionStatistics:
        """Message and byte counters, and how full the queues are."""
        inbox = self._inbox.statistics()
        outbox = self._outbox.statistics()
        return SessionStatistics(
            messages_in=self._messages_in,
            messages_out=self._messages_out,
            bytes_in=self._bytes_in,
            bytes_out=self._bytes_out,
            inbox_used=inbox.current_buffer_used,
            inbox_size=int(inbox.max_buffer_size),
            outbox_used=outbox.current_buffer_used,
            outbox_size=int(outbox.max_buffer_size),
            drops=self._drops,
            backlog_used=len(self._queue.backlog),
            backlog_bytes=self._queue.backlog_bytes,
        )

    @property
    def rooms(self) -> frozenset[Room]:
        """The rooms this session is in; it leaves them all when it ends."""
        return frozenset(self._rooms)

    def _leave_rooms(self) -> None:
        for room in list(self._rooms):
            room.leave(self)

    def __repr__(self) -> str:
        state = "open" if self.closed is None else f"closed {self.closed.code}"
        return f"<wstrio.Session {self.path} {self.remote} {state}>"
