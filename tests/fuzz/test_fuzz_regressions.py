"""What the fuzz targets found, one test each, kept as plain regression tests.

A bug in a file this folder does not own is a strict ``xfail`` naming the file and the
cause: it turns into a failure (XPASS) once fixed, so the mark and the workaround in the
fuzz target go with it.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from fuzzkit import KEY, accept_of, read_frames, split_head, ws_frame
from websockets.frames import Opcode

import wstrio
from wstrio.testing import memory_stream_pair, open_memory_server

PONG_BUG = (
    "wstrio/_wire/native.py: set_writer_wakeup() wakes the writer when _control holds frames,"
    " not when _pongs does, so a ping parsed from the bytes read with the handshake owes a"
    " pong nobody sends until the writer wakes for something else"
)
UPGRADE = (
    "GET /ws/echo HTTP/1.1\r\nHost: wstrio.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()


async def read_for(stream: trio.abc.Stream, seconds: float) -> bytes:
    """What ``stream`` delivers within ``seconds`` (of MockClock time)."""
    data = b""
    with trio.move_on_after(seconds):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


@pytest.mark.xfail(strict=True, reason=PONG_BUG)
async def test_a_ping_sent_with_the_upgrade_request_is_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A ping in the same write as the upgrade request gets its pong at once."""

    async def wait(session: wstrio.Session) -> None:
        async for _ in session:
            pass

    config = wstrio.Config(ping_interval=None)
    async with open_memory_server({"/ws/echo": wait}, config=config) as server:
        stream = await server.open_stream()
        await stream.send_all(UPGRADE + ws_frame(Opcode.PING, b"hi", mask=True))
        head, rest = split_head(await read_for(stream, 5))
        assert head.startswith(b"HTTP/1.1 101 ")
        assert [(f.opcode, f.payload) for f in read_frames(rest)[0]] == [(0xA, b"hi")]


@pytest.mark.xfail(strict=True, reason=PONG_BUG)
async def test_a_ping_sent_with_the_101_is_answered_by_the_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A ping in the same write as the server's 101 gets the client's pong at once."""
    client_end, server_end = memory_stream_pair()
    answered: list[tuple[int, bytes]] = []
    read = trio.Event()

    async def serve() -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await server_end.receive_some(65536)
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_of(key)}\r\n\r\n"
        ).encode()
        await server_end.send_all(response + ws_frame(Opcode.PING, b"hi", mask=False))
        frames = read_frames(await read_for(server_end, 5))[0]
        answered.extend((frame.opcode, frame.payload) for frame in frames)
        read.set()

    async def opener(target: object) -> trio.abc.Stream:
        return client_end

    config = wstrio.Config(ping_interval=None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with wstrio.connect("ws://wstrio.test/", config=config, opener=opener):
            await read.wait()  # the server reads for 5 s of MockClock time
    assert answered[:1] == [(0xA, b"hi")]
