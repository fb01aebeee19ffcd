"""wstrio.connect against hand-played servers over 127.0.0.1: what the native client reads.

The servers here answer with raw bytes (h11 on their side, frames from the
``websockets`` package), so each can be wrong in exactly one way.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable

import attrs
import h11
import pytest
import trio
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side

import wstrio

CONFIG = wstrio.Config(ping_interval=None, close_timeout=5, handshake_timeout=5)
Answer = Callable[[trio.SocketStream, str], Awaitable[None]]


def accept(key: str) -> str:
    digest = hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    return base64.b64encode(digest).decode()


async def read_key(stream: trio.SocketStream) -> str:
    """Read the client's request; its Sec-WebSocket-Key."""
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Request):
            return dict(event.headers)[b"sec-websocket-key"].decode()


def switching(key: str, *extra: str) -> bytes:
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept(key)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def serve_once(answer: Answer, nursery: trio.Nursery) -> int:
    """A server that plays ``answer`` for each connection; its port."""

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            await answer(stream, await read_key(stream))

    listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    return int(listeners[0].socket.getsockname()[1])


async def test_refusal_with_body_until_eof_reaches_handshake_rejected(
    nursery: trio.Nursery,
) -> None:
    """A 403 whose body ends at EOF (no length): status, headers and body all reach the caller."""

    async def refuse(stream: trio.SocketStream, key: str) -> None:
        await stream.send_all(b"HTTP/1.1 403 Forbidden\r\nX-Why: token\r\nConnection: close\r\n\r\n"
                              b"no entry for you\n")

    port = await serve_once(refuse, nursery)
    with pytest.raises(wstrio.HandshakeRejected) as caught:
        async with wstrio.connect(f"ws://127.0.0.1:{port}/", config=CONFIG):
            pass
    assert caught.value.status_code == 403
    assert caught.value.header("x-why") == "token"
    assert caught.value.body == b"no entry for you\n"


async def test_reconnecting_does_not_retry_a_4xx_whose_body_ended_at_eof(
    nursery: trio.Nursery,
) -> None:
    """The refusal above is raised by ``reconnecting`` at once: a 4xx is not retried."""
    attempts = 0

    async def refuse(stream: trio.SocketStream, key: str) -> None:
        nonlocal attempts
        attempts += 1
        await stream.send_all(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\ngone")

    port = await serve_once(refuse, nursery)
    with pytest.raises(wstrio.HandshakeRejected):
        async for _ in wstrio.reconnecting(f"ws://127.0.0.1:{port}/", config=CONFIG):
            pass
    assert attempts == 1


async def test_subprotocol_never_offered_is_reported_as_such(nursery: trio.Nursery) -> None:
    """A 101 choosing a subprotocol the client did not offer: a ConnectError that says so."""

    async def choose(stream: trio.SocketStream, key: str) -> None:
        await stream.send_all(switching(key, "Sec-WebSocket-Protocol: mqtt"))

    port = await serve_once(choose, nursery)
    with pytest.raises(wstrio.ConnectError, match="chose subprotocol 'mqtt', which we did not"):
        async with wstrio.connect(f"ws://127.0.0.1:{port}/", config=CONFIG, subprotocols=["chat"]):
            pass
    tws = attrs.evolve(CONFIG, engine="trio-websocket")  # no h11 internals from that one either
    with pytest.raises(wstrio.ConnectError, match="usually a subprotocol") as refused:
        async with wstrio.connect(f"ws://127.0.0.1:{port}/", config=tws, subprotocols=["chat"]):
            pass
    assert "can't handle event type" not in str(refused.value)


async def test_wrong_accept_value_is_refused(nursery: trio.Nursery) -> None:
    """A 101 whose Sec-WebSocket-Accept does not match the key is not trusted."""

    async def wrong(stream: trio.SocketStream, key: str) -> None:
        await stream.send_all(switching("x" * 24))

    port = await serve_once(wrong, nursery)
    with pytest.raises(wstrio.ConnectError, match="Sec-WebSocket-Accept does not match"):
        async with wstrio.connect(f"ws://127.0.0.1:{port}/", config=CONFIG):
            pass


async def test_ping_crossing_our_close_does_not_abort_the_client(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """The block ends (1000); the server pings after our close, then replies: clean and quiet."""

    async def ping_then_close(stream: trio.SocketStream, key: str) -> None:
        await stream.send_all(switching(key))
        server = Protocol(Side.SERVER, max_size=None)
        while server.close_rcvd is None:
            server.receive_data(await stream.receive_some(65536))
        ping = Frame(Opcode.PING, b"late").serialize(mask=False, extensions=[])
        reply = Frame(Opcode.CLOSE, Close(1000, "").serialize()).serialize(
            mask=False, extensions=[])
        await stream.send_all(ping + reply)
        await stream.receive_some(65536)  # until the client hangs up

    port = await serve_once(ping_then_close, nursery)
    with caplog.at_level(logging.INFO):
        started = trio.current_time()
        async with wstrio.connect(f"ws://127.0.0.1:{port}/", config=CONFIG) as session:
            pass
    assert trio.current_time() - started < 1  # not close_timeout
    assert session.closed == wstrio.Closed(wstrio.Ending.HANDLER_RETURNED, 1000, "")
    assert [r for r in caplog.records if r.levelno > logging.INFO] == []


@pytest.mark.parametrize("code", [1012, 1013, 1014])
async def test_registered_codes_1012_to_1014_pass_both_ways(
    nursery: trio.Nursery, code: int
) -> None:
    """IANA's 1012-1014 go from a handler to the client, and from the client to the handler."""
    seen: list[int] = []
    handled = trio.Event()

    async def close_with(session: wstrio.Session) -> None:
        if session.path == "/server-closes":
            await session.close(code, "registered")
            return
        try:
            await session.receive()
        except wstrio.ConnectionClosed as exc:
            seen.append(exc.code)
            handled.set()

    port = await nursery.start(functools.partial(
        wstrio.serve, {"/server-closes": close_with, "/client-closes": close_with}, port=0))
    async with wstrio.connect(f"ws://127.0.0.1:{port}/server-closes", config=CONFIG) as session:
        with pytest.raises(wstrio.ConnectionClosed) as caught:
            await session.receive()
    assert caught.value.code == code
    async with wstrio.connect(f"ws://127.0.0.1:{port}/client-closes", config=CONFIG) as session:
        raise wstrio.CloseConnection(code, "registered")  # closes with its code, not raised
    assert session.closed == wstrio.Closed(wstrio.Ending.HANDLER_CLOSED, code, "registered")
    with trio.fail_after(5):
        await handled.wait()
    assert seen == [code]
