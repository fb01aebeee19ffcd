"""``frame_timeout`` (a frame that starts and never finishes) and TCP keepalive.

The frame clock is checked against a model of the byte stream (Hypothesis), then
end to end: over in-memory streams on ``autojump_clock`` (timing exact, in virtual
time) for both engines, and over 127.0.0.1 with a real clock. Keepalive is read
back from the sockets the server accepted.
"""

from __future__ import annotations

import functools
import itertools
import socket
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from rawhttp import upgrade
from websockets.trio.client import connect

import wstrio
from wstrio import Ending
from wstrio._conn.transport import ConnectionInfo, TransportClosed
from wstrio._wire.frameclock import FrameClock
from wstrio._wire.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    encode,
)
from wstrio._wire.native import NativeTransport
from wstrio._wire.streams import KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, keepalive_options
from wstrio.testing import memory_stream_pair

# -- the clock against a model -----------------------------------------------------------

#: A frame as (opcode, FIN, payload length); sequences below are valid fragmentations.
Frame = tuple[int, bool, int]

controls = st.tuples(st.sampled_from([OP_PING, OP_PONG]), st.just(True), st.integers(0, 125))
lengths = st.one_of(st.integers(0, 130), st.sampled_from([125, 126, 65535, 65536, 70000]))


@st.composite
def messages(draw: st.DrawFn) -> list[Frame]:
    """One data message, whole or in fragments, with control frames between fragments."""
    count = draw(st.integers(1, 4))
    frames: list[Frame] = []
    for n in range(count):
        opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY])) if n == 0 else OP_CONTINUATION
        frames.append((opcode, n == count - 1, draw(lengths)))
        if n < count - 1:
            frames += draw(st.lists(controls, max_size=2))
    return frames


def encoded(frames: list[Frame], *, masked: bool) -> tuple[bytes, list[bool]]:
    """The stream's bytes, and for each position 0..len whether it lies between messages."""
    data = b""
    idle = [True]
    fragmented = False
    for opcode, fin, length in frames:
        frame = encode(opcode, b"\x00" * length, fin=fin, mask=masked)
        if opcode != OP_CONTINUATION and opcode < 0x8:
            fragmented = not fin
        elif opcode == OP_CONTINUATION and fin:
            fragmented = False
        idle += [False] * (len(frame) - 1) + [not fragmented]
        data += frame
    return data, idle


@settings(max_examples=200, deadline=None)
@given(
    stream=st.lists(st.one_of(messages(), st.lists(controls, min_size=1, max_size=1)),
                    min_size=1, max_size=5),
    cuts=st.lists(st.integers(0, 300_000), max_size=12),
    masked=st.booleans(),
)  # fmt: skip
def test_clock_follows_any_chunking(
    stream: list[list[Frame]], cuts: list[int], masked: bool
) -> None:
    """However the bytes are cut, the clock is busy exactly inside a frame or a fragmented
    message, and resets its time exactly when the stream was between messages during the
    chunk (so what is unfinished at its end started in it)."""
    data, idle = encoded([frame for message in stream for frame in message], masked=masked)
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    clock = FrameClock(5.0)
    for start, end in itertools.pairwise(points):
        clock.left = -1.0  # used up: only a reset brings it back
        clock.feed(data[start:end])
        assert clock.busy is not idle[end], (start, end)
        if clock.busy:
            assert (clock.left == 5.0) is any(idle[start : end + 1]), (start, end)


def test_a_header_split_anywhere_is_followed() -> None:
    """A 14-byte header (64-bit length, mask) fed a byte at a time, then its payload."""
    frame = encode(OP_BINARY, b"x" * 70000, mask=True)
    clock = FrameClock(1.0)
    for n in range(14):
        clock.feed(frame[n : n + 1])
        assert clock.busy
    clock.feed(frame[14:-1])
    assert clock.busy
    clock.feed(frame[-1:])
    assert not clock.busy


# -- end to end, in virtual time ---------------------------------------------------------


@attrs.define
class RawClient:
    """A client that writes frames by hand (masked) and reads the server's (small ones)."""

    stream: trio.abc.Stream
    buffer: bytes = b""

    @classmethod
    async def handshake(cls, stream: trio.abc.Stream, path: str = "/e") -> RawClient:
        client = cls(stream)
        await stream.send_all(upgrade(path))
        while b"\r\n\r\n" not in client.buffer:
            client.buffer += await stream.receive_some(65536)
        head, _, client.buffer = client.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return client

    async def send(self, opcode: int, payload: bytes = b"", *, fin: bool = True) -> None:
        await self.stream.send_all(encode(opcode, payload, fin=fin, mask=True))

    async def next_frame(self) -> tuple[int, bytes] | None:
        """The server's next frame (opcode, payload), or None at the end of the stream."""
        while True:
            if len(self.buffer) >= 2:
                length = self.buffer[1] & 0x7F
                assert length < 126, "only small frames are expected here"
                if len(self.buffer) >= 2 + length:
                    frame = self.buffer[0] & 0x0F, self.buffer[2 : 2 + length]
                    self.buffer = self.buffer[2 + length :]
                    return frame
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
            if not data:
                return None
            self.buffer += data

    async def close_frame(self) -> tuple[int, str]:
        """Skip to the server's close frame: its code and reason."""
        for _ in range(1000):
            frame = await self.next_frame()
            assert frame is not None, "the stream ended without a close frame"
            opcode, payload = frame
            if opcode == OP_CLOSE:
                return int.from_bytes(payload[:2], "big"), payload[2:].decode()
        raise AssertionError("no close frame")


