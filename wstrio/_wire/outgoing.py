"""Messages to frames on the native engine: :class:`Encoder`, one per connection.

A prepared message (a room's broadcast) keeps the frames built from it, so
every member whose frame would be the same bytes (a server's unmasked frames,
plain or compressed without context) shares one; anything else is framed for
this connection, compressed when permessage-deflate was agreed and the message
is at least ``compression_threshold`` bytes.
"""

from __future__ import annotations

from .._conn.transport import Message, Outgoing, Prepared
from .deflate import Deflater
from .frames import OP_BINARY, OP_TEXT, encode


class Encoder:
    """Frames one connection's outgoing messages (masked on a client)."""

    __slots__ = ("client", "deflater", "threshold")

    def __init__(self, deflater: Deflater | None, threshold: int, *, client: bool) -> None:
        self.deflater = deflater
        self.threshold = threshold
        self.client = client

    def frame(self, message: Outgoing) -> bytes:
        """The frame for one message: a prepared message's shared frame where the bytes are
        the same for every peer (a server's unmasked frames, compressed without context)."""
        deflater = self.deflater
        compress = deflater is not None and len(message) >= self.threshold
        if isinstance(message, Prepared) and not self.client:
            if not compress:
                return message.frame(_PLAIN, _plain_frame)
            assert deflater is not None
            if deflater.fresh:
                return message.frame(deflater.variant, deflater.frame)
            payload, opcode = message.payload, _opcode_of(message.message)
        elif isinstance(message, Prepared):
            payload, opcode = message.payload, _opcode_of(message.message)
        elif isinstance(message, str):
            payload, opcode = message.encode("utf-8"), OP_TEXT
        else:
            payload, opcode = message, OP_BINARY
        if compress:
            assert deflater is not None
            return encode(opcode, deflater.compress(payload), mask=self.client, rsv1=True)
        return encode(opcode, payload, mask=self.client)


_PLAIN = "plain"


def _opcode_of(message: Message) -> int:
    return OP_TEXT if isinstance(message, str) else OP_BINARY


def _plain_frame(prepared: Prepared) -> bytes:
    return encode(_opcode_of(prepared.message), prepared.payload)
