"""The close-code table end to end: a real server on 127.0.0.1, clients nobody here wrote.

Polite peers are the ``websockets`` package's Trio client; misbehaving peers
(ignoring pings, vanishing, never reading) are wsproto-driven (tests/rawpeer.py).
The 1001 row (server shutdown) is in test_lifecycle.py, with 50 sessions.
Timing values here are small real ones: the timing logic itself is covered on
MockClock in test_supervisor.py; these tests check what crosses the wire.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import attrs
import pytest
import trio
from helpers import count_fds, task_names
from rawpeer import RawPeer
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.trio.client import connect

import wstrio
from wstrio import Closed, Ending

CONFIG = wstrio.Config(
    ping_interval=0.5, ping_timeout=0.5, close_timeout=2, write_timeout=0.5,
    handshake_timeout=2, shutdown_timeout=1, max_message_size=4096,
)


@attrs.define
class App:
    server: wstrio.Server
    port: int
    sessions: list[wstrio.Session]

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def idle(self) -> None:
        with trio.fail_after(10):
            await self.server.wait_idle()


def make_routes(sessions: list[wstrio.Session]) -> dict[str, object]:
    async def echo(session: wstrio.Session) -> None:
        sessions.append(session)
        async for message in session:
            await session.send(message)

    async def goodbye(session: wstrio.Session) -> None:
        sessions.append(session)
        await session.send("bye")

    async def close(session: wstrio.Session) -> None:
        sessions.append(session)
        code, reason = int(session.query["code"]), session.query.get("reason", "")
        if session.query.get("how") == "raise":
            raise wstrio.CloseConnection(code, reason)
        await session.close(code, reason)

    async def fail(session: wstrio.Session) -> None:
        sessions.append(session)
        raise RuntimeError("handler bug with a secret")

    async def flood(session: wstrio.Session) -> None:
        sessions.append(session)
        while True:
            await session.send(b"x" * 65536)

    return {
        "/ws/echo": echo, "/ws/return": goodbye, "/ws/close": close, "/ws/raise": fail,
        "/ws/flood": flood, "/ws/text": wstrio.Route(echo, accepts="text"),
    }


@pytest.fixture
async def app(nursery: trio.Nursery, engine: str) -> AsyncIterator[App]:
    """The app on a real socket, once per engine."""
    sessions: list[wstrio.Session] = []
    config = attrs.evolve(CONFIG, engine=engine)
    server = wstrio.Server(make_routes(sessions), config=config)  # type: ignore[arg-type]
    port = await nursery.start(functools.partial(server.run, port=0))
    yield App(server, port, sessions)


async def client_close(app: App, path: str, send: str | bytes | None = None) -> tuple[int, str]:
    """Connect with the websockets client, maybe send, read until closed."""
    async with connect(app.url(path), ping_interval=None) as ws:
        if send is not None:
            await ws.send(send)
        with pytest.raises(ConnectionClosed), trio.fail_after(5):
            while True:
                await ws.recv()
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


async def test_echo_round_trip_keeps_types(app: App) -> None:
    """The echo route sends text back as text and binary as binary."""
    async with connect(app.url("/ws/echo")) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"


async def test_handler_return_gives_client_1000(app: App) -> None:
    """Client sees the handler's last message, then 1000."""
    async with connect(app.url("/ws/return")) as ws:
        assert await ws.recv() == "bye"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1000


@pytest.mark.parametrize("how", ["call", "raise"])
async def test_handler_close_code_reaches_client(app: App, how: str) -> None:
    """session.close() and CloseConnection deliver their code and reason."""
    assert await client_close(app, f"/ws/close?code=4000&reason=custom&how={how}") == (
        4000, "custom")


async def test_peer_close_is_echoed_and_recorded(app: App) -> None:
    """The server echoes the client's close code and records it."""
    async with connect(app.url("/ws/echo")) as ws:
        await ws.aclose(4001, "client bye")
    assert ws.close_code == 4001
    await app.idle()
    assert app.sessions[0].closed == Closed(Ending.PEER_CLOSED, 4001, "client bye")
    assert app.sessions[0].remote is not None and app.sessions[0].remote[0] == "127.0.0.1"


async def test_vanished_peer_records_1006(app: App) -> None:
    """A client that drops TCP leaves outcome 1006 and nothing sent."""
    peer = await RawPeer.connect(app.port)
    await peer.vanish()
    await app.idle()
    assert app.sessions[0].closed == Closed(Ending.PEER_VANISHED, 1006, "")


async def test_handler_error_gives_1011_and_server_keeps_serving(app: App) -> None:
    """A raising handler costs its client 1011; another client keeps echoing."""
    async with connect(app.url("/ws/echo")) as other:
        await other.send("before")
        assert await other.recv() == "before"
        assert await client_close(app, "/ws/raise") == (1011, "internal error")
        await other.send("after")
        assert await other.recv() == "after"


