"""permessage-deflate (RFC 7692): negotiation as pure functions, bounded inflation, and the
round trip compress -> frame -> any chunks -> parse -> inflate."""

from __future__ import annotations

import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wstrio._wire.deflate import (
    Agreement,
    ExtensionError,
    Settings,
    accept_offer,
    accept_response,
    client_offer,
    codecs_for,
    parse_extensions,
)
from wstrio._wire.frames import OP_BINARY, OP_CONTINUATION, OP_TEXT, encode
from wstrio._wire.parser import Failure, Parser

OURS = Settings(window_bits=12)


def offer(text: str) -> Agreement | None:
    return accept_offer(parse_extensions([text]), OURS)


@pytest.mark.parametrize(
    ("header", "agreement"),
    [
        ("permessage-deflate", Agreement(12, 15)),
        ("permessage-deflate; client_max_window_bits", Agreement(12, 12)),
        ("permessage-deflate; client_max_window_bits=10", Agreement(12, 10)),
        ("permessage-deflate; server_max_window_bits=9", Agreement(9, 15)),
        ("permessage-deflate; server_no_context_takeover",
         Agreement(12, 15, server_no_context_takeover=True)),
        ("permessage-deflate; client_no_context_takeover",
         Agreement(12, 15, client_no_context_takeover=True)),
        ("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10",
         Agreement(10, 15)),
        # an offer we must decline, then one we can take (RFC 7692 5)
        ("permessage-deflate; server_max_window_bits=16, permessage-deflate", Agreement(12, 15)),
        ("permessage-deflate; unknown_param, permessage-deflate; client_max_window_bits",
         Agreement(12, 12)),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ("x-webkit-deflate-frame", None),
    ],
)  # fmt: skip
def test_server_takes_the_first_offer_it_can_honour(header: str, agreement: object) -> None:
    """Offers are tried in order; one with bad or unknown parameters is declined, not refused."""
    assert offer(header) == agreement


def test_the_answer_states_what_was_agreed() -> None:
    """The 101's header names every parameter that differs from the defaults."""
    agreed = Agreement(12, 10, server_no_context_takeover=True)
    assert agreed.header() == (
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; "
        "client_max_window_bits=10"
    )
    assert offer(agreed.header()) == Agreement(12, 10, server_no_context_takeover=True)


@pytest.mark.parametrize(
    "header",
    ["permessage-deflate;", "permessage-deflate; a=\"unterminated", "per message", ", ;x"],
)
def test_malformed_header_is_an_error(header: str) -> None:
    """Text that is not ``token *(; param)`` lists is refused (a server answers 400)."""
    with pytest.raises(ExtensionError):
        parse_extensions([header])


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("x-other", "did not offer"),
        ("permessage-deflate, permessage-deflate", "did not offer"),
        ("permessage-deflate; server_max_window_bits=12; client_max_window_bits", "needs a value"),
        ("permessage-deflate; server_max_window_bits=12; mystery", "unknown"),
        ("permessage-deflate; server_max_window_bits=15", "larger than we allowed"),
        ("permessage-deflate", "ignored our server_max_window_bits"),
        ("permessage-deflate; server_max_window_bits=07", "8 to 15"),
    ],
)
def test_client_refuses_an_answer_beyond_its_offer(answer: str, problem: str) -> None:
    """RFC 7692 5 and 7.1: a client fails the connection on an answer it did not allow."""
    with pytest.raises(ExtensionError, match=problem):
        accept_response(parse_extensions([answer]), OURS)


def test_client_offer_is_accepted_by_our_server_as_offered() -> None:
    """Our client's offer leaves the server room to limit the client's window."""
    assert client_offer(OURS) == (
        "permessage-deflate; client_max_window_bits; server_max_window_bits=12, "
        "permessage-deflate; client_max_window_bits; server_max_window_bits=12; "
        "client_no_context_takeover"
    )
    agreed = offer(client_offer(OURS))
    assert agreed == Agreement(12, 12)
    assert accept_response(parse_extensions([agreed.header()]), OURS) == agreed


def frames_of(messages: list[bytes | str], agreement: Agreement, fragment: int) -> bytes:
    """What a client sends for ``messages``, compressed as agreed, fragmented every
    ``fragment`` bytes of compressed payload."""
    deflater, _ = codecs_for(agreement, OURS, client=True)
    data = b""
    for message in messages:
        opcode = OP_TEXT if isinstance(message, str) else OP_BINARY
        payload = deflater.compress(message.encode() if isinstance(message, str) else message)
        pieces = [payload[i : i + fragment] for i in range(0, len(payload), fragment)] or [b""]
        for n, piece in enumerate(pieces):
            data += encode(opcode if n == 0 else OP_CONTINUATION, piece,
                           fin=n == len(pieces) - 1, mask=True, rsv1=n == 0)  # fmt: skip
    return data


