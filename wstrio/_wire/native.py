"""wstrio's own engine: a :class:`Transport` over the ``websockets`` package's sans-I/O core.

Theory of operation
-------------------
The opening handshake is done before this object exists (by the HTTP front's
h11 on a server, by the client's on a client); what h11 read past the
handshake is fed in first. From then on there is no engine task:

* the connection's *reader* calls :meth:`NativeTransport.receive`, which reads
  the socket (``receive_buffer_size`` bytes at a time), feeds the sans-I/O
  ``Protocol`` and assembles whole messages (text validated as UTF-8 frame by
  frame, so bad data fails fast with 1007);
* the connection's *writer* calls :meth:`send_many`, which frames every queued
  message and writes them with any waiting control frame in one ``send_all``,
  control frames first. A pong (or a ping from the heartbeat) that arrives
  while the writer is idle wakes it (``set_writer_wakeup``); the writer is the
  only task that writes until the connection's ending is decided;
* a peer's close frame is echoed through the writer too (and no data after
  it); the reader reports the ending once the echo is out;
* after a decision the closer calls :meth:`close`, which writes our close
  frame and reads until the peer's (the reader has stopped by then). Pings
  that cross our close frame are not answered (RFC 6455 5.5.2 allows it).
"""

from __future__ import annotations

import codecs
import itertools
import logging
import struct
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

import trio
from websockets.exceptions import PayloadTooBig
from websockets.frames import BINARY, CLOSE, CONT, PONG, TEXT, Frame
from websockets.protocol import OPEN, Protocol, Side

from .._conn.closecodes import Ending
from .._conn.config import Config
from .._conn.transport import ConnectionInfo, Message, TransportClosed

_EXPECTED_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError)


class _QuietLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The sans-I/O core's log: only warnings and worse reach ``wstrio.engine``."""

    def isEnabledFor(self, level: int) -> bool:
        return level >= logging.WARNING and self.logger.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING:
            super().log(level, msg, *args, **kwargs)


_LOG = _QuietLog(logging.getLogger("wstrio.engine"), {})


