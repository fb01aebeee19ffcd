"""Chunking invariance: a valid byte stream split anywhere, in any chunk sizes, reads exactly
as the unsplit stream does: the same messages, pings, pongs and close.

Valid streams are written by the ``websockets`` package (frames, and permessage-deflate with
any window and context takeover), never by wstrio. Three seams are fuzzed:

* the sans-I/O parser (``wstrio._wire.parser.Parser``), for both directions (masked frames
  read by a server, unmasked ones read by a client), compressed or not;
* the whole server (HTTP front, h11, native engine, supervisor) over wstrio.testing's
  in-memory streams: the upgrade request and the frames after it, each chunk read by the
  server before the next is sent;
* the whole client (``wstrio.connect`` with an opener): a scripted server's 101 and frames,
  chunked the same way.
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Sequence

import attrs
import trio
import trio.testing
from fuzzkit import (
    KEY,
    SENDABLE,
    accept_of,
    budget,
    chunked,
    deflater,
    example,
    messages,
    read_frames,
    split_head,
    ws_frame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Opcode

import wstrio
from wstrio._wire.deflate import Inflater
from wstrio._wire.frames import OP_PING, OP_PONG
from wstrio._wire.parser import CloseFrame, Control, Parser
from wstrio.testing import memory_stream_pair, open_memory_server

_OPCODES = {OP_PING: Opcode.PING, OP_PONG: Opcode.PONG}


@attrs.frozen
class Plan:
    """Frames one side sends, and what the other side must read from them."""

    data: bytes
    expected: list[object]  # str and bytes messages, Control (pings, pongs), CloseFrame
    bits: int | None  # the sender's compression window, None when nothing is compressed
    fresh: bool  # the sender compresses each message afresh (no context takeover)

    @property
    def messages(self) -> list[object]:
        return [event for event in self.expected if isinstance(event, str | bytes)]

    @property
    def pings(self) -> list[bytes]:
        return [e.payload for e in self.expected if isinstance(e, Control) and e.opcode == OP_PING]

    @property
    def close(self) -> CloseFrame | None:
        closes = [event for event in self.expected if isinstance(event, CloseFrame)]
        return closes[0] if closes else None


controls = st.tuples(st.sampled_from([OP_PING, OP_PONG]), st.binary(max_size=125))
close_reasons = st.text(max_size=40).filter(lambda reason: len(reason.encode()) <= 123)
chunk_sizes = st.one_of(
    st.lists(st.integers(1, 7), min_size=1, max_size=8),  # a few bytes at a time
    st.lists(st.integers(1, 3000), min_size=1, max_size=8),
    st.just([1]),  # byte by byte
)


@st.composite
def plans(
    draw: st.DrawFn, *, masked: bool, bits: Sequence[int] | None, fresh: bool = False
) -> Plan:
    """A stream of up to five items (messages, fragmented at random with pings and pongs
    between fragments; lone pings and pongs), maybe compressed with a window from ``bits``
    (None: not negotiated; ``fresh``: each message compressed afresh, as agreed), then a
    close frame or none, then maybe bytes after the close (which must be ignored). At most
    10 pings: an endpoint owes at most 16 pongs."""
    window = draw(st.sampled_from(bits)) if bits else None
    fresh = fresh or draw(st.booleans())
    deflate = deflater(window, fresh=fresh) if window is not None else None
    data, expected = b"", []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.integers(0, 3)) == 0:
            opcode, payload = draw(controls)
            data += ws_frame(_OPCODES[opcode], payload, mask=masked)
            expected.append(Control(opcode, payload))
            continue
        message = draw(messages)
        payload = message.encode() if isinstance(message, str) else message
        compress = deflate is not None and draw(st.booleans())
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=2)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            opcode = Opcode.TEXT if isinstance(message, str) else Opcode.BINARY
            opcode = Opcode.CONT if n else opcode
            data += ws_frame(
                opcode, piece, fin=last, mask=masked, deflate=deflate if compress else None
            )
            if not last and draw(st.booleans()):
                control, body = draw(controls)
                data += ws_frame(_OPCODES[control], body, mask=masked)
                expected.append(Control(control, body))
        expected.append(message)
    ending = draw(st.sampled_from(["close", "empty close", "none"]))
    if ending == "close":
        code, reason = draw(st.sampled_from((*SENDABLE, 3000, 4999))), draw(close_reasons)
        payload = struct.pack("!H", code) + reason.encode()
        data += ws_frame(Opcode.CLOSE, payload, mask=masked)
        expected.append(CloseFrame(code, reason, payload))
    elif ending == "empty close":
        data += ws_frame(Opcode.CLOSE, b"", mask=masked)
        expected.append(CloseFrame(1005, "", b""))
    if ending != "none":
        data += draw(st.binary(max_size=20))  # after a close: discarded, never parsed
    return Plan(data, expected, window, fresh)


# -- the parser ------------------------------------------------------------------------------
def parse(plan: Plan, pieces: list[bytes], *, client: bool, bits: int, fresh: bool) -> list[object]:
    inflater = Inflater(bits, fresh=fresh) if plan.bits is not None else None
    parser = Parser(client=client, max_message_size=2**20, inflater=inflater)
    events: list[object] = []
    for piece in pieces:
        parser.feed(piece)
        events += parser.take()
    assert parser.failure is None
    assert parser.done is (plan.close is not None)
    return events


@st.composite
def parser_cases(draw: st.DrawFn) -> tuple[bool, Plan, int, bool]:
    """(client side?, the plan, the reader's window bits and whether it starts afresh): the
    reader's window is at least the sender's; it starts afresh only if the sender does."""
    client = draw(st.booleans())
    plan = draw(plans(masked=not client, bits=draw(st.sampled_from([None, range(9, 16)]))))
    bits = draw(st.integers(plan.bits or 9, 15))
    fresh = plan.fresh and draw(st.booleans())
    return client, plan, bits, fresh


@settings(max_examples=budget(400), deadline=5000)
@given(case=parser_cases(), sizes=chunk_sizes)
def test_the_parser_reads_any_chunking_of_a_valid_stream_the_same(
    case: tuple[bool, Plan, int, bool], sizes: list[int]
) -> None:
    """Server or client side, compressed or not: every chunking gives the unsplit events."""
    client, plan, bits, fresh = case
    side = "client" if client else "server"
    with example(f"chunking: parser ({side} side)"):
        whole = parse(plan, [plan.data], client=client, bits=bits, fresh=fresh)
        split = parse(plan, chunked(plan.data, sizes), client=client, bits=bits, fresh=fresh)
        assert whole == split == plan.expected


# -- the server, end to end ------------------------------------------------------------------
#: At most this many pieces end to end (each is a round of the scheduler); the last takes the rest.
PIECES = 300
SERVER_CONFIG = wstrio.Config(ping_interval=None, max_message_size=2**20)


@st.composite
def upgrade_requests(draw: st.DrawFn) -> tuple[bytes, list[int] | None, bool]:
    """A valid upgrade request (headers in any order and case, ``Connection`` with other
    tokens), maybe offering permessage-deflate; the windows the client may then use (None:
    not offered), and whether it promised to compress each message afresh."""
    headers = [
        ("Host", "wstrio.test"),
        ("Upgrade", draw(st.sampled_from(["websocket", "WebSocket", "WEBSOCKET"]))),
        ("Connection", draw(st.sampled_from(["Upgrade", "keep-alive, Upgrade", "upgrade"]))),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    windows, fresh = None, False
    if draw(st.booleans()):
        offered = draw(st.sampled_from([None, 9, 10, 12, 15]))
        offer = "permessage-deflate; client_max_window_bits"
        offer += f"={offered}" if offered else ""
        fresh = draw(st.booleans())
        if fresh:
            offer += "; client_no_context_takeover"  # a promise: the server inflates afresh
        headers.append(("Sec-WebSocket-Extensions", offer))
        agreed = min(12, offered or 15)  # the server's window is Config's (12)
        windows = list(range(9, agreed + 1))
    headers = draw(st.permutations(headers))
    cased = [(draw(st.sampled_from([k, k.lower(), k.upper()])), v) for k, v in headers]
    lines = ["GET /ws/echo HTTP/1.1", *(f"{k}: {v}" for k, v in cased)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), windows, fresh


@attrs.frozen
class ServerSaw:
    messages: list[object]
    closed: wstrio.Closed
    pongs: list[bytes]  # the payloads of the pongs it sent
    close_sent: int | None  # the code of the close frame it sent (its echo), if any


async def through_server(request: bytes, plan: Plan, sizes: list[int]) -> ServerSaw:
    """Send the request and the frames in ``sizes`` chunks (each read by the server before
    the next is sent), then EOF; what the handler read, how it closed, what the server sent."""
    got: list[object] = []
    closed: list[wstrio.Closed] = []

    async def record(session: wstrio.Session) -> None:
        try:
            async for message in session:
                got.append(message)
        except wstrio.ConnectionClosed:
            pass
        closed.append(await session.wait_closed())

    async with open_memory_server({"/ws/echo": record}, config=SERVER_CONFIG) as server:
        stream = await server.open_stream()
        with contextlib.suppress(trio.BrokenResourceError):  # closed after a close frame
            for piece in chunked(request + plan.data, sizes, PIECES):
                await stream.send_all(piece)
                await trio.testing.wait_all_tasks_blocked()
            await stream.send_eof()
        reply = b""
        while chunk := await stream.receive_some(65536):
            reply += chunk
    head, rest = split_head(reply)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert f"Sec-WebSocket-Accept: {accept_of(KEY)}".lower().encode() in head.lower()
    assert (b"sec-websocket-extensions" in head.lower()) is (plan.bits is not None)
    frames, leftover = read_frames(rest)
    assert leftover == b"" and not any(frame.masked for frame in frames)
    closes = [frame.close_code for frame in frames if frame.opcode == 0x8]
    assert len(closes) <= 1 and all(frame.opcode in (0x8, 0xA) for frame in frames)
    pongs = [frame.payload for frame in frames if frame.opcode == 0xA]
    return ServerSaw(got, closed[0], pongs, closes[0] if closes else None)


@st.composite
def server_cases(draw: st.DrawFn) -> tuple[bytes, Plan]:
    request, windows, fresh = draw(upgrade_requests())
    return request, draw(plans(masked=True, bits=windows, fresh=fresh))


@settings(
    max_examples=budget(200),
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow],  # a trio.run per example, by design
)
@given(case=server_cases(), sizes=chunk_sizes)
def test_the_server_reads_any_chunking_of_a_valid_client_stream_the_same(
    case: tuple[bytes, Plan], sizes: list[int]
) -> None:
    """Upgrade request and frames in any chunks: the same messages, pongs and close."""
    request, plan = case
    with example("chunking: server, end to end"):
        clock = trio.testing.MockClock(autojump_threshold=0)
        whole = trio.run(through_server, request, plan, [], clock=clock)
        clock = trio.testing.MockClock(autojump_threshold=0)
        split = trio.run(through_server, request, plan, sizes, clock=clock)
        assert whole == split
        assert split.pongs == plan.pings
        assert split.messages == plan.messages
        if plan.close is None:
            assert split.closed == wstrio.Closed(wstrio.Ending.PEER_VANISHED, 1006, "")
            assert split.close_sent is None
        else:
            assert split.closed == wstrio.Closed(
                wstrio.Ending.PEER_CLOSED, plan.close.code, plan.close.reason
            )
            assert split.close_sent == plan.close.code


# -- the client, end to end ------------------------------------------------------------------
@st.composite
def client_answers(draw: st.DrawFn) -> tuple[bool, str | None, list[int], bool]:
    """(the client offers deflate?, the server's Sec-WebSocket-Extensions answer or None,
    the windows the server may compress with, whether it must compress afresh)."""
    offered = draw(st.booleans())
    if not offered or draw(st.booleans()):
        return offered, None, [], False
    window = draw(st.integers(9, 12))  # the client asks for at most 12 (Config's window)
    answer = f"permessage-deflate; server_max_window_bits={window}"
    fresh = draw(st.booleans())
    if fresh:
        answer += "; server_no_context_takeover"
    if draw(st.booleans()):
        answer += "; client_no_context_takeover"
    if draw(st.booleans()):
        answer += f"; client_max_window_bits={draw(st.integers(9, 15))}"
    return offered, answer, list(range(9, window + 1)), fresh


@attrs.frozen
class ClientSaw:
    messages: list[object]
    closed: wstrio.Closed
    pongs: list[bytes]
    close_sent: int | None


async def through_client(
    offered: bool, answer: str | None, plan: Plan, sizes: list[int]
) -> ClientSaw:
    """A scripted server: read the client's request, send the 101 and the frames in ``sizes``
    chunks (each read by the client before the next), then EOF; read what the client sends."""
    client_end, server_end = memory_stream_pair()
    sent = bytearray()

    async def serve() -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await server_end.receive_some(65536)
        match = re.search(rb"(?i)\r\nsec-websocket-key: *([^\r]*)\r\n", request)
        assert match is not None
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_of(match.group(1).decode())}",
        ]
        if answer is not None:
            lines.append(f"Sec-WebSocket-Extensions: {answer}")
        response = ("\r\n".join(lines) + "\r\n\r\n").encode()
        with contextlib.suppress(trio.BrokenResourceError):  # closed after a close frame
            for piece in chunked(response + plan.data, sizes, PIECES):
                await server_end.send_all(piece)
                await trio.testing.wait_all_tasks_blocked()
            await server_end.send_eof()
        while chunk := await server_end.receive_some(65536):
            sent.extend(chunk)

    async def opener(target: object) -> trio.abc.Stream:
        return client_end

    got: list[object] = []
    config = wstrio.Config(ping_interval=None, compression="deflate" if offered else None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with wstrio.connect("ws://wstrio.test/ws", config=config, opener=opener) as session:
            try:
                async for message in session:
                    got.append(message)
            except wstrio.ConnectionClosed:
                pass
    frames, leftover = read_frames(bytes(sent))
    assert leftover == b"" and all(frame.masked for frame in frames)
    closes = [frame.close_code for frame in frames if frame.opcode == 0x8]
    assert len(closes) <= 1 and all(frame.opcode in (0x8, 0xA) for frame in frames)
    pongs = [frame.payload for frame in frames if frame.opcode == 0xA]
    assert session.closed is not None
    return ClientSaw(got, session.closed, pongs, closes[0] if closes else None)


@st.composite
def client_cases(draw: st.DrawFn) -> tuple[bool, str | None, Plan]:
    offered, answer, windows, fresh = draw(client_answers())
    return offered, answer, draw(plans(masked=False, bits=windows or None, fresh=fresh))


@settings(
    max_examples=budget(200),
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow],  # a trio.run per example, by design
)
@given(case=client_cases(), sizes=chunk_sizes)
def test_the_client_reads_any_chunking_of_a_valid_server_stream_the_same(
    case: tuple[bool, str | None, Plan], sizes: list[int]
) -> None:
    """101 and frames in any chunks: the client reads the same messages, pongs and close."""
    offered, answer, plan = case
    with example("chunking: client, end to end"):
        clock = trio.testing.MockClock(autojump_threshold=0)
        whole = trio.run(through_client, offered, answer, plan, [], clock=clock)
        clock = trio.testing.MockClock(autojump_threshold=0)
        split = trio.run(through_client, offered, answer, plan, sizes, clock=clock)
        assert whole == split
        assert split.pongs == plan.pings
        assert split.messages == plan.messages
        if plan.close is None:
            assert split.closed == wstrio.Closed(wstrio.Ending.PEER_VANISHED, 1006, "")
            assert split.close_sent is None
        else:
            assert split.closed == wstrio.Closed(
                wstrio.Ending.PEER_CLOSED, plan.close.code, plan.close.reason
            )
            assert split.close_sent == plan.close.code
