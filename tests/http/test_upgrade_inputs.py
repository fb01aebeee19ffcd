"""Real-world upgrade requests over 127.0.0.1: each input the two-parser front got wrong.

Each test runs on both engines unless the old engine cannot pass it; those
cases are skipped for trio-websocket with the reason, its documented limit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator

import attrs
import pytest
import trio
from rawhttp import KEY, body, get, header, read_all, status, upgrade
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side

import wstrio

CONFIG = wstrio.Config(handshake_timeout=10, close_timeout=5, max_message_size=1000)
OLD_ENGINE_LIMIT = "trio-websocket's own parser refuses it: a documented limit of the old engine"


def only_native(reason: str = OLD_ENGINE_LIMIT) -> list[object]:
    return ["native", pytest.param("trio-websocket", marks=pytest.mark.skip(reason=reason))]


@attrs.define
class Site:
    port: int
    server: wstrio.Server
    closed: list[wstrio.Closed]
    ended: trio.Event  # set when a session's handler saw its close done

    async def send(self, data: bytes) -> trio.SocketStream:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        await stream.send_all(data)
        return stream

    async def exchange(self, data: bytes) -> bytes:
        """Send ``data``, read until the server closes; at once, not after a timeout."""
        stream = await self.send(data)
        async with stream:
            with trio.fail_after(2):  # far below handshake_timeout: the refusal closes at once
                return await read_all(stream)


async def echo_and_record(
    closed: list[wstrio.Closed], ended: trio.Event, session: wstrio.Session
) -> None:
    async for message in session:
        if message == "close please":
            await session.close(1000, "bye")
            break
        await session.send(message)
    closed.append(await session.wait_closed())
    ended.set()


@pytest.fixture
async def site(nursery: trio.Nursery, engine: str) -> AsyncIterator[Site]:
    closed: list[wstrio.Closed] = []
    ended = trio.Event()
    handler = functools.partial(echo_and_record, closed, ended)
    routes = {"/ws/echo": wstrio.Route(handler, subprotocols=("chat",))}
    server = wstrio.Server(routes, config=attrs.evolve(CONFIG, engine=engine))
    port = await nursery.start(functools.partial(server.run, port=0))
    yield Site(port, server, closed, ended)


def client() -> Protocol:
    return Protocol(Side.CLIENT, max_size=None)


async def upgraded(stream: trio.SocketStream) -> tuple[bytes, bytes]:
    """Read the 101 head; (head, bytes after it)."""
    data = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


async def echo_once(stream: trio.SocketStream, rest: bytes = b"") -> str:
    """Send "ping me" on an upgraded stream; the text that comes back."""
    peer = client()
    peer.send_text(b"ping me")
    await stream.send_all(b"".join(peer.data_to_send()))
    peer.receive_data(rest)
    with trio.fail_after(5):
        while True:
            for event in peer.events_received():
                return bytes(event.data).decode()
            peer.receive_data(await stream.receive_some(65536))


@pytest.mark.parametrize("connection", ["keep-alive, x-upgrade-hint", "upgrade-please"])
async def test_connection_without_upgrade_token_is_400_and_closed_at_once(
    site: Site, connection: str
) -> None:
    """No ``upgrade`` token (whole, not a substring): the usual one-line 400, closed at once."""
    request = get("/ws/echo", "Upgrade: websocket", f"Connection: {connection}",
                  f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13", close=False)
    response = await site.exchange(request)
    assert status(response) == 400
    assert header(response, "connection") == "close"
    assert body(response) == b"Connection: Upgrade is missing\n"


@pytest.mark.parametrize(
    "lines", [("keep-alive", "Upgrade"), ("Upgrade", "keep-alive"), ("keep-alive, UPGRADE",)]
)
async def test_connection_tokens_over_several_lines_upgrade(site: Site, lines: tuple[str]) -> None:
    """``Connection`` split over header lines, in either order, is one list (RFC 7230 3.2.2)."""
    request = get("/ws/echo", "Upgrade: websocket", *(f"Connection: {v}" for v in lines),
                  f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Version: 13", close=False)
    stream = await site.send(request)
    async with stream:
        head, rest = await upgraded(stream)
        assert status(head) == 101
        assert await echo_once(stream, rest) == "ping me"


async def test_healthz_and_upgrade_in_one_write_get_200_then_101(site: Site) -> None:
    """Bytes past one request belong to the next: 200 for /healthz, then a working session."""
    stream = await site.send(get("/healthz", close=False) + upgrade())
    async with stream:
        data = b""
        with trio.fail_after(5):  # both answers: the 200 with its body, then the 101 head
            while b"\r\n\r\n" not in data.partition(b"HTTP/1.1 101")[2]:
                data += await stream.receive_some(65536)
        length = int(header(data, "content-length") or 0)
        head_end = data.index(b"\r\n\r\n") + 4
        first, after = data[: head_end + length], data[head_end + length :]
        assert status(first) == 200 and body(first).startswith(b"{")
        head, _, rest = after.partition(b"\r\n\r\n")
        assert status(head) == 101
        assert await echo_once(stream, rest) == "ping me"


@pytest.mark.parametrize(
    "engine", only_native("trio-websocket loses bytes that came with the request: its limit")
)
async def test_frames_sent_with_the_upgrade_request_are_read(site: Site) -> None:
    """A message in the same write as the upgrade request reaches the handler."""
    peer = client()
    peer.send_text(b"early")
    stream = await site.send(upgrade() + b"".join(peer.data_to_send()))
    async with stream:
        head, rest = await upgraded(stream)
        assert status(head) == 101
        peer.receive_data(rest)
        with trio.fail_after(5):
            while not (events := peer.events_received()):
                peer.receive_data(await stream.receive_some(65536))
        assert bytes(events[0].data) == b"early"


@pytest.mark.parametrize(
    "extra",
    [
        (f"Sec-WebSocket-Key: {KEY}",),  # a second valid key
        ("Sec-WebSocket-Key: x",),
        ("Sec-WebSocket-Version: 13",),
        ("Host: other.example",),
    ],
    ids=["two keys", "key then x", "two versions", "two hosts"],
)
async def test_once_only_header_twice_is_400(site: Site, extra: tuple[str]) -> None:
    """A header RFC 6455 4.1 and 11.3 allow once, sent twice: 400, not a 101."""
    response = await site.exchange(upgrade("/ws/echo", *extra))
    assert status(response) == 400


@pytest.mark.parametrize(
    "line",
    [b"Host: caf\xc3\xa9.example", b"Host: \xff", b"Sec-WebSocket-Protocol: ch\xc3\xa4t"],
    ids=["utf-8 host", "0xff host", "utf-8 subprotocol"],
)
async def test_non_ascii_handshake_header_is_400_and_logs_nothing_above_info(
    site: Site, line: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Raw UTF-8 or 0xFF in Host or a subprotocol: 400, and no warning for any client to cause."""
    lines = [b"GET /ws/echo HTTP/1.1", b"Upgrade: websocket", b"Connection: Upgrade",
             f"Sec-WebSocket-Key: {KEY}".encode(), b"Sec-WebSocket-Version: 13", line]
    if not line.startswith(b"Host"):
        lines.append(b"Host: 127.0.0.1")
    with caplog.at_level(logging.INFO):
        response = await site.exchange(b"\r\n".join(lines) + b"\r\n\r\n")
    assert status(response) == 400
    assert [r for r in caplog.records if r.levelno > logging.INFO] == []


