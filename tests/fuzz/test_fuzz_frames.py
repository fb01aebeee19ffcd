"""Hostile frames after a valid handshake: every connection ends in one of the close table's
endings with its documented code (docs/reference/close-codes.md), never an internal error,
with the close frame on the wire saying the same code as ``Closed``, and nothing logged
above INFO.

Frames are drawn field by field (FIN, RSV bits, any opcode, mask or none, declared length,
payloads of valid and invalid UTF-8, close codes valid and not, oversized control frames,
continuations without a start, interleaved messages, a last frame cut short) and written by
:func:`fuzzkit.raw_frame`, which enforces no rule. :func:`outcome` is the reference model:
RFC 6455's rules applied to the drawn fields, giving the messages a handler must read and
the endings (with codes) the connection may close with. A frame that breaks several rules
at once may close with the code of any of them; nothing else is left open. Arbitrary bytes
after the handshake are fuzzed too, against the table alone.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import re
import struct
import zlib

import attrs
import pytest
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
    loud_records,
    read_frames,
    split_head,
    ws_frame,
)
from fuzzkit import raw_frame as write_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Opcode

import wstrio
from wstrio.testing import memory_stream_pair, open_memory_server

Ending = wstrio.Ending
LIMIT = 1000  # Config.max_message_size: small, so 1009 is reachable with small frames
CONFIG = wstrio.Config(ping_interval=None, max_message_size=LIMIT, compression=None)
#: The extension offer that makes the server agree to permessage-deflate with a 12-bit window
#: for the client's messages (Config's default window), keeping context between messages.
OFFER = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
UPGRADE = (
    "GET /ws/echo HTTP/1.1\r\nHost: wstrio.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()
#: The code each ending may close with (the close table; PEER_CLOSED echoes the peer's).
DOCUMENTED = {
    Ending.PROTOCOL_ERROR: {1002, 1007},
    Ending.MESSAGE_TOO_BIG: {1009},
    Ending.UNSUPPORTED_DATA: {1003},
    Ending.PEER_VANISHED: {1006},
    Ending.PEER_CLOSED: {*SENDABLE, *range(3000, 5000), 1005},
}


@attrs.frozen
class Spec:
    """One frame's fields, as drawn."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes
    length: int | None = None  # a declared length other than the payload's (a cut-off frame)
    wide: int = 0

    def encode(self) -> bytes:
        mask = b"\x37\xfa\x21\x3d" if self.masked else None
        return write_frame(
            fin=self.fin, rsv=self.rsv, opcode=self.opcode, payload=self.payload,
            mask=mask, length=self.length, wide=self.wide,
        )  # fmt: skip

    @property
    def declared(self) -> int:
        return len(self.payload) if self.length is None else self.length


INVALID_UTF8 = [b"\xff", b"\xc3", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]
close_codes = st.one_of(
    st.sampled_from([*SENDABLE, 3000, 4999]),
    st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]),
    st.integers(0, 65535),
)


@st.composite
def payloads(draw: st.DrawFn, opcode: int) -> bytes:
    """Valid and invalid payloads for ``opcode``: text, UTF-8 broken anywhere, close payloads
    with any code and reason, one-byte close payloads, oversized control payloads."""
    kind = draw(st.sampled_from(["text", "bad text", "binary", "close", "short", "long"]))
    if kind == "text" or (kind == "close" and opcode != 0x8):
        return draw(st.text(max_size=30)).encode()
    if kind == "bad text":
        text = draw(st.text(max_size=10)).encode()
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from(INVALID_UTF8)) + text[at:]
    if kind == "close":
        reasons = st.one_of(st.text(max_size=20).map(str.encode), st.sampled_from(INVALID_UTF8))
        reason = draw(reasons)
        return struct.pack("!H", draw(close_codes)) + reason
    if kind == "short":
        return draw(st.binary(max_size=1))
    if kind == "long":
        return b"x" * draw(st.sampled_from([125, 126, 200, LIMIT, LIMIT + 1]))
    return draw(st.binary(max_size=40))


