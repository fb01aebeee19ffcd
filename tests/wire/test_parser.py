"""The frame parser, unit level: chunking never changes what it reads, and every RFC 6455
rule a frame can break fails it with the right close code.

Frames are made by the ``websockets`` package (not our encoder), so the parser
is checked against an independent writer.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from wstrio._wire.frames import OP_BINARY, OP_PING, OP_TEXT, encode
from wstrio._wire.parser import CloseFrame, Control, Failure, Parser


def frame(opcode: Opcode, data: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=mask, extensions=[])


def raw(first: int, payload: bytes) -> bytes:
    """A masked frame written byte by byte, rules or no rules (``first``: FIN, RSV, opcode)."""
    mask = os.urandom(4)
    size = len(payload)
    length = bytes((0x80 | size,)) if size < 126 else bytes((0x80 | 126,)) + size.to_bytes(2, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((first,)) + length + mask + masked


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in sizes:
        if at >= len(data):
            break
        out.append(data[at : at + size])
        at += size
    return [*out, data[at:]] if at < len(data) else out


def parse(data: bytes, sizes: list[int] = (), **options: object) -> Parser:  # type: ignore[assignment]
    parser = Parser(client=bool(options.get("client", False)),
                    max_message_size=int(options.get("limit", 2**20)))  # type: ignore[call-overload]
    for piece in chunks(data, list(sizes)) if sizes else [data]:
        parser.feed(piece)
    return parser


messages = st.lists(
    st.one_of(st.text(max_size=300), st.binary(max_size=3000)), min_size=1, max_size=6
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[object]]:
    """Client frames for some messages (fragmented at random, pings between fragments), then a
    close; and the events a parser must give for them."""
    data, expected = b"", []
    for message in draw(messages):
        payload = message.encode() if isinstance(message, str) else message
        opcode = Opcode.TEXT if isinstance(message, str) else Opcode.BINARY
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            data += frame(opcode if i == 0 else Opcode.CONT, piece, fin=last)
            if not last and draw(st.booleans()):
                data += frame(Opcode.PING, b"p%d" % i)
                expected.append(Control(OP_PING, b"p%d" % i))
        expected.append(message)
    data += frame(Opcode.CLOSE, b"\x03\xe8bye")
    expected.append(CloseFrame(1000, "bye", b"\x03\xe8bye"))
    return data, expected


@settings(max_examples=150, deadline=None)
@given(stream=streams(), sizes=st.lists(st.integers(1, 700), max_size=40))
def test_any_chunking_reads_the_same_messages_pings_and_close(
    stream: tuple[bytes, list[object]], sizes: list[int]
) -> None:
    """Split anywhere, in any chunk sizes: the same messages, pings and close, in order."""
    data, expected = stream
    parser = parse(data, sizes)
    assert parser.failure is None
    assert parser.take() == expected


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=2000), opcode=st.sampled_from([OP_TEXT, OP_BINARY]))
def test_our_encoder_round_trips_through_the_parser(payload: bytes, opcode: int) -> None:
    """Frames our encoder writes (masked, as a client) parse back to the same message."""
    if opcode == OP_TEXT:
        payload = payload.decode("utf-8", "replace").encode()
    parser = parse(encode(opcode, payload, mask=True))
    assert parser.take() == [payload.decode() if opcode == OP_TEXT else payload]


@pytest.mark.parametrize(
    ("data", "failure"),
    [
        (raw(0xC1, b""), Failure(1002, "reserved bits set without an extension")),
        (frame(Opcode.TEXT, b"hi", mask=False),
         Failure(1002, "frames from a client are masked, from a server not (5.1)")),
        (raw(0x83, b""), Failure(1002, "reserved opcode 0x3")),
        (raw(0x89, b"x" * 126), Failure(1002, "control frames are whole and at most 125 bytes")),
        (raw(0x09, b"x"), Failure(1002, "control frames are whole and at most 125 bytes")),
        (frame(Opcode.CONT, b"x"),
         Failure(1002, "a continuation frame without a message to continue")),
        (frame(Opcode.TEXT, b"a", fin=False) + frame(Opcode.TEXT, b"b"),
         Failure(1002, "a new message before the last one ended")),
        (raw(0x88, b"\x03"), Failure(1002, "a close frame with a one-byte payload")),
        (raw(0x88, b"\x03\xed"), Failure(1002, "invalid close code 1005")),
        (raw(0x88, b"\x03\xe8\xff"), Failure(1007, "invalid UTF-8 in a close reason")),
        (frame(Opcode.TEXT, b"\xce\xba\xff"), Failure(1007, "invalid UTF-8 in a text message")),
    ],
    ids=["rsv", "unmasked", "opcode", "long ping", "fragmented ping", "stray continuation",
         "interleaved", "one-byte close", "close 1005", "close reason", "text"],
)  # fmt: skip
def test_each_broken_rule_fails_with_its_close_code(data: bytes, failure: Failure) -> None:
    """A frame that breaks a rule of RFC 6455 5-7 fails the parser with the code the RFC gives."""
    parser = parse(data)
    assert parser.failure == failure
    parser.feed(frame(Opcode.TEXT, b"after"))
    assert "after" not in parser.take()  # nothing is read after a failure


def test_invalid_text_fails_before_the_frame_is_whole() -> None:
    """Bad UTF-8 fails as soon as its bytes arrive, not when the frame ends (fail fast)."""
    data = frame(Opcode.TEXT, b"ok" * 100 + b"\xff" + b"x" * 10000)
    parser = Parser(client=False, max_message_size=2**20)
    parser.feed(data[:300])
    assert parser.failure == Failure(1007, "invalid UTF-8 in a text message")


def test_too_big_fails_from_the_header_and_counts_fragments() -> None:
    """A message over the limit fails with 1009 from its frame header, fragments summed."""
    header_only = frame(Opcode.BINARY, b"x" * 2000)[:8]
    assert parse(header_only, limit=1000).failure == Failure(1009, "message larger than 1000 bytes")
    two = frame(Opcode.BINARY, b"x" * 600, fin=False) + frame(Opcode.CONT, b"x" * 600)
    assert parse(two, limit=1000).failure == Failure(1009, "message larger than 1000 bytes")


def test_text_limit_counts_utf8_bytes() -> None:
    """The limit counts bytes: 600 two-byte characters do not fit in 1,000."""
    assert parse(frame(Opcode.TEXT, ("é" * 600).encode()), limit=1000).failure is not None
    assert parse(frame(Opcode.TEXT, ("é" * 500).encode()), limit=1000).take() == ["é" * 500]


def test_close_codes_1012_to_1014_and_no_status_are_read() -> None:
    """Registered codes 1012-1014 are valid; an empty close frame reads as 1005, no status."""
    for code in (1012, 1013, 1014):
        parser = parse(frame(Opcode.CLOSE, code.to_bytes(2, "big") + b"r"))
        assert parser.closed == CloseFrame(code, "r", code.to_bytes(2, "big") + b"r")
    assert parse(frame(Opcode.CLOSE, b"")).closed == CloseFrame(1005, "", b"")


def test_a_client_reads_unmasked_frames_and_refuses_masked_ones() -> None:
    """The client side wants what a server sends: unmasked frames (RFC 6455 5.1)."""
    assert parse(frame(Opcode.TEXT, b"hi", mask=False), client=True).take() == ["hi"]
    assert parse(frame(Opcode.TEXT, b"hi"), client=True).failure is not None


def test_empty_fragments_cost_nothing() -> None:
    """Endless empty continuation frames add nothing to hold: memory stays with the bytes."""
    parser = Parser(client=False, max_message_size=1024)
    parser.feed(frame(Opcode.BINARY, b"x", fin=False))
    for _ in range(20000):
        parser.feed(frame(Opcode.CONT, b"", fin=False))
    parser.feed(frame(Opcode.CONT, b"y"))
    assert parser.failure is None and parser.take() == [b"xy"]


def test_one_byte_fragments_reassemble_within_the_limit() -> None:
    """A message in 1-byte fragments counts bytes, not fragments, against the limit."""
    data = b"".join(
        frame(Opcode.TEXT if i == 0 else Opcode.CONT, b"a", fin=i == 999) for i in range(1000)
    )
    assert parse(data, limit=1000).take() == ["a" * 1000]
    assert parse(data, limit=999).failure == Failure(1009, "message larger than 999 bytes")
