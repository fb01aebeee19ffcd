"""The ``raw`` echo server: the least a WebSocket echo can cost in Trio.

Plain ``trio.serve_listeners`` (``serve_tcp`` that reports its port). The
upgrade: read up to the blank line, take ``Sec-WebSocket-Key``, answer 101
with its ``Sec-WebSocket-Accept`` (no other header is checked). Then per
socket read: every complete client frame in the buffer is parsed (2-14 byte
header), unmasked and answered with the same payload, unmasked, under the
same first byte (FIN and opcode); the answers go out with one ``send_all``.
A ping gets a pong, a close frame the close frame echoed, then the connection
ends. Enough for the load generators' frames (single-frame text or binary
messages, masked, no extensions); no validation whatsoever.

The unmasking is the native engine's technique (``int.from_bytes`` of the
payload and of the repeated key, XOR, ``to_bytes``): the fastest in pure
Python for small payloads; at 64 KiB wsproto's four strided
``bytes.translate`` calls take about half its time, so at that size this is
a floor for the technique, not for Python.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib

import trio

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE, PING, PONG = 0x8, 0x9, 0xA
#: Bytes per socket read, unless --receive-buffer-size says otherwise (wstrio's default).
RECEIVE_SIZE = 65536


def accept_response(request: bytes) -> bytes:
    """The 101 answer to an upgrade request's head."""
    lines = request.split(b"\r\n")
    key = next(ln[18:].strip() for ln in lines if ln[:18].lower() == b"sec-websocket-key:")
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def frame_header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return bytes((first, 126)) + length.to_bytes(2, "big")
    return bytes((first, 127)) + length.to_bytes(8, "big")


def answer(buffer: bytearray, out: bytearray) -> tuple[int, bool]:
    """Append to ``out`` the answers to the complete frames at the start of ``buffer``;
    returns how many bytes they took and whether one was a close frame."""
    pos, size = 0, len(buffer)
    while size - pos >= 2:
        first, length = buffer[pos], buffer[pos + 1] & 0x7F
        start = pos + 2
        if length == 126:
            length, start = int.from_bytes(buffer[start : start + 2], "big"), start + 2
        elif length == 127:
            length, start = int.from_bytes(buffer[start : start + 8], "big"), start + 8
        end = start + 4 + length  # client frames are masked: 4 bytes of key
        if end > size:
            break
        mask = bytes(buffer[start : start + 4]) * (length // 4 + 1)
        payload = int.from_bytes(buffer[start + 4 : end], "little")
        payload ^= int.from_bytes(mask[:length], "little")
        opcode = first & 0x0F
        if opcode == PING:
            first = 0x80 | PONG
        out += frame_header(first, length)
        out += payload.to_bytes(length, "little")
        pos = end
        if opcode == CLOSE:
            return pos, True
    return pos, False


async def echo(receive_size: int, stream: trio.SocketStream) -> None:
    async with stream:
        buffer = bytearray()
        try:
            while b"\r\n\r\n" not in buffer:
                data = await stream.receive_some(receive_size)
                if not data:
                    return
                buffer += data
            end = buffer.index(b"\r\n\r\n")
            await stream.send_all(accept_response(bytes(buffer[:end])))
            del buffer[: end + 4]
            while True:
                out = bytearray()
                used, closed = answer(buffer, out)
                del buffer[:used]
                if out:
                    await stream.send_all(out)
                if closed:
                    return
                data = await stream.receive_some(receive_size)
                if not data:
                    return
                buffer += data
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def serve(
    args: argparse.Namespace, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    handler = functools.partial(echo, args.receive_buffer_size or RECEIVE_SIZE)
    listeners = await trio.open_tcp_listeners(args.port, host=args.host)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, listeners)
        task_status.started(listeners[0].socket.getsockname()[1])
