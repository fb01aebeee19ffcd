"""How a room's messages look in Redis, as pure data: channel and key names, the pub/sub
payload, the stream entry, and the Lua scripts that keep history and presence.

A pub/sub payload is six lines joined by ``\\n``, the message last (it may hold
newlines): kind (``h``: kept in the history stream, ``p``: not), the stream
entry id (empty for ``p``), the origin hub, the message id (may be empty),
the frame type (``t`` text, ``b`` binary), and the payload bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .._conn.transport import Message
from .._rooms.bus import Envelope
from .._rooms.history import Entry

#: XADD (trimmed to the history size), PEXPIRE, PUBLISH: one atomic step, so the history
#: stream and the channel see the room's messages in the same order.
#: KEYS: stream, channel. ARGV: size, ttl ms ('' for none), origin, id, type, payload.
PUBLISH_KEPT = """
local sid = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*',
                       'o', ARGV[3], 'i', ARGV[4], 't', ARGV[5], 'p', ARGV[6])
if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
redis.call('PUBLISH', KEYS[2], 'h\\n' .. sid .. '\\n' .. ARGV[3] .. '\\n' .. ARGV[4] .. '\\n'
           .. ARGV[5] .. '\\n' .. ARGV[6])
return sid
"""

#: Drop expired members, then the rest as key, "<joined ms> <name>", key, ... .
#: KEYS: the expiry sorted set, the names hash. ARGV: now in ms.
PRESENCE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local keys = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, key in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not redis.call('ZSCORE', KEYS[1], key) then redis.call('HDEL', KEYS[2], key) end
end
if #keys == 0 then return {} end
local values = redis.call('HMGET', KEYS[2], unpack(keys))
local pairs = {}
for i, key in ipairs(keys) do
  if values[i] then table.insert(pairs, key); table.insert(pairs, values[i]) end
end
return pairs
"""


@attrs.frozen
class Keys:
    """Redis names under one prefix (``wstrio`` by default)."""

    prefix: str = "wstrio"

    def channel(self, room: str) -> str:
        return f"{self.prefix}:room:{room}"

    def room_of(self, channel: str | bytes) -> str:
        text = channel.decode() if isinstance(channel, bytes) else channel
        return text[len(self.prefix) + len(":room:") :]

    def stream(self, room: str) -> str:
        return f"{self.prefix}:history:{room}"

    def presence(self, room: str) -> tuple[str, str]:
        return f"{self.prefix}:presence:{room}", f"{self.prefix}:presence-names:{room}"


def split_message(message: Message) -> tuple[bytes, bytes]:
    """(frame type, payload bytes) of a message."""
    if isinstance(message, str):
        return b"t", message.encode()
    return b"b", bytes(message)


def join_message(kind: bytes, payload: bytes) -> Message:
    return payload.decode() if kind == b"t" else payload


def plain_payload(envelope: Envelope) -> bytes:
    """The pub/sub payload of a message of a room without history."""
    kind, payload = split_message(envelope.message)
    return b"\n".join(
        [b"p", b"", envelope.origin.encode(), (envelope.id or "").encode(), kind, payload]
    )


def parse_payload(room: str, data: bytes) -> tuple[str | None, Envelope]:
    """(stream entry id or None, the envelope) of a pub/sub payload; ValueError if malformed."""
    kind, sid, origin, id, type_, payload = data.split(b"\n", 5)
    if kind not in (b"h", b"p") or type_ not in (b"t", b"b"):
        raise ValueError("not a wstrio room message")
    kept = 1 if kind == b"h" else 0  # the size is the sender's business: 1 says "kept"
    message = join_message(type_, payload)
    envelope = Envelope(room, id.decode() or None, origin.decode(), message, history=kept)
    return (sid.decode() if kind == b"h" else None), envelope


def entry_of(fields: dict[bytes, bytes]) -> Entry:
    """A history entry from a stream entry's fields."""
    return Entry(fields[b"i"].decode(), join_message(fields[b"t"], fields[b"p"]))


def stream_order(sid: str) -> tuple[int, int]:
    """A stream entry id (``"<ms>-<seq>"``) as a sortable pair."""
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


def fields_of(values: Mapping[str | bytes, str | bytes]) -> dict[bytes, bytes]:
    """A stream entry's fields as bytes (coredis gives str or bytes)."""
    return {_bytes(key): _bytes(value) for key, value in values.items()}


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def text_of(value: object) -> str:
    """A Redis reply (bytes or str) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
