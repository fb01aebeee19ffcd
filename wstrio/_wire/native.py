"""wstrio's own engine: a :class:`Transport` over its own frame codec (``parser``, ``frames``).

Theory of operation
-------------------
The opening handshake is done before this object exists (by the HTTP front's
h11 on a server, by the client's on a client); what h11 read past the
handshake is fed in first. From then on there is no engine task:

* the connection's *reader* calls :meth:`NativeTransport.receive`, which reads
  the socket (``receive_buffer_size`` bytes at a time) and feeds the streaming
  :class:`Parser`, which hands back whole messages (text is validated as UTF-8
  as it arrives, so bad data fails at once with 1007); while a frame is under
  way, each read is bounded by the time its :class:`FrameClock` leaves the peer
  (``frame_timeout``), past which the connection fails with 1008;
* the connection's *writer* calls :meth:`send_many`, which frames every queued
  message and writes them with any waiting control frame in one ``send_all``,
  control frames first. A pong (or a ping from the heartbeat) that arrives
  while the writer is idle wakes it (``set_writer_wakeup``). While the writer
  is idle, :meth:`write_now` writes one message with a non-blocking
  ``os.write`` on a plain socket; what the socket does not take (the *tail*)
  goes first in the writer's next write, and the writer is woken for it. These
  two are the only writers until the connection's ending is decided;
* a peer's close frame is echoed through the writer too (and no data after
  it); the reader reports the ending once the echo is out;
* after a decision the closer calls :meth:`close`, which writes our close
  frame and reads until the peer's (the reader has stopped by then). Pings
  that cross our close frame are not answered (RFC 6455 5.5.2 allows it).
"""

from __future__ import annotations

import itertools
import os
import struct
from collections import deque
from collections.abc import Callable, Sequence

import trio

from .._conn.closecodes import Ending
from .._conn.config import Config
from .._conn.transport import ConnectionInfo, Message, Outgoing, TransportClosed
from .deflate import Agreement, codecs_for, settings_of
from .frameclock import FrameClock, read_within
from .frames import OP_CLOSE, OP_PING, OP_PONG, close_payload, encode
from .outgoing import Encoder
from .parser import CloseFrame, Control, Parser
from .streams import direct_fd

_EXPECTED_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError)
_MAX_PONGS = 16
_CONTROL_WRITE = 1.0  # seconds a write of control frames alone may take once cancelled
_VANISHED = (Ending.PEER_VANISHED, 1006, "")
_FRAME_TIMEOUT = (Ending.FRAME_TIMEOUT, 1008, "frame timeout")


