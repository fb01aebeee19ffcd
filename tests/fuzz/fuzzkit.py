"""Shared pieces of the fuzz targets: the example tally, an independent frame writer and
reader, the chunker, Hypothesis strategies for payloads, and the log check.

Nothing here uses wstrio's own codec: valid frames come from the ``websockets`` package
(with its permessage-deflate), hostile frames from :func:`raw_frame`, written byte by byte
with no rule enforced, and what a wstrio endpoint sends back is read by :func:`read_frames`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import cycle

import attrs
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

#: The sample key of RFC 6455 1.3, and the GUID its accept value is made with.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Close codes a peer may send (RFC 6455 7.4, the IANA registry, 3000-4999).
SENDABLE = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014)


# -- the budget -------------------------------------------------------------------------------
def budget(examples: int) -> int:
    """``examples`` times ``WSTRIO_FUZZ_SCALE`` (default 1): the normal run stays bounded,
    a long run (``WSTRIO_FUZZ_SCALE=50 pytest tests/fuzz``) digs deeper with the same tests."""
    return max(1, round(examples * float(os.environ.get("WSTRIO_FUZZ_SCALE", "1"))))


# -- the tally: examples run per target, printed in the terminal summary ----------------
@attrs.define
class Tally:
    examples: int = 0
    seconds: float = 0.0


TALLY: dict[str, Tally] = {}


@contextmanager
def example(target: str) -> Iterator[None]:
    """Count one example of ``target`` and the time it took (see conftest.py's summary)."""
    tally = TALLY.setdefault(target, Tally())
    start = time.perf_counter()
    try:
        yield
    finally:
        tally.examples += 1
        tally.seconds += time.perf_counter() - start


# -- bytes --------------------------------------------------------------------------------
def accept_of(key: str) -> str:
    """``Sec-WebSocket-Accept`` for ``key`` (RFC 6455 4.2.2), computed here, not by wstrio."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def chunked(data: bytes, sizes: Sequence[int], most: int | None = None) -> list[bytes]:
    """``data`` cut into pieces of ``sizes``, repeated cyclically until all of it is cut; with
    ``most``, the piece that would be the last allowed takes all that is left."""
    if not sizes:
        return [data] if data else []
    pieces, at = [], 0
    for size in cycle(sizes):
        if at >= len(data):
            break
        if most is not None and len(pieces) == most - 1:
            size = len(data) - at
        pieces.append(data[at : at + size])
        at += size
    return pieces


def _xor(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def raw_frame(
    *,
    fin: bool,
    rsv: int,
    opcode: int,
    payload: bytes,
    mask: bytes | None,
    length: int | None = None,
    wide: int = 0,
) -> bytes:
    """One frame, rules or no rules: ``rsv`` is the three RSV bits (0-7), ``mask`` the key
    or None, ``length`` the declared length (default the payload's), ``wide`` forces a 16-
    (1) or 64-bit (2) length field even where a shorter one fits."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F)
    bit = 0x80 if mask is not None else 0
    if size < 126 and wide == 0:
        head = struct.pack("!BB", first, bit | size)
    elif size < 65536 and wide < 2:
        head = struct.pack("!BBH", first, bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, bit | 127, size)
    if mask is None:
        return head + payload
    return head + mask + _xor(payload, mask)


@attrs.frozen
class WireFrame:
    """A frame as read off the wire by :func:`read_frames`."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes

    @property
    def close_code(self) -> int | None:
        """A close frame's code (1005 when it has none); None for other frames."""
        if self.opcode != 0x8:
            return None
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else 1005

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode("utf-8")


def read_frames(data: bytes) -> tuple[list[WireFrame], bytes]:
    """Every whole frame in ``data`` (unmasked as needed), and the bytes after the last."""
    frames, at = [], 0
    while len(data) - at >= 2:
        first, second = data[at], data[at + 1]
        size, head = second & 0x7F, 2
        if size == 126:
            if len(data) - at < 4:
                break
            size, head = struct.unpack_from("!H", data, at + 2)[0], 4
        elif size == 127:
            if len(data) - at < 10:
                break
            size, head = struct.unpack_from("!Q", data, at + 2)[0], 10
        key = b""
        if second & 0x80:
            key, head = data[at + head : at + head + 4], head + 4
        if len(data) - at < head + size:
            break
        payload = data[at + head : at + head + size]
        frames.append(
            WireFrame(
                bool(first & 0x80),
                (first >> 4) & 7,
                first & 0x0F,
                bool(key),
                _xor(payload, key) if key else payload,
            )
        )
        at += head + size
    return frames, data[at:]


def split_head(data: bytes) -> tuple[bytes, bytes]:
    """An HTTP head (without its blank line) and the bytes after it."""
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


# -- valid frames, from the websockets package ---------------------------------------------
def deflater(bits: int, *, fresh: bool) -> PerMessageDeflate:
    """websockets' permessage-deflate as the *sending* side: window ``bits``, a fresh
    compressor per message if ``fresh`` (no context takeover)."""
    return PerMessageDeflate(
        remote_no_context_takeover=False,
        local_no_context_takeover=fresh,
        remote_max_window_bits=15,
        local_max_window_bits=bits,
    )


def ws_frame(
    opcode: Opcode,
    data: bytes,
    *,
    fin: bool = True,
    mask: bool,
    deflate: PerMessageDeflate | None = None,
) -> bytes:
    """A valid frame written by websockets, compressed by ``deflate`` if given."""
    return Frame(opcode, data, fin=fin).serialize(
        mask=mask, extensions=[deflate] if deflate is not None else []
    )


# -- payload strategies --------------------------------------------------------------------
@st.composite
def big_binary(draw: st.DrawFn) -> bytes:
    """A payload past the 16-bit (or 7-bit) length field, cheap to draw: a drawn pattern
    repeated (compressible) or a drawn seed's bytes (not)."""
    size = draw(st.sampled_from([126, 127, 65535, 65536, 70000]))
    pattern = draw(st.binary(min_size=1, max_size=16))
    if draw(st.booleans()):
        return (pattern * (size // len(pattern) + 1))[:size]
    seed = int.from_bytes(hashlib.sha256(pattern).digest()[:8], "big")
    return seed.to_bytes(8, "big") * (size // 8) + b"\x00" * (size % 8)


@st.composite
def big_text(draw: st.DrawFn) -> str:
    """Text past the 16-bit length field, with multi-byte characters."""
    unit = draw(st.text(min_size=1, max_size=8))
    return unit * (draw(st.sampled_from([70, 8192, 16400])) // len(unit) + 1)


messages = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=300),
    st.text(alphabet="aé€😀", max_size=40),
    big_binary(),
    big_text(),
)


# -- the log check ---------------------------------------------------------------------------
def loud_records(records: Sequence[logging.LogRecord]) -> list[str]:
    """Log records above INFO, or carrying a traceback: what hostile input must never cause."""
    return [
        f"{record.levelname} {record.name}: {record.getMessage()}"
        for record in records
        if record.levelno > logging.INFO or record.exc_info is not None
    ]
