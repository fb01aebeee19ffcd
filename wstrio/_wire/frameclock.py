"""How long a peer has taken over the frame it is sending: ``Config.frame_timeout``.

Theory of operation: a :class:`FrameClock` follows the frame boundaries of the
bytes a peer sends (their headers only: lengths, FIN, opcodes), apart from the
parser, which it never touches. It is *busy* from the first byte of a frame to
its last, and for a fragmented message from its first fragment to its last
(control frames between fragments do not end it). Each read while it is busy is
bounded by :attr:`FrameClock.left`, the time the peer still has, which only
reads use up: while a full inbox keeps the connection from reading, the peer's
time stands still (that wait is ours, not theirs). A frame that starts resets
it to ``frame_timeout``. The clock only needs the stream to be framed: a peer
whose bytes are not frames fails the parser first.
"""

from __future__ import annotations

import struct

import trio

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class FrameClock:
    """The frame or message in progress in one direction of a connection, and its time."""

    __slots__ = ("_fragmented", "_head", "_remaining", "left", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        #: Seconds of reading the peer still has to finish what it started.
        self.left = timeout
        self._head = b""  # the start of a frame header
        self._remaining = 0  # payload bytes of the current frame still to come
        self._fragmented = False  # a data message's FIN has not come yet

    @property
    def busy(self) -> bool:
        """True while a frame, or a fragmented message, has started and not ended."""
        return bool(self._head) or self._remaining > 0 or self._fragmented

    def feed(self, data: bytes | bytearray) -> None:
        """Follow ``data``; if what is unfinished at its end started in it, it gets the
        whole ``timeout``."""
        fresh = not self.busy  # the stream was between messages before this data
        if self._head:
            data, self._head = self._head + bytes(data), b""
        position, end = 0, len(data)
        remaining = self._remaining
        while True:
            if remaining:
                took = min(remaining, end - position)
                remaining -= took
                position += took
                if remaining:
                    break
                fresh = fresh or not self._fragmented  # a frame ended between messages
            if position >= end:
                break
            size = _header_size(data, position, end)
            if size == 0:
                self._head = bytes(data[position:end])
                break
            first, length = data[position], data[position + 1] & 0x7F
            if length == 126:
                length = _U16.unpack_from(data, position + 2)[0]
            elif length == 127:
                length = _U64.unpack_from(data, position + 2)[0]
            opcode, fin = first & 0x0F, bool(first & 0x80)
            if opcode < 0x8 and (opcode or fin):  # a message starts, or its last fragment
                self._fragmented = not fin
            position += size
            remaining = length
            if not remaining:
                fresh = fresh or not self._fragmented
        self._remaining = remaining
        if fresh:
            self.left = self.timeout


async def read_within(
    stream: trio.abc.ReceiveStream, clock: FrameClock, max_bytes: int | None
) -> bytes | bytearray | None:
    """Read from ``stream`` within the time the peer has left (``clock.left``, which the
    read uses up); None once that time is over."""
    started = trio.current_time()
    with trio.move_on_after(clock.left):
        data = await stream.receive_some(max_bytes)
        clock.left -= trio.current_time() - started
        return data
    return None


def _header_size(data: bytes | bytearray, position: int, end: int) -> int:
    """The length of the frame header at ``position``, or 0 if it is not whole yet."""
    if end - position < 2:
        return 0
    second = data[position + 1]
    length = second & 0x7F
    size = 2 + (2 if length == 126 else 8 if length == 127 else 0) + (4 if second & 0x80 else 0)
    return size if end - position >= size else 0
