"""A whole client byte stream (the upgrade request, then frames) split into any chunks: the
server reads the same messages and closes the same way as from the unsplit stream.

It runs the real server (HTTP front, native engine, supervisor) over wstrio.testing's
in-memory streams on Trio's MockClock, one ``trio.run`` per example.
"""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from rawhttp import upgrade
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side

import wstrio
from wstrio.testing import open_memory_server


def client_frames(messages: list[str | bytes], cuts: list[int]) -> bytes:
    data = b""
    for n, message in enumerate(messages):
        payload = message.encode() if isinstance(message, str) else message
        opcode = Opcode.TEXT if isinstance(message, str) else Opcode.BINARY
        cut = min(cuts[n % len(cuts)] if cuts else 0, len(payload))
        if 0 < cut < len(payload):
            data += Frame(opcode, payload[:cut], fin=False).serialize(mask=True, extensions=[])
            data += Frame(Opcode.PING, b"between").serialize(mask=True, extensions=[])
            data += Frame(Opcode.CONT, payload[cut:]).serialize(mask=True, extensions=[])
        else:
            data += Frame(opcode, payload).serialize(mask=True, extensions=[])
    close = Close(4000, "done").serialize()
    return data + Frame(Opcode.CLOSE, close).serialize(mask=True, extensions=[])


async def deliver(stream_bytes: bytes, sizes: list[int]) -> tuple[list[object], int | None]:
    """Send the stream in ``sizes`` chunks; (what the handler read, the close code echoed)."""
    received: list[object] = []

    async def record(session: wstrio.Session) -> None:
        async for message in session:
            received.append(message)

    async with open_memory_server({"/ws/echo": record}) as server:
        stream = await server.open_stream()
        at = 0
        for size in [*sizes, len(stream_bytes)]:
            if at >= len(stream_bytes):
                break
            await stream.send_all(stream_bytes[at : at + size])
            at += size
        reply = b""
        while chunk := await stream.receive_some(65536):
            reply += chunk
    head, _, frames = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    peer = Protocol(Side.CLIENT, max_size=None)
    peer.receive_data(frames)
    peer.receive_eof()
    return received, peer.close_rcvd.code if peer.close_rcvd else None


@settings(max_examples=40, deadline=None)
@given(
    messages=st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=2000)), max_size=5),
    cuts=st.lists(st.integers(0, 300), max_size=3),
    sizes=st.lists(st.integers(1, 400), max_size=30),
)
def test_any_split_of_the_client_stream_reads_the_same(
    messages: list[str | bytes], cuts: list[int], sizes: list[int]
) -> None:
    """However the bytes are chunked: the same messages, in order, and the close echoed."""
    stream_bytes = upgrade() + client_frames(messages, cuts)
    whole = trio.run(deliver, stream_bytes, [], clock=trio.testing.MockClock(autojump_threshold=0))
    split = trio.run(
        deliver, stream_bytes, sizes, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    assert whole == split == (messages, 4000)
