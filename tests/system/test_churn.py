"""Churn: many connections ending in every way a public server sees, and afterwards nothing
left behind: open file descriptors, Trio tasks and ``statistics()`` back where they started,
and memory within a bound. A reduced count here; ``python -m bench.churn`` runs 10,000."""

from __future__ import annotations

import functools
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trustme
from helpers import count_fds, task_names

import wstrio

CONFIG = wstrio.Config(
    ping_interval=None,
    handshake_timeout=2.0,
    close_timeout=0.5,
    write_timeout=0.3,
    socket_send_buffer=4096,
)
UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def echo(session: wstrio.Session) -> None:
    async for message in session:
        await session.send(message)


async def bye(session: wstrio.Session) -> None:
    """The server ends the session cleanly: 1000 from its side."""


async def boom(session: wstrio.Session) -> None:
    raise RuntimeError("a handler bug")  # the session gets 1011; the server goes on


async def flood(session: wstrio.Session) -> None:
    """Send until the peer stops reading and the write timeout ends the session."""
    while True:
        await session.send(b"x" * 65536)


ROUTES = {"/ws/echo": echo, "/ws/bye": bye, "/ws/boom": boom, "/ws/flood": flood}


@attrs.frozen
class Servers:
    plain: wstrio.Server
    port: int
    tls: wstrio.Server
    tls_port: int

    async def idle(self) -> None:
        with trio.fail_after(15):
            await self.plain.wait_idle()
            await self.tls.wait_idle()


@asynccontextmanager
async def open_servers() -> AsyncIterator[Servers]:
    """A plain and a TLS server for ROUTES on free ports (bench/churn.py uses it too)."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    plain, tls = wstrio.Server(ROUTES, config=CONFIG), wstrio.Server(ROUTES, config=CONFIG)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(functools.partial(plain.run, port=0))
        tls_port = await nursery.start(functools.partial(tls.run, port=0, ssl_context=context))
        yield Servers(plain, port, tls, tls_port)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    async with open_servers() as both:
        yield both


async def upgraded(port: int, path: str) -> trio.SocketStream:
    """A raw connection past the 101 (the head read, nothing more)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(UPGRADE.format(path=path).encode())
    head = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some(4096)
            assert chunk, head
            head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return stream


async def until_closed(stream: trio.SocketStream) -> None:
    """Read and drop until the server closes (bounded)."""
    with trio.fail_after(10):
        while await stream.receive_some(65536):
            pass
    await stream.aclose()


async def client_closes(s: Servers) -> None:
    async with wstrio.connect(f"ws://127.0.0.1:{s.port}/ws/echo") as ws:
        await ws.send("hello")
        assert await ws.receive() == "hello"


async def server_closes(s: Servers) -> None:
    async with wstrio.connect(f"ws://127.0.0.1:{s.port}/ws/bye") as ws:
        with pytest.raises(wstrio.ConnectionClosed) as closed, trio.fail_after(5):
            await ws.receive()
        assert closed.value.code == 1000


async def handler_raises(s: Servers) -> None:
    async with wstrio.connect(f"ws://127.0.0.1:{s.port}/ws/boom") as ws:
        with pytest.raises(wstrio.ConnectionClosed) as closed, trio.fail_after(5):
            await ws.receive()
        assert closed.value.code == 1011


async def reset(s: Servers) -> None:
    """RST after the upgrade: SO_LINGER with a zero timeout, then close."""
    stream = await upgraded(s.port, "/ws/echo")
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


async def eof_mid_frame(s: Servers) -> None:
    """Half a frame header, then FIN."""
    stream = await upgraded(s.port, "/ws/echo")
    await stream.send_all(b"\x81\xfe\x01")  # a masked text frame with a 16-bit length, cut
    await stream.send_eof()
    await until_closed(stream)


async def abandoned_handshake(s: Servers) -> None:
    """Half a request head, then FIN."""
    stream = await trio.open_tcp_stream("127.0.0.1", s.port)
    await stream.send_all(b"GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    await stream.send_eof()
    await until_closed(stream)


async def abandoned_tls_handshake(s: Servers) -> None:
    """The start of a TLS ClientHello, then FIN."""
    stream = await trio.open_tcp_stream("127.0.0.1", s.tls_port)
    await stream.send_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    await stream.send_eof()
    await until_closed(stream)


async def write_timeout(s: Servers) -> None:
    """A peer that never reads: the server's write times out and it aborts (1006)."""
    stream = await upgraded(s.port, "/ws/flood")
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with trio.fail_after(10):  # the server gives up on us: wait for its reset or FIN
        await _aborted(s, stream)


async def _aborted(s: Servers, stream: trio.SocketStream) -> None:
    """Wait, without reading, for the server to drop this session; then tidy up."""
    before = s.plain.statistics().closes_by_code.get(1006, 0)
    while s.plain.statistics().closes_by_code.get(1006, 0) == before:  # noqa: ASYNC110
        await trio.sleep(0.01)  # polls the server's counters
    await trio.aclose_forcefully(stream)


ROUNDS = 250  # each: one connection per way, and every tenth a write timeout too
WAYS: list[Callable[[Servers], Awaitable[None]]] = [
    client_closes,
    server_closes,
    handler_raises,
    reset,
    eof_mid_frame,
    abandoned_handshake,
    abandoned_tls_handshake,
]


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def churn(servers: Servers, rounds: int) -> None:
    with trio.fail_after(120):
        for round_ in range(rounds):
            async with trio.open_nursery() as nursery:
                for way in WAYS:
                    nursery.start_soon(way, servers)
                if round_ % 10 == 0:
                    nursery.start_soon(write_timeout, servers)
        await servers.idle()


async def test_churn_leaves_no_fd_task_or_state_behind(servers: Servers) -> None:
    """1,775 connections ending in eight ways (clean close either side, RST, EOF mid-frame,
    abandoned HTTP and TLS handshakes, a raising handler, a write timeout): afterwards fds,
    tasks and statistics are as before, and RSS grew less than 16 MiB past a warm-up."""
    await churn(servers, 25)  # warm-up: the allocator's arenas and caches grow once
    fds, tasks, rss = count_fds(), task_names(), rss_kib()
    before = servers.plain.statistics()
    await churn(servers, ROUNDS)
    after = servers.plain.statistics()
    assert (after.open_connections, after.handshakes) == (0, 0)
    assert after.connections_total - before.connections_total == ROUNDS * 5 + ROUNDS // 10
    closes = {
        code: n - before.closes_by_code.get(code, 0) for code, n in after.closes_by_code.items()
    }
    assert closes.get(1000) == 2 * ROUNDS and closes.get(1011) == ROUNDS
    assert count_fds() == fds
    assert task_names() == tasks
    assert rss_kib() - rss < 16 * 1024