@st.composite
def specs(draw: st.DrawFn, *, masked: bool) -> Spec:
    """A frame, mostly well-formed (so streams get past the first one), often not."""
    opcode = draw(
        st.one_of(
            st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA]),
            st.sampled_from([0x0, 0x1, 0x2, 0x9, 0xA]),
            st.integers(0, 15),
        )
    )
    return Spec(
        fin=draw(st.sampled_from([True, True, True, False])),
        rsv=draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2, 4, 7])),
        opcode=opcode,
        masked=draw(st.sampled_from([masked] * 9 + [not masked])),
        payload=draw(payloads(opcode)),
        wide=draw(st.sampled_from([0, 0, 0, 0, 1, 2])),
    )


@st.composite
def valid_specs(draw: st.DrawFn, *, masked: bool, opened: bool) -> Spec:
    """A frame that is valid where it stands (``opened``: a message awaits continuation)."""
    kind = draw(st.sampled_from(["data", "data", "data", "control", "close"]))
    if kind == "control":
        opcode = draw(st.sampled_from([0x9, 0xA]))
        return Spec(True, 0, opcode, masked, draw(st.binary(max_size=20)))
    if kind == "close":
        reason = draw(st.text(max_size=20)).encode()
        return Spec(True, 0, 0x8, masked, struct.pack("!H", draw(close_codes)) + reason)
    opcode = 0x0 if opened else draw(st.sampled_from([0x1, 0x2]))
    return Spec(draw(st.booleans()), 0, opcode, masked, draw(st.text(max_size=30)).encode())


@st.composite
def streams(draw: st.DrawFn, *, masked: bool) -> tuple[list[Spec], Spec | None, int]:
    """Up to eight frames, each valid where it stands or (one time in four) drawn field by
    field; maybe a last frame cut short (its declared length may be anything, the most
    significant bit included) and how many of its bytes are sent."""
    frames: list[Spec] = []
    opened = False
    for _ in range(draw(st.integers(1, 8))):
        hostile = draw(st.integers(0, 3)) == 0
        spec = draw(specs(masked=masked) if hostile else valid_specs(masked=masked, opened=opened))
        frames.append(spec)
        if spec.opcode in (0x0, 0x1, 0x2):
            opened = not spec.fin
    if not draw(st.booleans()):
        return frames, None, 0
    last = draw(st.one_of(specs(masked=masked), valid_specs(masked=masked, opened=opened)))
    declared = draw(
        st.one_of(
            st.integers(len(last.payload) + 1, len(last.payload) + 50),
            st.sampled_from([LIMIT + 1, 2**16, 2**62, 2**63, 2**64 - 1]),
        )
    )
    last = attrs.evolve(last, length=declared)
    return frames, last, draw(st.integers(0, len(last.encode())))


# -- the reference model ---------------------------------------------------------------------
@attrs.frozen
class Outcome:
    """What the reader must deliver, and the endings (and codes) it may close with."""

    messages: list[str | bytes]
    endings: frozenset[tuple[Ending, int]]


def _header_codes(spec: Spec, *, masked: bool, open_message: int | None, size: int) -> set[int]:
    """The codes of every rule a frame's header breaks (RFC 6455 5.2-5.5), none if it is fine."""
    codes = set()
    if spec.rsv:
        codes.add(1002)  # no extension was negotiated
    if spec.masked is not masked:
        codes.add(1002)
    if spec.opcode in (0x8, 0x9, 0xA):
        if not spec.fin or spec.declared > 125:
            codes.add(1002)
        return codes
    if spec.opcode not in (0x0, 0x1, 0x2):
        return codes | {1002}
    if (spec.opcode == 0x0) is (open_message is None):
        codes.add(1002)  # a continuation without a start, or a start inside a message
    so_far = size if spec.opcode == 0x0 else 0  # a new message starts from nothing
    if spec.declared >> 63:
        codes.add(1002)
    elif so_far + spec.declared > LIMIT:
        codes.add(1009)
    return codes


def _failed(codes: set[int]) -> frozenset[tuple[Ending, int]]:
    return frozenset(
        (Ending.MESSAGE_TOO_BIG if code == 1009 else Ending.PROTOCOL_ERROR, code) for code in codes
    )