class NativeTransport:
    """One open WebSocket connection on wstrio's own codec (server or client side)."""

    __slots__ = (
        "_bufsize", "_client", "_clock", "_close_sent", "_control", "_echo_queued", "_echoed",
        "_encoder", "_ended", "_failed", "_failed_code", "_fd", "_info", "_messages", "_parser",
        "_ping_ids", "_pings", "_pongs", "_read_done", "_reading", "_stream", "_tail", "_wake",
    )  # fmt: skip

    def __init__(
        self,
        stream: trio.abc.Stream,
        info: ConnectionInfo,
        config: Config,
        *,
        client: bool = False,
        received: bytes = b"",
        deflate: Agreement | None = None,
    ) -> None:
        self._stream = stream
        self._fd = direct_fd(stream)  # for write_now; None when it cannot write
        self._tail = b""  # what write_now could not write: it goes out first
        self._info = info
        self._client = client
        inflater = deflater = None
        if deflate is not None:
            deflater, inflater = codecs_for(deflate, settings_of(config), client=client)
        self._encoder = Encoder(deflater, config.compression_threshold, client=client)
        self._parser = Parser(
            client=client, max_message_size=config.max_message_size, inflater=inflater
        )
        self._bufsize = config.receive_buffer_size
        timeout = config.frame_timeout
        self._clock = None if timeout is None else FrameClock(timeout)
        self._messages: deque[Message] = deque()
        self._control: list[bytes] = []  # frames for the writer to send first
        self._wake: Callable[[], None] = _nothing
        #: Pongs owed, the oldest dropped past 16 (a pong may answer only the latest ping,
        #: RFC 6455 5.5.3): a peer that pings without reading cannot grow it.
        self._pongs: deque[bytes] = deque(maxlen=_MAX_PONGS)
        self._echoed: trio.Event | None = None  # set once the peer's close is echoed
        self._echo_queued = False  # the echo waits in _control, not yet taken by a write
        self._pings: dict[bytes, trio.Event] = {}
        self._ping_ids = itertools.count()
        self._ended: TransportClosed | None = None
        self._failed = b""  # our close frame, when the peer's data failed the connection
        self._failed_code = 0  # its close code
        self._close_sent = False
        self._reading = False
        self._read_done = trio.Event()
        if received:
            self._feed(received)

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    # -- reading (the reader task) ---------------------------------------------------
    async def receive(self) -> Message:
        while not self._messages:
            if self._ended is not None:
                if self._echoed is not None:
                    await self._echoed.wait()  # the writer sends the echo first
                raise self._ended
            await self._read()
        return self._messages.popleft()

    async def _read(self) -> None:
        clock = self._clock
        self._reading = True
        try:
            if clock is not None and clock.busy:  # a frame under way: the peer's time runs
                data = await read_within(self._stream, clock, self._bufsize)
            else:
                data = await self._stream.receive_some(self._bufsize)
        except _EXPECTED_ERRORS:
            data = b""  # a reset is an end of stream like any other
        finally:
            self._reading = False
            self._read_done.set()
            self._read_done = trio.Event()
        if data is None:  # Config.frame_timeout: a policy, not a protocol error (1008)
            self._fail(*_FRAME_TIMEOUT[1:])
            self._end(TransportClosed(*_FRAME_TIMEOUT))
        elif not data:
            self._end(TransportClosed(*_VANISHED))
        else:
            self._feed(data)

    def _feed(self, data: bytes | bytearray) -> None:
        if self._clock is not None:
            self._clock.feed(data)
        self._parser.feed(data)
        self._take_events()

    def _take_events(self) -> None:
        """Queue the parsed messages; answer pings, note pongs, echo a peer's close."""
        for event in self._parser.take():
            if type(event) is str or type(event) is bytes:
                self._messages.append(event)
            elif isinstance(event, Control):
                if event.opcode == OP_PING:
                    self._pongs.append(self._frame(OP_PONG, event.payload))
                    self._wake()
                else:
                    self._ponged(event.payload)
            elif isinstance(event, CloseFrame):
                self._peer_closed(event)
        failure = self._parser.failure
        if failure is not None and self._ended is None:
            too_big = failure.code == 1009
            ending = Ending.MESSAGE_TOO_BIG if too_big else Ending.PROTOCOL_ERROR
            self._fail(failure.code, failure.reason)
            self._end(TransportClosed(ending, failure.code, failure.reason))

    def _fail(self, code: int, reason: str) -> None:
        self._failed, self._failed_code = self._frame(OP_CLOSE, close_payload(code, reason)), code

    def _peer_closed(self, close: CloseFrame) -> None:
        if self._close_sent or self._ended is not None:
            return
        self._end(TransportClosed(Ending.PEER_CLOSED, close.code, close.reason))
        self._echoed = trio.Event()
        self._echo_queued = True
        self._send_control(OP_CLOSE, close_payload(close.code))  # echo the code (5.5.1)

    def _end(self, ended: TransportClosed) -> None:
        """The connection can carry no more messages: how, and no ping waits any longer."""
        if self._ended is None:
            self._ended = ended
        for waiting in self._pings.values():
            waiting.set()

    def _ponged(self, payload: bytes) -> None:
        if payload in self._pings:  # a pong answers its ping and every earlier one
            for key in list(self._pings):
                self._pings.pop(key).set()
                if key == payload:
                    break

    def _send_control(self, opcode: int, payload: bytes) -> None:
        self._control.append(self._frame(opcode, payload))
        self._wake()

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        return encode(opcode, payload, mask=self._client)

    # -- writing (the writer task) ---------------------------------------------------
    def set_writer_wakeup(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        if self._control or self._pongs:  # frames that came with the handshake want answers
            wake()

    async def send(self, message: Message) -> None:
        await self.send_many((message,))

    @property
    def writes_now(self) -> bool:
        return self._fd is not None

    def write_now(self, message: Outgoing) -> bool:
        fd = self._fd
        if fd is None or self._tail or self._control or self._pongs or self._echo_queued:
            return False  # the writer has bytes to send first
        if self._ended is not None or self._close_sent:
            return False
        frame = self._encoder.frame(message)  # from here on the message is ours (compression state)
        try:
            written = os.write(fd, frame)
        except OSError:  # full (EAGAIN) or broken: the writer's next write finds out which
            written = 0
        if written < len(frame):
            self._tail = frame[written:]
            self._wake()
        return True

    async def send_many(self, messages: Sequence[Outgoing]) -> None:
        out = self._control
        self._control = []
        if self._pongs:
            out[:0] = self._pongs
            self._pongs.clear()
        data_frames = bool(self._tail)
        if self._tail:  # the rest of a frame write_now began
            out.insert(0, self._tail)
            self._tail = b""
        carries_echo, self._echo_queued = self._echo_queued, False
        if messages and self._ended is None and not self._close_sent:
            data_frames = True
            for message in messages:
                out.append(self._encoder.frame(message))
        if not out:
            if self._ended is not None:
                raise self._ended
            await trio.lowlevel.checkpoint()
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        try:
            if not data_frames:
                # Control frames alone (pongs, the close echo): a few bytes, written whole
                # even if a decision cancels the writer meanwhile, so the stream can still
                # carry our close frame; bounded, since a peer may have stopped reading.
                with trio.CancelScope(shield=True), trio.move_on_after(_CONTROL_WRITE) as cut:
                    await self._stream.send_all(data)
                if cut.cancelled_caught:
                    raise trio.BrokenResourceError("a control frame could not be written")
            else:
                await self._stream.send_all(data)
        except _EXPECTED_ERRORS:
            self._end(TransportClosed(*_VANISHED))
            assert self._ended is not None
            raise self._ended from None
        if carries_echo and self._echoed is not None:
            self._echoed.set()

    async def ping(self) -> None:
        if self._ended is not None or self._close_sent:
            await trio.lowlevel.checkpoint()
            raise self._ended or TransportClosed(*_VANISHED)
        payload = struct.pack("!Q", next(self._ping_ids))
        answered = self._pings[payload] = trio.Event()
        self._send_control(OP_PING, payload)
        try:
            await answered.wait()
        finally:
            unanswered = self._pings.pop(payload, None) is not None
        if unanswered:  # woken because the connection ended
            raise self._ended or TransportClosed(*_VANISHED)

    # -- closing (the closer, once the reader and writer are done) ---------------------
    async def close(self, code: int, reason: str) -> TransportClosed | None:
        ended = self._ended
        if ended is not None and not self._failed:
            if self._echo_queued:  # the writer stopped before it sent the echo: send it now
                await self._send_echo()
            await trio.lowlevel.checkpoint()
            return ended  # the peer closed or vanished first: the wire wins
        while self._reading:  # the reader was cancelled; let it leave receive_some
            await self._read_done.wait()
        # The failure's own frame, unless the supervisor had decided another ending first
        # (a 1003 for a message the route does not accept, say): the wire says what Closed says.
        failed = self._failed if self._failed_code == code else b""
        frame = failed or self._frame(OP_CLOSE, close_payload(code, reason))
        frame, self._tail = self._tail + frame, b""
        self._close_sent = True
        try:
            await self._stream.send_all(frame)
        except _EXPECTED_ERRORS:
            return TransportClosed(*_VANISHED)
        if not self._failed or self._client:  # a server that failed reads nothing more (7.1.7)
            await self._await_close_reply()
        return None

    async def _send_echo(self) -> None:
        """Write the pending control frames (ending with the close echo) ourselves."""
        while self._reading:  # the reader was cancelled; let it leave receive_some
            await self._read_done.wait()
        frames, self._control, self._echo_queued = self._control, [], False
        frames.insert(0, self._tail)
        self._tail = b""
        try:
            await self._stream.send_all(b"".join(frames))
        except _EXPECTED_ERRORS:
            return
        if self._echoed is not None:
            self._echoed.set()

    async def _await_close_reply(self) -> None:
        """Read until the peer's close frame or the end of the stream; drop everything else
        (pings that cross our close frame are not answered: RFC 6455 5.5.2 allows it)."""
        parser = self._parser
        while parser.closed is None:
            try:
                data = await self._stream.receive_some(self._bufsize)
            except _EXPECTED_ERRORS:
                return
            if not data:
                return
            if not parser.done:
                parser.feed(data)
                parser.take()

    async def abort(self) -> None:
        self._end(TransportClosed(*_VANISHED))
        self._fd = None
        await trio.aclose_forcefully(self._stream)


def _nothing() -> None:
    pass