async def echo(session: wstrio.Session) -> None:
    async for message in session:
        await session.send(message)


def config_for(engine: str, **fields: Any) -> wstrio.Config:
    return wstrio.Config(engine=engine, compression=None, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", [1, 2, 9])
async def test_an_unfinished_frame_closes_with_1008(
    engine: str, cut: int, autojump_clock: trio.testing.MockClock
) -> None:
    """A frame cut after ``cut`` bytes (its header, or into its payload) and never finished:
    1008 "frame timeout" exactly frame_timeout later, though the heartbeat is off."""
    config = config_for(engine, ping_interval=None, frame_timeout=7)
    async with wstrio.testing.open_memory_server({"/e": echo}, config=config) as server:
        client = await RawClient.handshake(await server.open_stream())
        await client.send(OP_TEXT, b"hi")
        assert await client.next_frame() == (OP_TEXT, b"hi")
        started = trio.current_time()
        await client.stream.send_all(encode(OP_TEXT, b"x" * 100, mask=True)[:cut])
        assert await client.close_frame() == (1008, "frame timeout")
        assert trio.current_time() - started == pytest.approx(7)
        assert await client.next_frame() is None  # the server closed TCP: it reads no more
        await server.wait_idle()
        stats = server.statistics()
        assert (stats.frame_timeouts, stats.closes_by_code) == (1, {1008: 1})


@pytest.mark.parametrize("frame_timeout", [10.0, None])
async def test_a_fragmented_message_is_bounded_despite_pongs(
    engine: str, frame_timeout: float | None, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that answers every ping and sends one more fragment after it satisfies the
    heartbeat for ever; frame_timeout ends it 10 s after the first fragment (1008). Without
    it, the message is still being sent after 15 pings, then completes and is echoed."""
    config = config_for(engine, ping_interval=4, ping_timeout=2, frame_timeout=frame_timeout)
    async with wstrio.testing.open_memory_server({"/e": echo}, config=config) as server:
        client = await RawClient.handshake(await server.open_stream())
        started = trio.current_time()
        await client.send(OP_TEXT, b"a", fin=False)
        pings = 0
        while pings < 15:
            frame = await client.next_frame()
            assert frame is not None
            opcode, payload = frame
            if opcode == OP_CLOSE:
                break
            assert opcode == OP_PING
            pings += 1
            await client.send(OP_PONG, payload)
            await client.send(OP_CONTINUATION, b"b", fin=False)
        if frame_timeout is not None:
            assert opcode == OP_CLOSE and payload == b"\x03\xf0frame timeout"
            assert trio.current_time() - started == pytest.approx(10) and pings == 2
        else:
            assert pings == 15 and trio.current_time() - started == pytest.approx(60)
            await client.send(OP_CONTINUATION, b"c")
            assert await client.next_frame() == (OP_TEXT, b"a" + b"b" * 15 + b"c")
            assert server.statistics().frame_timeouts == 0


async def test_time_with_a_full_inbox_does_not_count(
    engine: str, autojump_clock: trio.testing.MockClock
) -> None:
    """While the handler does not read and the inbox is full, wstrio stops reading: a frame
    under way then has all its time once reading resumes, however long the pause was."""
    release = trio.Event()
    sessions: list[wstrio.Session] = []

    async def slow(session: wstrio.Session) -> None:
        sessions.append(session)
        await release.wait()
        async for _ in session:
            pass

    config = config_for(engine, ping_interval=None, inbox_size=1, frame_timeout=5)
    async with wstrio.testing.open_memory_server({"/e": slow}, config=config) as server:
        client = await RawClient.handshake(await server.open_stream())
        burst = b"".join(encode(OP_BINARY, b"m", mask=True) for _ in range(4))
        await client.stream.send_all(burst + encode(OP_BINARY, b"z" * 50, mask=True)[:20])
        await trio.sleep(100)  # virtual: the pause the peer is not to blame for
        assert sessions[0].closed is None and server.statistics().frame_timeouts == 0
        resumed = trio.current_time()
        release.set()
        assert await client.close_frame() == (1008, "frame timeout")
        assert trio.current_time() - resumed == pytest.approx(5)


# -- over 127.0.0.1 ----------------------------------------------------------------------


async def test_frame_timeout_over_loopback(engine: str, nursery: trio.Nursery) -> None:
    """A real server: a frame cut short gets 1008 "frame timeout", counted in /metrics."""
    server = wstrio.Server({"/e": echo}, config=config_for(engine, frame_timeout=0.2))
    port = await nursery.start(functools.partial(server.run, port=0))
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            client = await RawClient.handshake(stream)
            await stream.send_all(encode(OP_BINARY, b"y" * 1000, mask=True)[:500])
            assert await client.close_frame() == (1008, "frame timeout")
        await server.wait_idle()
        metrics = await http_metrics(port)
    assert metrics["wstrio_frame_timeouts_total"] == 1
    assert metrics['wstrio_closes_total{code="1008"}'] == 1


async def http_metrics(port: int) -> dict[str, float]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    response = b""
    async with stream:
        await stream.send_all(request)
        while chunk := await stream.receive_some(65536):
            response += chunk
    text = response.partition(b"\r\n\r\n")[2].decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return samples


class RecordingListener(trio.abc.Listener[trio.SocketStream]):
    """A TCP listener that keeps each stream it accepts, for the test to inspect."""

    def __init__(self, inner: trio.SocketListener) -> None:
        self.inner = inner
        self.accepted: list[trio.SocketStream] = []

    async def accept(self) -> trio.SocketStream:
        stream = await self.inner.accept()
        self.accepted.append(stream)
        return stream

    async def aclose(self) -> None:
        await self.inner.aclose()


async def serve_recording(
    nursery: trio.Nursery, config: wstrio.Config
) -> tuple[int, RecordingListener]:
    (inner,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = RecordingListener(inner)
    server = wstrio.Server({"/e": echo}, config=config)
    await nursery.start(functools.partial(server.serve_listeners, [listener]))
    return inner.socket.getsockname()[1], listener


@pytest.mark.skipif(not hasattr(socket, "TCP_KEEPIDLE"), reason="Linux's TCP options")
async def test_accepted_sockets_have_tcp_keepalive(nursery: trio.Nursery) -> None:
    """SO_KEEPALIVE after tcp_keepalive seconds (rounded up), 3 probes 10 s apart, and
    TCP_USER_TIMEOUT of the same total: a half-open peer is gone within tcp_keepalive + 30 s."""
    port, listener = await serve_recording(nursery, wstrio.Config(tcp_keepalive=44.5))
    async with connect(f"ws://127.0.0.1:{port}/e") as ws:
        await ws.send("x")
        assert await ws.recv() == "x"
        sock = listener.accepted[0].socket
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 45
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == KEEPALIVE_INTERVAL
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_PROBES
        user_timeout = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
        assert user_timeout == (45 + 30) * 1000


async def test_tcp_keepalive_none_leaves_it_off(nursery: trio.Nursery) -> None:
    """tcp_keepalive=None: the accepted socket keeps the kernel's default (no keepalive)."""
    port, listener = await serve_recording(nursery, wstrio.Config(tcp_keepalive=None))
    async with connect(f"ws://127.0.0.1:{port}/e") as ws:
        await ws.send("x")
        assert await ws.recv() == "x"
        sock = listener.accepted[0].socket
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0


def test_keepalive_options_round_up_to_whole_seconds() -> None:
    """A fraction of a second becomes 1 s; the options are all set together."""
    options = {(level, option): value for level, option, value in keepalive_options(0.2)}
    assert options[socket.SOL_SOCKET, socket.SO_KEEPALIVE] == 1
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        assert options[socket.IPPROTO_TCP, socket.TCP_KEEPIDLE] == 1
        assert options[socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT] == 31_000
    assert Ending.FRAME_TIMEOUT.value == "frame timeout"


async def test_a_native_client_bounds_the_servers_frames(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """On a client the native engine times the server's frames too: a frame cut short ends
    the connection with FRAME_TIMEOUT, and the client's close frame (masked) says 1008."""
    server_end, client_end = memory_stream_pair()
    transport = NativeTransport(
        client_end, ConnectionInfo(), wstrio.Config(frame_timeout=3), client=True
    )
    late = encode(OP_TEXT, b"z" * 40)
    await server_end.send_all(encode(OP_TEXT, b"whole") + late[:10])
    assert await transport.receive() == "whole"
    started = trio.current_time()
    with pytest.raises(TransportClosed) as info:
        await transport.receive()
    assert (info.value.ending, info.value.code, info.value.reason) == (
        Ending.FRAME_TIMEOUT, 1008, "frame timeout"
    )
    assert trio.current_time() - started == pytest.approx(3)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(transport.close, 1008, "frame timeout")
            frame = await server_end.receive_some(65536)
            assert frame[0] == 0x80 | OP_CLOSE and frame[1] & 0x80  # a client masks
            code = bytes(a ^ b for a, b in zip(frame[6:8], frame[2:4], strict=True))
            assert code == b"\x03\xf0"  # 1008
            await server_end.send_all(late[10:] + encode(OP_CLOSE, code))  # then its reply