def outcome(
    frames: list[Spec], cut: Spec | None, sent: int, *, masked: bool, accepts: type | None
) -> Outcome:
    """RFC 6455 applied to ``frames`` (then ``sent`` bytes of ``cut``, then EOF) by a reader
    that wants masked frames or not and, if ``accepts`` is a type, only messages of it.

    A message of the wrong type ends the session with 1003, but the frames after it may have
    been parsed already (they came in the same read): a close frame among them crosses it
    (the peer's close is what both sides saw), and so does a frame that fails the parser."""
    delivered: list[str | bytes] = []
    unsupported = False

    def ending(endings: frozenset[tuple[Ending, int]]) -> Outcome:
        if unsupported:
            crossing = {e for e in endings if e[0] is not Ending.PEER_VANISHED}
            endings = frozenset({(Ending.UNSUPPORTED_DATA, 1003), *crossing})
        return Outcome(delivered, endings)

    opened: int | None = None
    size = 0
    buffer = b""
    decoder = codecs.getincrementaldecoder("utf-8")()
    for spec in frames:
        codes = _header_codes(spec, masked=masked, open_message=opened, size=size)
        if codes:
            return ending(_failed(codes))
        if spec.opcode == 0x8:
            return ending(_close_endings(spec.payload))
        if spec.opcode in (0x9, 0xA):
            continue
        if spec.opcode != 0x0:
            opened, size, buffer = spec.opcode, 0, b""
            decoder.reset()
        if opened == 0x1:
            try:
                decoder.decode(spec.payload, spec.fin)
            except UnicodeDecodeError:
                return ending(_failed({1007}))
        size += len(spec.payload)
        buffer += spec.payload
        if spec.fin:
            message = buffer.decode() if opened == 0x1 else buffer
            if accepts is not None and not isinstance(message, accepts):
                unsupported = True
            if not unsupported:
                delivered.append(message)
            opened = None
    vanished = frozenset({(Ending.PEER_VANISHED, 1006)})
    if cut is None:
        return ending(vanished)
    data = cut.encode()[:sent]
    head = 2 + (2 if data[1:2] and data[1] & 0x7F == 126 else 0)
    head += 8 if data[1:2] and data[1] & 0x7F == 127 else 0
    head += 4 if data[1:2] and data[1] & 0x80 else 0
    if len(data) < 2 or len(data) < head:
        return ending(vanished)  # the header never came whole
    codes = _header_codes(cut, masked=masked, open_message=opened, size=size)
    if codes:
        return ending(_failed(codes))
    if cut.opcode == 0x1 or (cut.opcode == 0x0 and opened == 0x1):
        if cut.opcode == 0x1:
            decoder.reset()
        try:  # text is checked as it arrives, before its frame is whole
            decoder.decode(cut.payload[: len(data) - head], False)
        except UnicodeDecodeError:
            return ending(_failed({1007}))
    return ending(vanished)


def _close_endings(payload: bytes) -> frozenset[tuple[Ending, int]]:
    if not payload:
        return frozenset({(Ending.PEER_CLOSED, 1005)})
    if len(payload) == 1:
        return _failed({1002})
    code = struct.unpack("!H", payload[:2])[0]
    if code not in SENDABLE and not 3000 <= code <= 4999:
        return _failed({1002})
    try:
        payload[2:].decode()
    except UnicodeDecodeError:
        return _failed({1007})
    return frozenset({(Ending.PEER_CLOSED, code)})


# -- running it --------------------------------------------------------------------------------
_FAILURES = (Ending.PROTOCOL_ERROR, Ending.MESSAGE_TOO_BIG)


@attrs.frozen
class Seen:
    messages: list[object]
    closed: wstrio.Closed
    sent: list[tuple[int, bytes]]  # (opcode, payload) of every frame it sent


