"""What trio-websocket reads on a server: the request again, then the socket, timed per frame.

Theory of operation: the HTTP front has read the upgrade request with h11, and
trio-websocket parses it again from bytes, so :class:`ReplayStream` returns
those bytes first (the request head, then any frames that came with it), then
reads the socket. With ``Config.frame_timeout`` it follows the frames with a
:class:`FrameClock` as :class:`NativeTransport` does: a read while a frame is
under way is bounded by the time the peer has left; past it the stream says
it is broken (trio-websocket then gives up on the connection without a close
frame) and :attr:`ReplayStream.timed_out` tells the transport why, so that it
sends the 1008 close frame itself.
"""

from __future__ import annotations

import trio

from .frameclock import FrameClock, read_within


class ReplayStream(trio.abc.Stream):
    """A stream that first returns ``head`` and ``frames``, then reads from ``inner``.

    Closing it leaves ``inner`` open: its owner (the server) closes it.
    """

    def __init__(
        self, inner: trio.abc.Stream, head: bytes, frames: bytes = b"", *, timeout: float | None
    ) -> None:
        self.inner = inner
        self._prefix = head + frames
        self._head = len(head)  # prefix bytes that are not frames
        self._clock = None if timeout is None else FrameClock(timeout)
        #: True once a frame took longer than the timeout (the stream then raises).
        self.timed_out = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        clock = self._clock
        if self._prefix:
            await trio.lowlevel.checkpoint()
            size = len(self._prefix) if max_bytes is None else max_bytes
            prefix, self._prefix = self._prefix[:size], self._prefix[size:]
            skip, self._head = min(self._head, len(prefix)), max(0, self._head - len(prefix))
            if clock is not None and len(prefix) > skip:
                clock.feed(prefix[skip:])
            return prefix
        if clock is None:
            return await self.inner.receive_some(max_bytes)
        if self.timed_out:
            raise trio.BrokenResourceError("frame timeout")
        if clock.busy:  # a frame under way: the peer's time runs while we read
            data = await read_within(self.inner, clock, max_bytes)
            if data is None:
                self.timed_out = True
                raise trio.BrokenResourceError("frame timeout")
        else:
            data = await self.inner.receive_some(max_bytes)
        clock.feed(data)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        # The engine closes its stream when it gives up on a connection (after a
        # protocol error, without a close frame). The socket stays open until the
        # server is done with it, so wstrio can still send that frame.
        self._prefix = b""
        await trio.lowlevel.checkpoint()