class NativeTransport:
    """One open WebSocket connection on the sans-I/O core (server or client side)."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        info: ConnectionInfo,
        config: Config,
        *,
        client: bool = False,
        received: bytes = b"",
    ) -> None:
        self._stream = stream
        self._info = info
        side = Side.CLIENT if client else Side.SERVER
        self._proto = Protocol(side, max_size=config.max_message_size, logger=_LOG)
        self._bufsize = config.receive_buffer_size
        self._messages: deque[Message] = deque()
        self._parts: list[Any] = []  # fragments of the message being received
        self._decoder: codecs.IncrementalDecoder | None = None  # set while it is text
        self._control: list[bytes] = []  # frames for the writer to send first
        self._wake: Callable[[], None] = _nothing
        self._echoed: trio.Event | None = None  # set once the peer's close is echoed
        self._pings: dict[bytes, trio.Event] = {}
        self._ping_ids = itertools.count()
        self._ended: TransportClosed | None = None
        self._failed: list[bytes] = []  # the close frame the core made when it failed us
        self._close_sent = False
        self._reading = False
        self._read_done = trio.Event()
        if received:
            self._proto.receive_data(received)
            self._take_events()

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    # -- reading ---------------------------------------------------------------------
    async def receive(self) -> Message:
        while not self._messages:
            if self._ended is not None:
                if self._echoed is not None:
                    await self._echoed.wait()  # the writer sends the echo first
                raise self._ended
            await self._read()
        return self._messages.popleft()

    async def _read(self) -> None:
        self._reading = True
        try:
            data = await self._stream.receive_some(self._bufsize)
        except _EXPECTED_ERRORS:
            data = b""  # a reset is an end of stream like any other
        finally:
            self._reading = False
            self._read_done.set()
            self._read_done = trio.Event()
        if data:
            self._proto.receive_data(data)
        else:
            self._proto.receive_eof()
        self._take_events()

    def _take_events(self) -> None:
        """Turn the core's events into messages, pongs and endings."""
        proto = self._proto
        for frame in cast(list[Frame], proto.events_received()):  # frames once OPEN
            opcode = frame.opcode
            if opcode is TEXT or opcode is BINARY or opcode is CONT:
                self._assemble(frame)
            elif opcode is PONG:
                self._ponged(bytes(frame.data))
            elif opcode is CLOSE:
                self._peer_closed()
            if self._ended is not None:
                break
        out = [data for data in proto.data_to_send() if data]
        if self._ended is None and proto.parser_exc is not None:
            self._core_failed(proto.parser_exc, out)
        elif out and not self._close_sent and (proto.state is OPEN or self._echoed is not None):
            self._control.extend(out)  # pongs, and the echo of a peer's close
            self._wake()

    def _assemble(self, frame: Frame) -> None:
        """Add a data frame to the message under way; a finished message joins the queue."""
        if frame.opcode is not CONT:
            self._decoder = _utf8() if frame.opcode is TEXT else None
        decoder = self._decoder
        message: Message
        if decoder is None:
            data = frame.data
            if not frame.fin:
                self._parts.append(bytes(data))
                return
            message = data if type(data) is bytes else bytes(data)
            if self._parts:
                message = b"".join([*self._parts, message])
        else:
            try:
                text = decoder.decode(frame.data, frame.fin)
            except UnicodeDecodeError:
                self._fail(1007, "invalid UTF-8 in a text message")
                return
            if not frame.fin:
                self._parts.append(text)
                return
            message = "".join([*self._parts, text]) if self._parts else text
        self._parts = []
        self._messages.append(message)

    def _fail(self, code: int, reason: str) -> None:
        self._proto.fail(code, reason)
        ending = Ending.PROTOCOL_ERROR
        self._failed = [data for data in self._proto.data_to_send() if data]
        self._ended = TransportClosed(ending, code, reason)

    def _core_failed(self, exc: Exception, out: list[bytes]) -> None:
        """The core refused the peer's data (or saw EOF) and made its close frame."""
        close = self._proto.close_sent
        if isinstance(exc, EOFError) or close is None:
            self._ended = TransportClosed(Ending.PEER_VANISHED, 1006, "")
            return
        ending = Ending.MESSAGE_TOO_BIG if isinstance(exc, PayloadTooBig) else Ending.PROTOCOL_ERROR
        self._failed = out
        self._ended = TransportClosed(ending, close.code, close.reason)

    def _peer_closed(self) -> None:
        received = self._proto.close_rcvd
        assert received is not None
        if self._close_sent:
            return  # the reply to our close: close() is reading it
        self._echoed = trio.Event()
        self._ended = TransportClosed(Ending.PEER_CLOSED, received.code, received.reason)

    def _ponged(self, payload: bytes) -> None:
        if payload in self._pings:  # a pong answers its ping and every earlier one
            for key in list(self._pings):
                self._pings.pop(key).set()
                if key == payload:
                    break

    # -- writing (the writer task) ---------------------------------------------------
    def set_writer_wakeup(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    async def send(self, message: Message) -> None:
        await self.send_many((message,))

    async def send_many(self, messages: Sequence[Message]) -> None:
        proto = self._proto
        if messages and proto.state is OPEN and self._ended is None:
            for message in messages:
                if isinstance(message, str):
                    proto.send_text(message.encode("utf-8"))
                else:
                    proto.send_binary(message)
            out = proto.data_to_send()
        else:
            out = []
        if self._control:
            out[:0] = self._control
            self._control = []
        if not out:
            if self._ended is not None:
                raise self._ended
            await trio.lowlevel.checkpoint()
            return
        try:
            await self._stream.send_all(out[0] if len(out) == 1 else b"".join(out))
        except _EXPECTED_ERRORS:
            self._ended = self._ended or TransportClosed(Ending.PEER_VANISHED, 1006, "")
            raise self._ended from None
        if self._echoed is not None:
            self._echoed.set()

    async def ping(self) -> None:
        if self._ended is not None or self._proto.state is not OPEN:
            await trio.lowlevel.checkpoint()
            raise self._ended or TransportClosed(Ending.PEER_VANISHED, 1006, "")
        payload = struct.pack("!Q", next(self._ping_ids))
        answered = self._pings[payload] = trio.Event()
        self._proto.send_ping(payload)
        self._control.extend(self._proto.data_to_send())
        self._wake()
        await answered.wait()

    # -- closing (the closer, once the reader and writer are done) ---------------------
    async def close(self, code: int, reason: str) -> TransportClosed | None:
        ended = self._ended
        if ended is not None and not self._failed:
            await trio.lowlevel.checkpoint()
            return ended  # the peer closed or vanished first: the wire wins
        while self._reading:  # the reader was cancelled; let it leave receive_some
            await self._read_done.wait()
        if self._failed:
            frames, self._failed = self._failed, []
        else:
            self._proto.send_close(code, reason)
            frames = [data for data in self._proto.data_to_send() if data]
        self._close_sent = True
        try:
            await self._stream.send_all(b"".join(frames))
        except _EXPECTED_ERRORS:
            return TransportClosed(Ending.PEER_VANISHED, 1006, "")
        await self._await_close_reply()
        return None

    async def _await_close_reply(self) -> None:
        """Read (and drop) until the peer's close frame or end of stream."""
        proto = self._proto
        while proto.close_rcvd is None and proto.parser_exc is None:
            try:
                data = await self._stream.receive_some(self._bufsize)
            except _EXPECTED_ERRORS:
                return
            if not data:
                return
            proto.receive_data(data)
            proto.events_received()
            proto.data_to_send()  # pongs to pings that crossed our close: not sent

    async def abort(self) -> None:
        await trio.aclose_forcefully(self._stream)


def _nothing() -> None:
    pass


_utf8 = codecs.getincrementaldecoder("utf-8")