async def against_server(
    data: bytes, sizes: list[int], accepts: str, deflate: bool = False
) -> Seen:
    """``data`` after a valid upgrade (offering permessage-deflate if ``deflate``), in
    ``sizes`` chunks, then EOF; what the handler read, how the session closed, and what the
    server sent after its 101."""
    got: list[object] = []
    closed: list[wstrio.Closed] = []

    async def record(session: wstrio.Session) -> None:
        try:
            async for message in session:
                got.append(message)
        except wstrio.ConnectionClosed:
            pass
        closed.append(await session.wait_closed())

    routes = {"/ws/echo": wstrio.Route(record, accepts=accepts)}  # type: ignore[arg-type]
    config = attrs.evolve(CONFIG, compression="deflate" if deflate else None)
    upgrade = UPGRADE[:-2] + OFFER if deflate else UPGRADE
    async with open_memory_server(routes, config=config) as server:
        stream = await server.open_stream()
        with contextlib.suppress(trio.BrokenResourceError):  # the server may close first
            await stream.send_all(upgrade)
            for piece in chunked(data, sizes, 100):
                await stream.send_all(piece)
            await stream.send_eof()
        reply = b""
        while chunk := await stream.receive_some(65536):
            reply += chunk
    head, rest = split_head(reply)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert (b"permessage-deflate" in head) is deflate
    frames, leftover = read_frames(rest)
    assert leftover == b"" and not any(frame.masked for frame in frames)
    return Seen(got, closed[0], [(frame.opcode, frame.payload) for frame in frames])


async def against_client(data: bytes, sizes: list[int]) -> Seen:
    """``data`` after a valid 101 from a scripted server, in ``sizes`` chunks, then EOF."""
    client_end, server_end = memory_stream_pair()
    sent = bytearray()

    async def serve() -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await server_end.receive_some(65536)
        match = re.search(rb"(?i)\r\nsec-websocket-key: *([^\r]*)\r\n", request)
        assert match is not None
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_of(match.group(1).decode())}\r\n\r\n"
        ).encode()
        with contextlib.suppress(trio.BrokenResourceError):
            await server_end.send_all(response)
            for piece in chunked(data, sizes, 100):
                await server_end.send_all(piece)
            await server_end.send_eof()
        while chunk := await server_end.receive_some(65536):
            sent.extend(chunk)

    async def opener(target: object) -> trio.abc.Stream:
        return client_end

    got: list[object] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with wstrio.connect("ws://wstrio.test/", config=CONFIG, opener=opener) as session:
            try:
                async for message in session:
                    got.append(message)
            except wstrio.ConnectionClosed:
                pass
    frames, leftover = read_frames(bytes(sent))
    assert leftover == b"" and all(frame.masked for frame in frames)
    assert session.closed is not None
    return Seen(got, session.closed, [(frame.opcode, frame.payload) for frame in frames])


def check_ending(seen: Seen, expected: Outcome | None = None) -> None:
    """The ending is in the close table with its documented code, and the wire agrees: one
    close frame, last, with ``Closed``'s code and reason (none when the peer vanished)."""
    closed = seen.closed
    assert closed.ending in DOCUMENTED, closed
    assert closed.code in DOCUMENTED[closed.ending], closed
    assert not closed.aborted, closed
    closes = [payload for opcode, payload in seen.sent if opcode == 0x8]
    assert all(opcode in (0x8, 0xA) for opcode, _ in seen.sent), seen.sent
    if closed.ending is Ending.PEER_VANISHED:
        assert closes == []
        return
    assert len(closes) == 1 and seen.sent[-1][0] == 0x8, seen.sent
    code = struct.unpack("!H", closes[0][:2])[0] if closes[0] else 1005
    assert code == closed.code, (closed, closes[0])
    if closed.ending is not Ending.PEER_CLOSED:  # an echo carries the code alone
        assert closes[0][2:].decode() == closed.reason


