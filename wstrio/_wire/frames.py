"""WebSocket frames as bytes (RFC 6455 5.2): opcodes, masking, and encoding.

A frame is ``FIN RSV1-3 opcode | MASK length [extended length] [mask key]
payload``. A client masks every frame it sends and a server never does (5.1,
5.3). Control frames (close, ping, pong) carry at most 125 bytes and are never
fragmented (5.5). These functions are pure; the parser is in ``parser.py``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

_c_apply_mask: Callable[[bytes, bytes], bytes] | None
try:  # the websockets package's C masker: 100 times faster at 64 KiB than Python can be
    from websockets.speedups import apply_mask as _c_apply_mask
except ImportError:  # pragma: no cover - a platform without its wheel
    _c_apply_mask = None

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
DATA_OPCODES = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY})
CONTROL_OPCODES = frozenset({OP_CLOSE, OP_PING, OP_PONG})

#: The longest payload of a control frame (RFC 6455 5.5).
MAX_CONTROL_PAYLOAD = 125
#: A close frame's reason must fit in 123 bytes of UTF-8 (RFC 6455 5.5.1).
_MAX_REASON_BYTES = 123

_LENGTH_16 = struct.Struct("!BBH")
_LENGTH_64 = struct.Struct("!BBQ")
_CODE = struct.Struct("!H")


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """``data`` XOR-ed with the 4-byte ``mask`` repeated (RFC 6455 5.3); its own inverse."""
    if _c_apply_mask is not None:
        return _c_apply_mask(data, mask)
    return _python_apply_mask(data, mask)


def _python_apply_mask(data: bytes, mask: bytes) -> bytes:
    size = len(data)
    if not size:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def encode(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bool = False, rsv1: bool = False
) -> bytes:
    """One whole frame; ``mask`` for a client's frames (a fresh random key each)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 65536:
        head = _LENGTH_16.pack(first, bit | 126, size)
    else:
        head = _LENGTH_64.pack(first, bit | 127, size)
    if mask:
        key = os.urandom(4)
        return head + key + apply_mask(payload, key)
    return head + payload


def close_payload(code: int | None, reason: str = "") -> bytes:
    """A close frame's payload: the code and a reason cut to fit (none for 1005, no status)."""
    if code is None or code == 1005:
        return b""
    return _CODE.pack(code) + short_reason(reason)


def short_reason(reason: str) -> bytes:
    """A close reason cut to fit a control frame (123 bytes), on a UTF-8 boundary."""
    cut = reason.encode("utf-8")[:_MAX_REASON_BYTES]
    return cut.decode("utf-8", "ignore").encode("utf-8")


def short_frame(first_byte: int, payload: bytes, *, mask: bytes | None = None) -> bytes:
    """A frame of at most 125 payload bytes (FIN/opcode in ``first_byte``), masked with
    ``mask`` if given: for tests and for what another engine did not send itself."""
    if mask is None:
        return bytes((first_byte, len(payload))) + payload
    return bytes((first_byte, 0x80 | len(payload))) + mask + apply_mask(payload, mask)


def close_frame(code: int, reason: str, *, mask: bytes | None = None) -> bytes:
    """A whole close frame (opcode 0x8, FIN set) with ``code`` and a fitting ``reason``."""
    return short_frame(0x80 | OP_CLOSE, close_payload(code, reason), mask=mask)
