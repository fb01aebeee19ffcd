"""In-memory byte streams with a bounded buffer, and a client end that misbehaves on demand.

A :class:`_Pipe` carries bytes one way and holds at most ``limit`` of them, so a
reader that stops reading pushes back on the writer as a socket would (that is
how a stalled peer fills an outbox and trips ``write_timeout`` in a test).
"""

from __future__ import annotations

import trio


class _Pipe:
    """One direction of a stream: a bounded byte buffer with end-of-file."""

    def __init__(self, limit: int) -> None:
        self._data = bytearray()
        self._limit = limit
        self._eof = False
        self._lot = trio.lowlevel.ParkingLot()

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(bytes(data))
        await trio.lowlevel.checkpoint_if_cancelled()
        while view:
            if self._eof:
                raise trio.BrokenResourceError("the other end has gone")
            room = self._limit - len(self._data)
            if room <= 0:
                await self._lot.park()
                continue
            self._data += view[:room]
            view = view[room:]
            self._lot.unpark_all()
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def read(self, max_bytes: int | None) -> bytes:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._data:
            if self._eof:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return b""
            await self._lot.park()
        size = len(self._data) if max_bytes is None else max_bytes
        chunk = bytes(self._data[:size])
        del self._data[:size]
        self._lot.unpark_all()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return chunk

    def unread(self, data: bytes) -> None:
        """Put bytes back at the front, as if never read."""
        self._data[:0] = data

    def end(self) -> None:
        """No more bytes will come: a reader gets EOF once the buffer is empty."""
        self._eof = True
        self._lot.unpark_all()

    def break_off(self) -> None:
        """Drop what is buffered and end: the reader gets EOF at once."""
        self._data.clear()
        self.end()


class MemoryStream(trio.abc.HalfCloseableStream):
    """One end of an in-memory connection (see :func:`memory_stream_pair`)."""

    def __init__(self, outgoing: _Pipe, incoming: _Pipe) -> None:
        self._out = outgoing
        self._in = incoming
        self._closed = False
        self._send_lock = trio.StrictFIFOLock()  # whole writes never interleave

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this stream is closed")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        async with self._send_lock:
            await self._out.write(data)

    async def wait_send_all_might_not_block(self) -> None:
        self._check_open()
        await trio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        self._check_open()
        self._out.end()
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self._check_open()
        return await self._in.read(max_bytes)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._out.end()
            self._in.break_off()
        await trio.lowlevel.checkpoint()


class ClientEnd(MemoryStream):
    """The client's end, with the faults a test can inject (see :class:`~wstrio.testing.Faults`)."""

    def __init__(self, outgoing: _Pipe, incoming: _Pipe) -> None:
        super().__init__(outgoing, incoming)
        self._reading = trio.Event()
        self._reading.set()

    def stop_reading(self) -> None:
        self._reading = trio.Event()

    def resume_reading(self) -> None:
        self._reading.set()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while True:
            await self._reading.wait()
            data = await super().receive_some(max_bytes)
            if self._reading.is_set() or not data:
                return data
            self._in.unread(data)  # reading stopped while this read was waiting

    def vanish(self) -> None:
        """Drop the connection without a close frame, as a killed client process would
        (the server reads EOF). A network that silently drops packets is
        :meth:`stop_reading` instead: pings go unanswered."""
        self._closed = True
        self._out.break_off()
        self._in.break_off()

    async def send_raw(self, data: bytes) -> None:
        """Bytes straight onto the wire, bypassing the WebSocket engine."""
        await self.send_all(data)


def memory_stream_pair(limit: int = 65536) -> tuple[ClientEnd, MemoryStream]:
    """A connected (client end, server end) pair; each direction buffers ``limit`` bytes."""
    up, down = _Pipe(limit), _Pipe(limit)
    return ClientEnd(up, down), MemoryStream(down, up)