@pytest.mark.parametrize("engine", only_native())
async def test_absolute_form_target_upgrades(site: Site) -> None:
    """``GET http://host/path`` (RFC 7230 5.3.2, which a server must accept) is routed by path."""
    request = upgrade(f"http://127.0.0.1:{site.port}/ws/echo")
    stream = await site.send(request)
    async with stream:
        head, rest = await upgraded(stream)
        assert status(head) == 101
        assert await echo_once(stream, rest) == "ping me"


@pytest.mark.parametrize(
    "engine",
    only_native("trio-websocket answers the ping after our close frame, logs a warning and "
                "aborts after close_timeout: the old engine's documented limit"),
)
async def test_ping_crossing_our_close_does_not_abort_it(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """The handler closes 1000; the peer pings, then replies: closed at once, clean, quiet."""
    stream = await site.send(upgrade())
    peer = client()
    async with stream:
        _, rest = await upgraded(stream)
        peer.send_text(b"close please")
        await stream.send_all(b"".join(peer.data_to_send()))
        peer.receive_data(rest)
        with trio.fail_after(5):
            while peer.close_rcvd is None:
                peer.receive_data(await stream.receive_some(65536))
        assert (peer.close_rcvd.code, peer.close_rcvd.reason) == (1000, "bye")
        ping = Frame(Opcode.PING, b"late").serialize(mask=True, extensions=[])
        reply = Frame(Opcode.CLOSE, Close(1000, "bye").serialize()).serialize(
            mask=True, extensions=[])
        with caplog.at_level(logging.INFO):
            started = trio.current_time()
            await stream.send_all(ping + reply)
            with trio.fail_after(2):  # well before close_timeout
                await site.ended.wait()
    assert trio.current_time() - started < 1
    assert site.closed == [wstrio.Closed(wstrio.Ending.HANDLER_CLOSED, 1000, "bye")]
    assert [r for r in caplog.records if r.levelno > logging.INFO] == []


@pytest.mark.parametrize(
    "engine", only_native("trio-websocket counts a text message in characters")
)
async def test_max_message_size_counts_utf8_bytes_of_text(site: Site) -> None:
    """600 'é' are 1,200 bytes: over a 1,000-byte limit, so 1009, though only 600 characters."""
    stream = await site.send(upgrade())
    peer = client()
    async with stream:
        _, rest = await upgraded(stream)
        peer.send_text(("é" * 600).encode())
        await stream.send_all(b"".join(peer.data_to_send()))
        peer.receive_data(rest)
        with trio.fail_after(5):
            while peer.close_rcvd is None and peer.state is OPEN:
                peer.receive_data(await stream.receive_some(65536))
    assert peer.close_rcvd is not None and peer.close_rcvd.code == 1009


async def test_http_1_0_upgrade_is_400(site: Site) -> None:
    """RFC 6455 4.1: the handshake is HTTP/1.1; an HTTP/1.0 upgrade gets 400, not a 101."""
    request = upgrade().replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    response = await site.exchange(request)
    assert status(response) == 400
