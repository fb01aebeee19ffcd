"""The Transport over trio-websocket's public API (our protocol engine).

Only public names of trio-websocket are used here: ``wrap_server_stream``,
``WebSocketRequest.accept/reject`` and the ``WebSocketConnection`` methods.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import struct
from collections.abc import Awaitable, Callable

import trio
import trio_websocket

from .._conn.closecodes import Ending
from .._conn.transport import ConnectionInfo, Message, TransportClosed

logger = logging.getLogger("wstrio.engine")

#: trio-websocket closes with this reason when a message exceeds its limit.
_TOO_BIG_PREFIX = "Exceeded maximum message size"
_PARSE_FAILED_CODES = frozenset({1002, 1007})


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


def _short(reason: str) -> bytes:
    """A close reason cut to fit a control frame (123 bytes), on a UTF-8 boundary."""
    return reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")


def short_frame(first_byte: int, payload: bytes, *, mask: bytes | None = None) -> bytes:
    """A frame of at most 125 payload bytes (FIN/opcode in ``first_byte``), masked if ``mask``."""
    if mask is None:
        return bytes((first_byte, len(payload))) + payload
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes((first_byte, 0x80 | len(payload))) + mask + masked


class GuardedNursery:
    """What trio-websocket gets instead of a nursery: it starts the engine's
    reader task so that an error inside trio-websocket (for example wsproto
    refusing to answer a ping that crossed our close frame) drops this
    connection's socket instead of tearing down the connection's task tree.

    A client passes ``on_failure`` (told of a rejected handshake, an error, or
    the reader ending at EOF) and ``shield=True`` (so the reader still reads the
    close reply when the caller is cancelled; it then calls :meth:`cancel`)."""

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
        # shield: the reader keeps reading (the peer's close reply) when the
        # caller is cancelled; whoever made this nursery must call cancel().
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
    """A :class:`~wstrio._transport.Transport` over a trio-websocket connection."""

    def __init__(
        self,
        ws: trio_websocket.WebSocketConnection,
        stream: trio.abc.Stream,
        info: ConnectionInfo,
        *,
        client: bool = False,
    ) -> None:
        self._ws = ws
        self._stream = stream
        self._info = info
        self._client = client
        self._ping_ids = itertools.count()

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    async def receive(self) -> Message:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise closed_from_engine(exc) from None

    async def send(self, message: Message) -> None:
        try:
            await self._ws.send_message(message)
        except trio_websocket.ConnectionClosed as exc:
            raise closed_from_engine(exc) from None

    async def ping(self) -> None:
        payload = struct.pack("!Q", next(self._ping_ids))
        try:
            await self._ws.ping(payload)
        except trio_websocket.ConnectionClosed as exc:
            raise closed_from_engine(exc) from None

    async def close(self, code: int, reason: str) -> TransportClosed | None:
        earlier = self._ws.closed
        if earlier is None:
            await self._ws.aclose(code, reason or None)
            after = self._ws.closed
            if after is not None and after.code == 1006:  # the stream broke: no close frame
                return closed_from_engine(trio_websocket.ConnectionClosed(after))
            return None
        ended = closed_from_engine(trio_websocket.ConnectionClosed(earlier))
        if ended.ending is Ending.PROTOCOL_ERROR:
            # trio-websocket gave up without telling the peer: send the close
            # frame it did not (RFC 6455 5.1: a client masks, a server does not).
            payload = struct.pack("!H", ended.code) + _short(ended.reason)
            frame = short_frame(0x88, payload, mask=os.urandom(4) if self._client else None)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._stream.send_all(frame)
        return ended

    async def abort(self) -> None:
        await trio.aclose_forcefully(self._stream)
