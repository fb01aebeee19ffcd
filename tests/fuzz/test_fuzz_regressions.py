"""What the fuzz targets found, one test each, kept as plain regression tests.

Each failed before its fix (the pongs owed at the upgrade, the close frame after a 1003,
a HEAD refusal's content, the Content-Length with Transfer-Encoding).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import trio
import trio.testing
from fuzzkit import KEY, accept_of, read_frames, split_head, ws_frame
from websockets.frames import Opcode

import wstrio
from wstrio._http.parse import raw_response
from wstrio.testing import memory_stream_pair, open_memory_server

T = TypeVar("T")
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


def on_mock_clock(main: Callable[[], Awaitable[T]]) -> T:
    """``main()`` in a trio.run of its own on MockClock. The tests below are synchronous so
    that a failed assertion is itself (pytest-trio would wrap it in an ExceptionGroup, which
    ``xfail(raises=AssertionError)`` does not match)."""
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def wait(session: wstrio.Session) -> None:
    with contextlib.suppress(wstrio.ConnectionClosed):
        async for _ in session:
            pass


def test_a_ping_sent_with_the_upgrade_request_is_answered() -> None:
    """A ping in the same write as the upgrade request gets its pong at once."""

    async def main() -> bytes:
        config = wstrio.Config(ping_interval=None)
        async with open_memory_server({"/ws/echo": wait}, config=config) as server:
            stream = await server.open_stream()
            await stream.send_all(UPGRADE + ws_frame(Opcode.PING, b"hi", mask=True))
            return await read_for(stream, 5)

    head, rest = split_head(on_mock_clock(main))
    assert head.startswith(b"HTTP/1.1 101 ")
    assert [(f.opcode, f.payload) for f in read_frames(rest)[0]] == [(0xA, b"hi")]


def test_a_ping_sent_with_the_101_is_answered_by_the_client() -> None:
    """A ping in the same write as the server's 101 gets the client's pong at once."""
    answered: list[tuple[int, bytes]] = []
    on_mock_clock(functools.partial(ping_the_client, answered))
    assert answered[:1] == [(0xA, b"hi")]


async def ping_the_client(answered: list[tuple[int, bytes]]) -> None:
    """A scripted server sends its 101 and a ping in one write; ``answered`` gets the frames
    the client sends within 5 s."""
    client_end, server_end = memory_stream_pair()
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


def test_closed_says_the_code_sent_when_1003_meets_a_later_protocol_error() -> None:
    """Binary to a text-only route, then a bad frame: Closed and the close frame agree."""
    closed: list[wstrio.Closed] = []

    async def record(session: wstrio.Session) -> None:
        await wait(session)
        closed.append(await session.wait_closed())

    async def main() -> bytes:
        binary = ws_frame(Opcode.BINARY, b"bin", mask=True)
        reserved = bytes((0x83, 0x80)) + b"\x00" * 4  # opcode 0x3, masked, empty
        routes = {"/ws/echo": wstrio.Route(record, accepts="text")}
        async with open_memory_server(routes, config=wstrio.Config(ping_interval=None)) as server:
            stream = await server.open_stream()
            await stream.send_all(UPGRADE + binary + reserved)
            await stream.send_eof()
            return split_head(await read_for(stream, 5))[1]

    [close] = [frame for frame in read_frames(on_mock_clock(main))[0] if frame.opcode == 0x8]
    assert closed[0].code == 1003
    assert close.close_code == closed[0].code


async def exchange(request: bytes) -> bytes:
    """``request`` to a fresh in-memory server, then EOF; everything it answers."""
    async with open_memory_server({"/ws/echo": wait}) as server:
        stream = await server.open_stream()
        await stream.send_all(request)
        await stream.send_eof()
        return await read_for(stream, 20)


@pytest.mark.parametrize("target", ["/ws/echo", "/healthz"])
def test_content_length_with_transfer_encoding_is_400_and_closed(target: str) -> None:
    """Content-Length with Transfer-Encoding: 400, then close; the next request is unread."""
    # RFC 9112 6.1: a request smuggling attempt, for an upgrade as much as a plain request
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: wstrio.test\r\n\r\n"
    head = UPGRADE if target == "/ws/echo" else smuggled
    request = head[:-2] + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    reply = on_mock_clock(functools.partial(exchange, request + smuggled))
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert reply.count(b"HTTP/1.1") == 1 and b"Connection: close" in reply


def test_a_raw_response_to_head_has_the_head_alone() -> None:
    """``head_only``: the same status line and headers (Content-Length included), no content."""
    whole = raw_response(405, "a WebSocket handshake is a GET", (("Allow", "GET"),))
    head = raw_response(405, "a WebSocket handshake is a GET", (("Allow", "GET"),), head_only=True)
    assert whole.startswith(head) and head.endswith(b"\r\n\r\n")
    assert whole[len(head) :] == b"a WebSocket handshake is a GET\n"


def test_a_head_upgrade_gets_a_405_without_content() -> None:
    """HEAD with the upgrade headers: 405 with Allow, and no content (RFC 9110 9.3.2)."""
    reply = on_mock_clock(functools.partial(exchange, b"HEAD" + UPGRADE[3:]))
    assert reply.startswith(b"HTTP/1.1 405 ")
    assert reply.endswith(b"\r\n\r\n")
