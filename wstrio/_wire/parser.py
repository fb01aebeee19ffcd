"""A streaming WebSocket frame parser (RFC 6455 5): bytes in, messages and control frames out.

Theory of operation: :meth:`Parser.feed` takes whatever the socket gave, in
any chunk sizes, and parses as far as it can. A frame's header is parsed once
it is whole; a data frame's payload is taken as it arrives (unmasked and, for
text, decoded as UTF-8 piece by piece, so invalid text fails at once, 8.1
and 5.6); a control frame is taken whole (at most 125 bytes). Every rule of
the RFC that a frame can break fails the parser with the close code the RFC
gives (:attr:`Parser.failure`), after which it takes nothing more. A close
frame ends the parse too: what follows it is discarded (1.4).
"""

from __future__ import annotations

import codecs
import struct

import attrs

from .._conn.closecodes import is_sendable
from .deflate import Inflater
from .frames import (
    MAX_CONTROL_PAYLOAD,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    apply_mask,
)

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_utf8 = codecs.getincrementaldecoder("utf-8")


@attrs.frozen
class Control:
    """A ping (0x9) or pong (0xA) frame and its payload."""

    opcode: int
    payload: bytes


@attrs.frozen
class CloseFrame:
    """The peer's close frame: 1005 (no status) when it carried no code (7.1.5)."""

    code: int
    reason: str
    payload: bytes  # as received, to echo


@attrs.frozen
class Failure:
    """Why the parser stopped: the close code and reason to fail the connection with (7.1.7)."""

    code: int
    reason: str


Event = str | bytes | Control | CloseFrame


