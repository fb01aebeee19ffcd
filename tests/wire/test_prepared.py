"""Encode once, send to many: a prepared message's frame is built once per variant and the
same bytes go to every connection that would send the same bytes."""

from __future__ import annotations

import trio

import wstrio
from wstrio._conn.transport import ConnectionInfo, Prepared
from wstrio._wire.deflate import Agreement, codecs_for, settings_of
from wstrio._wire.native import NativeTransport
from wstrio._wire.parser import Parser
from wstrio.testing import memory_stream_pair

CONFIG = wstrio.Config(compression_threshold=16)
FRESH = Agreement(12, 12, server_no_context_takeover=True)
KEEPS = Agreement(12, 12)


async def deliver(prepared: Prepared, agreement: Agreement | None) -> tuple[bytes, object]:
    """Send ``prepared`` from a server-side transport; (the bytes on the wire, what a client
    reading them gets)."""
    client, server = memory_stream_pair()
    transport = NativeTransport(server, ConnectionInfo(), CONFIG, deflate=agreement)
    await transport.send_many([prepared])
    wire = await client.receive_some(65536)
    inflater = None
    if agreement is not None:
        inflater = codecs_for(agreement, settings_of(CONFIG), client=True)[1]
    parser = Parser(client=True, max_message_size=2**20, inflater=inflater)
    parser.feed(wire)
    return wire, parser.take()


async def test_members_that_send_the_same_bytes_share_one_frame() -> None:
    """Two compressing connections without context takeover get identical bytes from one
    build; a plain one gets the plain frame; a connection keeping context compresses its own."""
    text = "tick " * 400
    prepared = Prepared(text)
    fresh_a, read_a = await deliver(prepared, FRESH)
    fresh_b, read_b = await deliver(prepared, FRESH)
    assert fresh_a == fresh_b and fresh_a[0] & 0x40  # RSV1: compressed
    assert prepared.encodings == 1
    plain, read_plain = await deliver(prepared, None)
    assert prepared.encodings == 2 and not plain[0] & 0x40
    keeps, read_keeps = await deliver(prepared, KEEPS)
    assert keeps[0] & 0x40  # compressed, by its own compressor
    assert prepared.encodings == 2  # its compressor's context is its own: not shared
    assert read_a == read_b == read_plain == read_keeps == [text]
    assert len(fresh_a) < len(plain) // 10


async def test_short_messages_go_uncompressed_and_binary_stays_binary() -> None:
    """Below the threshold the plain frame is shared even where compression was agreed."""
    short = Prepared(b"\x01\x02")
    wire, read = await deliver(short, FRESH)
    assert not wire[0] & 0x40 and read == [b"\x01\x02"]
    _, read_plain = await deliver(short, None)
    assert short.encodings == 1 and read_plain == [b"\x01\x02"]


async def test_a_room_broadcast_reaches_compressing_members_unchanged(
    nursery: trio.Nursery,
) -> None:
    """Over 127.0.0.1: members with and without compression all read every broadcast."""
    hub = wstrio.Hub()
    joined = trio.Semaphore(0)

    async def member(session: wstrio.Session) -> None:
        hub.room("r").join(session)
        joined.release()
        async for message in session:
            hub.room("r").broadcast(message)

    config = wstrio.Config(compression_context_takeover=False)
    port = await nursery.start(
        lambda task_status: wstrio.serve({"/r": member}, port=0, config=config,
                                         task_status=task_status)
    )  # fmt: skip
    url = f"ws://127.0.0.1:{port}/r"
    async with wstrio.connect(url) as a, wstrio.connect(
        url, config=wstrio.Config(compression=None)
    ) as b:
        for _ in range(2):
            await joined.acquire()
        await a.send("hello room " * 50)
        assert await a.receive() == "hello room " * 50
        assert await b.receive() == "hello room " * 50