@settings(max_examples=120, deadline=None)
@given(
    messages=st.lists(st.one_of(st.text(max_size=500), st.binary(max_size=5000)), max_size=6),
    takeover=st.booleans(),
    fragment=st.integers(1, 600),
    chunk=st.integers(1, 900),
)
def test_any_message_survives_compress_frame_chunk_parse_inflate(
    messages: list[bytes | str], takeover: bool, fragment: int, chunk: int
) -> None:
    """With or without context takeover, fragmented anywhere, chunked anywhere: unchanged."""
    agreement = Agreement(12, 12, client_no_context_takeover=not takeover)
    data = frames_of(messages, agreement, fragment)
    _, inflater = codecs_for(agreement, OURS, client=False)
    parser = Parser(client=False, max_message_size=2**20, inflater=inflater)
    for at in range(0, len(data), chunk):
        parser.feed(data[at : at + chunk])
    assert parser.failure is None
    assert parser.take() == messages


def test_a_bomb_is_refused_with_1009_within_the_limit_of_memory() -> None:
    """A 1 MiB frame that inflates to 1 GiB, read 64 KiB at a time as from a socket: 1009 at
    the 1 MiB limit, never holding more than about the limit while inflating."""
    limit = 2**20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(b"\0" * 2**20) + compressor.flush(zlib.Z_FULL_FLUSH)
    bomb = block * 1024  # a full flush resets the compressor: each MiB of zeros looks the same
    assert len(bomb) < 2**21 and len(zlib.decompressobj(-15).decompress(block * 2)) == 2**21
    frame = encode(OP_BINARY, bomb[:-4], mask=True, rsv1=True)
    _, inflater = codecs_for(Agreement(), Settings(), client=False)
    parser = Parser(client=False, max_message_size=limit, inflater=inflater)
    tracemalloc.start()
    try:
        for at in range(0, len(frame), 65536):
            parser.feed(frame[at : at + 65536])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert parser.failure == Failure(1009, f"message larger than {limit} bytes")
    assert peak < 1.5 * limit  # the limit inflated, and a few reads of 64 KiB


def test_compressed_control_or_continuation_frames_are_refused() -> None:
    """RSV1 belongs on a message's first frame only (RFC 7692 6.1)."""
    _, inflater = codecs_for(Agreement(), Settings(), client=False)
    parser = Parser(client=False, max_message_size=2**20, inflater=inflater)
    parser.feed(encode(0x9, b"", mask=True, rsv1=True))
    assert parser.failure is not None and parser.failure.code == 1002
    plain = Parser(client=False, max_message_size=2**20)
    plain.feed(encode(OP_TEXT, b"x", mask=True, rsv1=True))  # no extension agreed
    assert plain.failure is not None and plain.failure.code == 1002


def test_a_message_ended_by_a_final_block_does_not_empty_the_next() -> None:
    """RFC 7692 7.2.3.4 lets a sender end a message with BFINAL=1: the next still inflates."""
    agreement = Agreement(15, 15)
    _, inflater = codecs_for(agreement, OURS, client=False)
    parser = Parser(client=False, max_message_size=2**20, inflater=inflater)
    for text in ("hello hello hello", "and again"):
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = compressor.compress(text.encode()) + compressor.flush(zlib.Z_FINISH)
        parser.feed(encode(OP_TEXT, payload, mask=True, rsv1=True))
    assert parser.failure is None and parser.take() == ["hello hello hello", "and again"]


@pytest.mark.parametrize("bits", ["1\u00b2", "9\u0663", "+9"])
def test_window_bits_must_be_ascii_digits(bits: str) -> None:
    """A hostile answer with look-alike digits is an ExtensionError, never a crash."""
    with pytest.raises(ExtensionError):
        answer = parse_extensions([f"permessage-deflate; server_max_window_bits={bits}"])
        accept_response(answer, OURS)


def test_the_client_keeps_its_configured_window_when_the_server_sets_none() -> None:
    """A client may compress with a smaller window than agreed: ours stays at the setting."""
    answer = parse_extensions(["permessage-deflate; server_max_window_bits=12"])
    assert accept_response(answer, OURS).client_max_window_bits == 12