def run(function: object, *args: object) -> Seen:
    return trio.run(function, *args, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


HOSTILE = settings(
    max_examples=budget(400),
    deadline=5000,
    # caplog is cleared at the start of each example, so sharing it between examples is safe;
    # each example is a trio.run of a whole server, by design
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@HOSTILE
@given(
    stream=streams(masked=True),
    accepts=st.sampled_from(["any", "text"]),
    sizes=st.lists(st.integers(1, 64), max_size=4),
)
def test_hostile_frames_to_the_server_end_as_the_close_table_says(
    stream: tuple[list[Spec], Spec | None, int],
    accepts: str,
    sizes: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler reads what the model says, and the ending is one the model allows."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    frames, cut, sent = stream
    data = b"".join(spec.encode() for spec in frames) + (cut.encode()[:sent] if cut else b"")
    with example("hostile frames: server"):
        seen = run(against_server, data, sizes, accepts)
        only = str if accepts == "text" else None
        expected = outcome(frames, cut, sent, masked=True, accepts=only)
        check_ending(seen, expected)
        assert seen.messages == expected.messages
        assert (seen.closed.ending, seen.closed.code) in expected.endings, (seen.closed, expected)
        assert loud_records(caplog.records) == []


@HOSTILE
@given(stream=streams(masked=False), sizes=st.lists(st.integers(1, 64), max_size=4))
def test_hostile_frames_to_the_client_end_as_the_close_table_says(
    stream: tuple[list[Spec], Spec | None, int], sizes: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """Server frames the client must refuse (masked ones among them) close as the model says."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    frames, cut, sent = stream
    data = b"".join(spec.encode() for spec in frames) + (cut.encode()[:sent] if cut else b"")
    with example("hostile frames: client"):
        seen = run(against_client, data, sizes)
        expected = outcome(frames, cut, sent, masked=False, accepts=None)
        check_ending(seen, expected)
        assert seen.messages == expected.messages
        assert (seen.closed.ending, seen.closed.code) in expected.endings, (seen.closed, expected)
        assert loud_records(caplog.records) == []


@settings(HOSTILE, max_examples=budget(300))
@given(data=st.binary(min_size=1, max_size=300), sizes=st.lists(st.integers(1, 64), max_size=4))
def test_arbitrary_bytes_after_the_handshake_end_as_the_close_table_says(
    data: bytes, sizes: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever bytes follow the upgrade: a documented ending and code, and nothing loud."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    with example("hostile frames: arbitrary bytes (server)"):
        check_ending(run(against_server, data, sizes, "any"))
        assert loud_records(caplog.records) == []


# -- permessage-deflate agreed -------------------------------------------------------------------
@st.composite
def compressed_streams(draw: st.DrawFn) -> tuple[bytes, list[str | bytes]]:
    """Valid messages, compressed by websockets (12-bit window, context kept) or not, then
    hostile frames: RSV1 on random payloads, on continuations and control frames, RSV2/3,
    bombs that inflate past the limit, stored blocks marked final, and random bytes. Also the
    valid messages before the first hostile frame: what the handler must read first."""
    deflate = deflater(12, fresh=False)
    data, valid = b"", []
    for _ in range(draw(st.integers(0, 4))):
        message = draw(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
        payload = message.encode() if isinstance(message, str) else message
        opcode = Opcode.TEXT if isinstance(message, str) else Opcode.BINARY
        squeeze = deflate if draw(st.booleans()) else None
        data += ws_frame(opcode, payload, mask=True, deflate=squeeze)
        valid.append(message)
    key = b"\x00\x00\x00\x00"
    bomb = zlib.compressobj(9, zlib.DEFLATED, -12)
    hostile = st.one_of(
        st.builds(lambda op, p: write_frame(fin=True, rsv=4, opcode=op, payload=p, mask=key),
                  st.sampled_from([0x1, 0x2]), st.binary(max_size=60)),
        st.builds(lambda op, r: write_frame(fin=True, rsv=r, opcode=op, payload=b"x", mask=key),
                  st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA]), st.integers(1, 7)),
        st.just(write_frame(fin=True, rsv=4, opcode=0x2, mask=key, payload=bomb.compress(
            b"\x00" * (LIMIT * 50)) + bomb.flush(zlib.Z_SYNC_FLUSH)[:-4])),
        st.just(write_frame(fin=True, rsv=4, opcode=0x1, mask=key,
                            payload=zlib.compress(b"final", wbits=-12))),  # BFINAL set
        st.binary(min_size=1, max_size=80),
    )  # fmt: skip
    data += b"".join(draw(st.lists(hostile, max_size=4)))
    return data, valid


@settings(HOSTILE, max_examples=budget(300))
@given(stream=compressed_streams(), sizes=st.lists(st.integers(1, 64), max_size=4))
def test_hostile_compressed_frames_end_as_the_close_table_says(
    stream: tuple[bytes, list[str | bytes]], sizes: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """Deflate agreed: valid messages first, then a documented ending the wire agrees with."""
    caplog.clear()
    caplog.set_level(logging.INFO)
    data, valid = stream
    with example("hostile frames: permessage-deflate (server)"):
        seen = run(against_server, data, sizes, "any", True)
        check_ending(seen)
        assert seen.messages[: len(valid)] == valid
        assert loud_records(caplog.records) == []
