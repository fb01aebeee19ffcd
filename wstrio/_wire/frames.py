"""WebSocket frames as bytes (RFC 6455 5.2), for what an engine does not send itself."""

from __future__ import annotations

import struct

#: A close frame's reason must fit in 123 bytes of UTF-8 (RFC 6455 5.5.1).
_MAX_REASON_BYTES = 123


def short_reason(reason: str) -> bytes:
    """A close reason cut to fit a control frame (123 bytes), on a UTF-8 boundary."""
    cut = reason.encode("utf-8")[:_MAX_REASON_BYTES]
    return cut.decode("utf-8", "ignore").encode("utf-8")


def short_frame(first_byte: int, payload: bytes, *, mask: bytes | None = None) -> bytes:
    """A frame of at most 125 payload bytes (FIN/opcode in ``first_byte``), masked if ``mask``.

    A client masks every frame and a server never does (RFC 6455 5.1, 5.3).
    """
    if mask is None:
        return bytes((first_byte, len(payload))) + payload
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes((first_byte, 0x80 | len(payload))) + mask + masked


def close_frame(code: int, reason: str, *, mask: bytes | None = None) -> bytes:
    """A whole close frame (opcode 0x8, FIN set) with ``code`` and a fitting ``reason``."""
    return short_frame(0x88, struct.pack("!H", code) + short_reason(reason), mask=mask)
