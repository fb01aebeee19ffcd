"""The native transport's own rules, over in-memory streams: pongs owed, pings outlived by the
connection, and the echo of a peer's close that the writer did not get to send."""

from __future__ import annotations

import socket

import pytest
import trio
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side

import wstrio
from wstrio._conn.transport import ConnectionInfo, TransportClosed
from wstrio._wire.native import NativeTransport
from wstrio.testing import memory_stream_pair


def client_frame(opcode: Opcode, data: bytes) -> bytes:
    return Frame(opcode, data).serialize(mask=True, extensions=[])


def server_side() -> tuple[object, NativeTransport]:
    client, server = memory_stream_pair()
    return client, NativeTransport(server, ConnectionInfo(), wstrio.Config())


def read_frames(data: bytes) -> list[Frame]:
    peer = Protocol(Side.CLIENT, max_size=None)
    peer.receive_data(data)
    return [event for event in peer.events_received() if isinstance(event, Frame)]


async def test_a_ping_flood_owes_a_bounded_number_of_pongs() -> None:
    """1,000 pings before the writer runs leave the 16 latest pongs to send (5.5.3)."""
    client, transport = server_side()
    wakes: list[None] = []
    transport.set_writer_wakeup(lambda: wakes.append(None))
    pings = b"".join(client_frame(Opcode.PING, b"%d" % n) for n in range(1000))
    await client.send_all(pings + client_frame(Opcode.TEXT, b"then a message"))  # type: ignore[attr-defined]
    assert await transport.receive() == "then a message"
    await transport.send_many([])
    frames = read_frames(await client.receive_some(65536))  # type: ignore[attr-defined]
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.PONG, b"%d" % n) for n in range(984, 1000)
    ]
    assert wakes


async def test_a_ping_outlived_by_the_connection_raises() -> None:
    """A ping waiting for its pong learns at once that the peer closed: TransportClosed."""
    client, transport = server_side()
    transport.set_writer_wakeup(lambda: None)
    outcome: list[object] = []

    async def ping() -> None:
        try:
            await transport.ping()
        except TransportClosed as exc:
            outcome.append((exc.ending, exc.code))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ping)  # waits; must end when the connection does
        await trio.testing.wait_all_tasks_blocked()
        close = client_frame(Opcode.CLOSE, Close(1000, "").serialize())
        await client.send_all(close)  # type: ignore[attr-defined]
        with trio.fail_after(1):
            reader = trio.Event()

            async def read() -> None:
                with pytest.raises(TransportClosed):
                    await transport.receive()
                reader.set()

            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            await transport.send_many([])  # the writer sends the echo: the reader may end
            await reader.wait()
    assert outcome == [(wstrio.Ending.PEER_CLOSED, 1000)]


async def test_close_sends_the_echo_the_writer_never_sent() -> None:
    """The peer's close arrived but the writer stopped first: close() still echoes it."""
    client, transport = server_side()
    transport.set_writer_wakeup(lambda: None)
    close = client_frame(Opcode.CLOSE, Close(1000, "bye").serialize())
    await client.send_all(close + client_frame(Opcode.TEXT, b"ignored"))  # type: ignore[attr-defined]
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            async def read() -> None:
                with pytest.raises(TransportClosed):
                    await transport.receive()

            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            ended = await transport.close(1001, "going away")  # no writer ever ran
    assert ended is not None and (ended.code, ended.reason) == (1000, "bye")
    frames = read_frames(await client.receive_some(65536))  # type: ignore[attr-defined]
    assert [(f.opcode, Close.parse(f.data).code) for f in frames] == [(Opcode.CLOSE, 1000)]


async def test_write_now_leaves_what_the_socket_refuses_for_the_writer() -> None:
    """A frame the socket takes in part is finished by the next send_many, before anything
    else; meanwhile write_now refuses, and the peer reads every message whole and in order."""
    left, right = trio.socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server_stream, client_stream = trio.SocketStream(left), trio.SocketStream(right)
    transport = NativeTransport(server_stream, ConnectionInfo(), wstrio.Config(compression=None))
    wakes: list[None] = []
    transport.set_writer_wakeup(lambda: wakes.append(None))
    big = bytes(range(256)) * 4096  # 1 MiB: more than the socket buffers hold
    assert transport.writes_now
    assert transport.write_now(big)
    assert wakes, "the writer is woken for the tail"
    assert not transport.write_now("queued instead")
    received = bytearray()

    async def read_all(expected: int) -> None:
        while len(received) < expected:
            received.extend(await client_stream.receive_some(65536))

    frame_bytes = 10 + len(big) + 2 + len("after")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all, frame_bytes)
            await transport.send_many(["after"])
    frames = read_frames(bytes(received))
    assert [(f.opcode, f.data) for f in frames] == [(Opcode.BINARY, big), (Opcode.TEXT, b"after")]
    assert transport.write_now("direct again")  # the tail is out: direct writes resume
    await server_stream.aclose()
    await client_stream.aclose()


async def test_write_now_is_off_on_a_stream_that_is_not_a_plain_socket() -> None:
    """Only a plain socket can be written without a task (not TLS, not a memory stream)."""
    _, transport = server_side()
    assert not transport.writes_now
    assert not transport.write_now("no")
