"""The handler's view of one connection: :class:`Session`.

A session sees the supervisor that runs it only as a narrow :class:`Control`
(how the connection ended, a ping, a close); it also holds its inbox and the
:class:`Mailbox` it shares with the writer and with rooms.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl

import trio

from .closecodes import QUIET_CODES, Closed, check_close
from .control import Control
from .errors import ConnectionClosed, InvalidJSON, OutboxFull, UnexpectedMessageType
from .headers import Headers
from .outbox import Mailbox
from .request import QueryParams, Request
from .stats import SessionStatistics
from .transport import ConnectionInfo, Message, TransportClosed, check_message


class RoomLike(Protocol):
    """A room as a session lists it: ``wstrio.Room``'s public surface (this layer cannot
    name ``Room`` itself, which sits above it)."""

    name: str

    @property
    def policy(self) -> str: ...

    @property
    def members(self) -> tuple[Session, ...]: ...

    def __len__(self) -> int: ...

    def __contains__(self, session: object) -> bool: ...

    def join(self, session: Session) -> None: ...

    def leave(self, session: Session) -> None: ...

    def broadcast(
        self, message: Message, *, exclude: Session | Iterable[Session] | None = None
    ) -> int: ...

    def statistics(self) -> Any: ...  # a wstrio.RoomStatistics


class Session:
    """One WebSocket connection, as a handler sees it.

    Messages are ``str`` (text frames) or ``bytes`` (binary frames). Sending
    never writes to the socket directly: it queues into a bounded outbox that
    the connection's writer task drains. Created by wstrio, never by users.
    """

    def __init__(
        self,
        control: Control,
        info: ConnectionInfo,
        inbox: trio.MemoryReceiveChannel[Message],
        mailbox: Mailbox,
        *,
        quiet: bool = False,
        state: dict[str, Any] | None = None,
    ) -> None:
        self._control = control
        self._info = info
        self._inbox = inbox
        self._mailbox = mailbox
        self._outbox = mailbox.outbox
        self._channel = mailbox.outbox.send
        self._counters = mailbox.counters
        self._query: Mapping[str, str] | None = None
        self._quiet = quiet  # a reconnecting client's session: async for never raises
        self._request: Request | None = info.request
        self._state: dict[str, Any] = state if state is not None else {}

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
    def request(self) -> Request:
        """The opening handshake as a :class:`Request` (the value the route's hook saw; on a
        client, what it sent)."""
        if self._request is None:
            info = self._info
            self._request = Request(
                path=info.path,
                query=QueryParams.parse(info.query),
                headers=info.headers,
                remote=info.remote,
            )
        return self._request

    @property
    def state(self) -> dict[str, Any]:
        """Per-session state for the application: a plain dict, seeded by the handshake
        hook's ``Accept(state=...)``; wstrio never reads it."""
        return self._state

    @property
    def params(self) -> Mapping[str, str]:
        """The path parameters of the route pattern (``{"room": "lobby"}`` for ``/c/{room}``)."""
        return self.request.params

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, if any."""
        return self._info.subprotocol

    @property
    def latency(self) -> float | None:
        """Seconds of the last ping's round trip (None before the first pong)."""
        return self._counters.latency

    @property
    def closed(self) -> Closed | None:
        """How the connection ended, once it has; None while it is open."""
        return self._control.closed

    # -- messages --------------------------------------------------------------------
    def _closed_error(self) -> ConnectionClosed:
        closed = self._control.closed
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
            if exc.code in QUIET_CODES or self._quiet:
                raise StopAsyncIteration from None
            raise exc from None

    async def send(self, message: Message) -> None:
        """Queue a message for sending; waits while the outbox is full."""
        if type(message) is not bytes and (type(message) is not str or not message.isascii()):
            message = check_message(message)
        outbox = self._outbox
        try:
            # Fast path: room in the outbox means no wait. (Not a checkpoint then;
            # the loop that sends yields once the outbox is full.) Never the direct
            # write: a loop of sends to a fast peer would then never yield.
            outbox.queue_nowait(message)
        except trio.WouldBlock:
            try:
                await outbox.queue(message)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise self._closed_error() from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._closed_error() from None

    def send_nowait(self, message: Message) -> None:
        """Queue a message for sending; raises OutboxFull instead of waiting."""
        message = check_message(message)
        try:
            self._outbox.put_nowait(message)
        except trio.WouldBlock:
            raise OutboxFull(
                f"outbox full ({self._channel.statistics().max_buffer_size})"
            ) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._closed_error() from None

    async def receive_text(self) -> str:
        """The next message, which must be text; UnexpectedMessageType (a TypeError) for a
        binary one, ConnectionClosed once the connection has ended."""
        message = await self.receive()
        if not isinstance(message, str):
            raise UnexpectedMessageType("text", message)
        return message

    async def receive_bytes(self) -> bytes:
        """The next message, which must be binary; UnexpectedMessageType for a text one."""
        message = await self.receive()
        if not isinstance(message, bytes):
            raise UnexpectedMessageType("binary", message)
        return message

    async def receive_json(self) -> Any:
        """The next message, a text message parsed as JSON; InvalidJSON (a ValueError) if it
        is not JSON, UnexpectedMessageType for a binary message."""
        text = await self.receive_text()
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidJSON(text, exc) from None

    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` as a JSON text message (compact separators); TypeError if it is not
        JSON-serialisable (nothing is sent then)."""
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates (from a peer's "\ud800"): escaped
                text = json.dumps(obj, separators=(",", ":"))
        await self.send(text)

    async def ping(self) -> float:
        """Ping the peer and wait for its pong; the round trip in seconds (also ``latency``)."""
        if self.closed is not None:
            raise self._closed_error()
        started = trio.current_time()
        try:
            await self._control.ping()
        except TransportClosed as exc:
            raise ConnectionClosed(exc.code, exc.reason) from None
        latency = self._counters.latency = trio.current_time() - started
        return latency

    async def wait_closed(self) -> Closed:
        """Wait until the connection has ended and the close handshake is done; how it closed."""
        await self._control.wire_closed.wait()
        closed = self._control.closed
        assert closed is not None
        return closed

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Flush the outbox, close with ``code`` and ``reason``, wait for the handshake."""
        code, reason = check_close(code, reason)
        await self._control.close(code, reason)

    def statistics(self) -> SessionStatistics:
        """Message and byte counters, and how full the queues are."""
        inbox = self._inbox.statistics()
        outbox = self._channel.statistics()
        counters = self._counters
        return SessionStatistics(
            messages_in=counters.messages_in,
            messages_out=counters.messages_out,
            bytes_in=counters.bytes_in,
            bytes_out=counters.bytes_out,
            inbox_used=inbox.current_buffer_used,
            inbox_size=int(inbox.max_buffer_size),
            outbox_used=outbox.current_buffer_used,
            outbox_size=int(outbox.max_buffer_size),
            drops=counters.drops,
            backlog_used=len(self._mailbox.outbox.backlog),
            backlog_bytes=self._mailbox.outbox.backlog_bytes,
            rate_limited=counters.rate_limited,
        )

    @property
    def rooms(self) -> frozenset[RoomLike]:
        """The rooms (``wstrio.Room``) this session is in; it leaves them all when it ends."""
        return frozenset(cast(RoomLike, room) for room in self._mailbox.rooms)

    def __repr__(self) -> str:
        state = "open" if self.closed is None else f"closed {self.closed.code}"
        return f"<wstrio.Session {self.path} {self.remote} {state}>"


#: A WebSocket handler: ``async def handler(session)``.
Handler = Callable[[Session], Awaitable[object]]


def mailbox_of(session: Session) -> Mailbox:
    """The mailbox a room uses to queue for ``session`` (rooms never see its supervisor)."""
    return session._mailbox