async def test_no_pong_gives_1011_keepalive_timeout(app: App) -> None:
    """A client that never answers pings is closed with 1011 keepalive timeout."""
    peer = await RawPeer.connect(app.port)
    with trio.fail_after(5):
        assert await peer.close_frame() == (1011, "keepalive timeout")
    await peer.vanish()


async def test_client_that_stops_reading_is_aborted(app: App) -> None:
    """A client that never reads: the write times out, TCP is aborted, outcome 1006."""
    peer = await RawPeer.connect(app.port, "/ws/flood")
    await app.idle()
    assert app.sessions[0].closed == Closed(Ending.WRITE_TIMEOUT, 1006, "write timeout")
    await peer.vanish()


async def test_message_too_big_gives_1009(app: App) -> None:
    """A message over max_message_size closes with 1009."""
    code, _ = await client_close(app, "/ws/echo", b"x" * (CONFIG.max_message_size + 1))
    assert code == 1009


async def test_wrong_type_on_text_route_gives_1003(app: App) -> None:
    """Binary sent to a text-only route closes with 1003."""
    assert await client_close(app, "/ws/text", b"binary") == (1003, "unsupported data")


async def test_unknown_path_is_refused_404(app: App) -> None:
    """A WebSocket handshake for an unknown path gets 404."""
    with pytest.raises(InvalidStatus) as info:
        async with connect(app.url("/nowhere")):
            pass
    assert info.value.response.status_code == 404


async def test_200_connections_in_every_way_leave_no_task_or_fd(app: App) -> None:
    """200 connections ending in every way above leave no task or fd behind."""
    await app.idle()
    tasks, fds = task_names(), count_fds()

    async def silent_peer(path: str) -> None:
        peer = await RawPeer.connect(app.port, path)
        if path == "/ws/echo":
            await peer.vanish()  # peer vanishes
            return
        await peer.close_frame()  # keepalive timeout, or the abort after the flood
        await peer.vanish()

    ways = [
        functools.partial(client_close, app, "/ws/return"),
        functools.partial(client_close, app, "/ws/close?code=4000&reason=x"),
        functools.partial(client_close, app, "/ws/close?code=4001&how=raise"),
        functools.partial(client_close, app, "/ws/raise"),
        functools.partial(client_close, app, "/ws/echo", b"x" * 5000),
        functools.partial(client_close, app, "/ws/text", b"bin"),
        functools.partial(silent_peer, "/ws/echo"),
        functools.partial(silent_peer, "/ws/flood"),
    ]
    with trio.fail_after(60):
        for start in range(0, 200, 50):  # 50 at a time
            async with trio.open_nursery() as nursery:
                for i in range(start, start + 50):
                    nursery.start_soon(ways[i % len(ways)])
        await app.idle()
    assert len(app.sessions) == 200
    endings = {s.closed.ending for s in app.sessions if s.closed}
    assert len(endings) >= 7
    assert task_names() == tasks
    assert count_fds() == fds


@pytest.mark.parametrize(
    ("frame", "code"),
    [(b"\x81\x02hi", 1002), (b"\x83\x80abcd", 1002), (b"\x81\x82\x00\x00\x00\x00\xff\xfe", 1007)],
    ids=["unmasked", "bad-opcode", "bad-utf8"],
)
async def test_protocol_errors_are_recorded_and_cost_nothing(
    app: App, frame: bytes, code: int
) -> None:
    """Unparseable frames: the peer gets a 1002/1007 close frame; the server carries on."""
    peer = await RawPeer.connect(app.port)
    await peer.stream.send_all(frame)
    with trio.fail_after(5):
        received = await peer.close_frame()
    assert received is not None and received[0] == code
    await peer.vanish()
    await app.idle()
    closed = app.sessions[0].closed
    assert closed is not None and (closed.ending, closed.code) == (Ending.PROTOCOL_ERROR, code)
    async with connect(app.url("/ws/echo")) as ws:
        await ws.send("still here")
        assert await ws.recv() == "still here"


async def test_ping_crossing_our_close_is_contained(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """A ping that crosses our close frame (trio-websocket fails on it) costs one socket."""
    peer = await RawPeer.connect(app.port, "/ws/close?code=4000&reason=x")
    with trio.fail_after(5):
        assert await peer.close_frame() == (4000, "x")
    await peer.stream.send_all(b"\x89\x80\x00\x00\x00\x00")  # a masked, empty ping
    await app.idle()
    await peer.vanish()
    assert app.server.statistics().closes_by_code == {4000: 1}
    assert "bug" not in caplog.text