class Parser:
    """Parses one direction of a connection; ``client`` says which side reads it."""

    __slots__ = (
        "_buffer", "_bytes", "_compressed", "_decoder", "_fin", "_first", "_inflater",
        "_mask", "_masked", "_max", "_message", "_offset", "_opcode", "_opcode_done",
        "_remaining", "_size", "closed", "events", "failure",
    )  # fmt: skip

    def __init__(
        self, *, client: bool, max_message_size: int, inflater: Inflater | None = None
    ) -> None:
        self._masked = not client  # a server reads masked frames, a client unmasked ones
        self._max = max_message_size
        self._inflater = inflater  # permessage-deflate was agreed: RSV1 marks compressed messages
        self._compressed = False  # the message being assembled is compressed
        self._buffer = bytearray()
        self.events: list[Event] = []
        self.failure: Failure | None = None
        self.closed: CloseFrame | None = None
        # the frame whose payload is being read (opcode None: expecting a header)
        self._opcode: int | None = None
        self._opcode_done = 0  # the opcode of the frame last read (its header's)
        self._first = False  # the next payload piece is the frame's first
        self._fin = False
        self._remaining = 0
        self._mask = b""
        self._offset = 0  # payload bytes of this frame read so far (the mask's phase)
        # the message being assembled
        self._message: int | None = None  # OP_TEXT or OP_BINARY while fragmented
        self._bytes = bytearray()  # the message's bytes so far (inflated), text or binary
        self._size = 0
        self._decoder: codecs.IncrementalDecoder | None = None

    @property
    def done(self) -> bool:
        """True once the parser failed or read a close frame: it takes nothing more."""
        return self.failure is not None or self.closed is not None

    def take(self) -> list[Event]:
        """The events parsed so far, removed."""
        events, self.events = self.events, []
        return events

    def feed(self, data: bytes | bytearray) -> None:
        """Parse ``data`` after what came before."""
        if self.done:
            return
        buffer = self._buffer
        buffer += data
        position = 0
        end = len(buffer)
        while not self.done:
            if self._opcode is None:
                header = self._header(buffer, position, end)
                if header == 0:
                    break
                position += header
                if self.done:
                    break
            if self._opcode in (OP_CLOSE, OP_PING, OP_PONG):
                if end - position < self._remaining:
                    break
                payload = self._unmask(bytes(buffer[position : position + self._remaining]))
                position += self._remaining
                self._opcode, self._remaining = None, 0
                self._control(self._opcode_done, payload)
                continue
            take = min(self._remaining, end - position)
            if take == 0 and self._remaining:
                break
            chunk = self._unmask(bytes(buffer[position : position + take]))
            position += take
            self._remaining -= take
            finished = self._remaining == 0
            if finished:
                self._opcode = None
            self._data(chunk, last=finished and self._fin)
            if not finished:
                break
        if position >= len(buffer):
            buffer.clear()
        elif position:
            del buffer[:position]

    # -- headers ---------------------------------------------------------------------
    def _header(self, buffer: bytearray, position: int, end: int) -> int:
        """Parse one frame header at ``position``; its length, or 0 if it is not whole yet."""
        if end - position < 2:
            return 0
        first, second = buffer[position], buffer[position + 1]
        length = second & 0x7F
        size = 2 + (2 if length == 126 else 8 if length == 127 else 0) + (4 if second & 0x80 else 0)
        if end - position < size:
            return 0
        at = position + 2
        if length == 126:
            length = _U16.unpack_from(buffer, at)[0]
            at += 2
        elif length == 127:
            length = _U64.unpack_from(buffer, at)[0]
            at += 8
        opcode, fin = first & 0x0F, bool(first & 0x80)
        problem = self._check(first, second, opcode, fin, length)
        if problem is not None:
            self._fail(*problem)
            return size
        self._mask = bytes(buffer[at : at + 4]) if second & 0x80 else b""
        self._opcode, self._opcode_done, self._fin = opcode, opcode, fin
        self._first = True
        self._remaining, self._offset = length, 0
        return size

    def _check(
        self, first: int, second: int, opcode: int, fin: bool, length: int
    ) -> tuple[int, str] | None:
        """The close code and reason a frame header breaks a rule with, or None (5.2-5.5)."""
        if first & 0x70:
            starts_message = opcode in (OP_TEXT, OP_BINARY)
            if first & 0x30 or self._inflater is None or not starts_message:
                return 1002, "reserved bits set without an extension"
        if bool(second & 0x80) is not self._masked:
            return 1002, "frames from a client are masked, from a server not (5.1)"
        if opcode in (OP_CLOSE, OP_PING, OP_PONG):
            if not fin or length > MAX_CONTROL_PAYLOAD:
                return 1002, "control frames are whole and at most 125 bytes"
            return None
        if opcode == OP_CONTINUATION:
            if self._message is None:
                return 1002, "a continuation frame without a message to continue"
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._message is not None:
                return 1002, "a new message before the last one ended"
            self._size = 0
            self._compressed = bool(first & 0x40)
        else:
            return 1002, f"reserved opcode {opcode:#x}"
        if length >> 63:
            return 1002, "payload length with the most significant bit set"
        if not self._compressed and self._size + length > self._max:
            return 1009, f"message larger than {self._max} bytes"  # inflating is bounded apart
        return None

    def _unmask(self, payload: bytes) -> bytes:
        if not self._mask:
            return payload
        phase = self._offset % 4
        self._offset += len(payload)
        mask = self._mask[phase:] + self._mask[:phase] if phase else self._mask
        return apply_mask(payload, mask)

    # -- payloads --------------------------------------------------------------------
    def _data(self, chunk: bytes, *, last: bool) -> None:
        """A piece of a data frame's payload; ``last`` if it ends the message."""
        opcode = self._opcode_done
        first, self._first = self._first, False
        if first and opcode != OP_CONTINUATION:
            self._message = opcode
            if opcode == OP_TEXT and last and not self._compressed:  # a whole text message
                try:
                    self.events.append(chunk.decode("utf-8"))
                except UnicodeDecodeError:
                    self._fail(1007, "invalid UTF-8 in a text message")
                self._message = None
                return
            self._decoder = _utf8() if opcode == OP_TEXT else None
        if not self._compressed:
            self._piece(chunk, last=last)
            return
        pieces = self._inflate(chunk, last=last)
        if pieces is not None:
            for n, piece in enumerate(pieces, 1):
                self._piece(piece, last=last and n == len(pieces))

    def _piece(self, chunk: bytes, *, last: bool) -> None:
        """Add (inflated) message bytes; ``last`` if they end the message. The bytes gather
        in one buffer (however many fragments); text is checked as it comes, decoded at the end."""
        buffer = self._bytes
        decoder = self._decoder
        if decoder is not None:
            try:
                decoder.decode(chunk, last)  # fail fast on invalid UTF-8 (RFC 6455 8.1)
            except UnicodeDecodeError:
                self._fail(1007, "invalid UTF-8 in a text message")
                return
        if not last:
            buffer += chunk
            self._size = len(buffer)
            return
        if buffer:
            buffer += chunk
            chunk = bytes(buffer)
            self._bytes = bytearray()
        self.events.append(chunk.decode("utf-8") if decoder is not None else chunk)
        self._size = 0
        self._message = None
        self._decoder = None

    def _inflate(self, chunk: bytes, *, last: bool) -> list[bytes] | None:
        """A compressed piece inflated, never past the message limit (RFC 7692 7.2.2)."""
        assert self._inflater is not None
        try:
            inflated = self._inflater.inflate(chunk, self._max, last=last)
        except ValueError:
            self._fail(1007, "invalid compressed data")
            return None
        if inflated is None:
            self._fail(1009, f"message larger than {self._max} bytes")
        return inflated

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode != OP_CLOSE:
            self.events.append(Control(opcode, payload))
            return
        if not payload:
            self.closed = CloseFrame(1005, "", payload)
        elif len(payload) == 1:
            self._fail(1002, "a close frame with a one-byte payload")
            return
        else:
            code = _U16.unpack_from(payload)[0]
            if not is_sendable(code):
                self._fail(1002, f"invalid close code {code}")
                return
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail(1007, "invalid UTF-8 in a close reason")
                return
            self.closed = CloseFrame(code, reason, payload)
        self.events.append(self.closed)

    def _fail(self, code: int, reason: str) -> None:
        if self.failure is None:
            self.failure = Failure(code, reason)
