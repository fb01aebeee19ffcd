"""The small interface between the supervisor and a WebSocket engine.

The supervisor never touches trio-websocket directly: it talks to a
:class:`Transport`. ``wstrio._wire`` implements it (over trio-websocket's
public API); the test suite implements it as an in-memory fake driven on
Trio's ``MockClock``. A second engine only has to implement these methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import attrs

from .closecodes import Ending
from .headers import Headers
from .request import Request

Message = str | bytes


def check_message(message: object) -> Message:
    """``message`` as str or bytes; TypeError for other types, ValueError for text that is
    not valid Unicode (a lone surrogate cannot be sent as UTF-8, RFC 6455 5.6)."""
    if isinstance(message, str):
        if not message.isascii():  # O(1) for ASCII; only other text pays for the check
            _check_unicode(message)
        return message
    if isinstance(message, bytes):
        return message
    if isinstance(message, bytearray | memoryview):
        return bytes(message)
    raise TypeError(f"a message is str (text) or bytes (binary), not {type(message).__name__}")


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"a text message must be valid Unicode: a lone surrogate at index {exc.start}"
        ) from None


class Prepared:
    """One message for many connections, encoded once (gorilla's ``PreparedMessage``): its
    UTF-8 payload, and the frames built from it, cached by variant (plain, or compressed
    with given settings), so every member of a room gets the same bytes."""

    __slots__ = ("_frames", "message", "payload")

    def __init__(self, message: Message) -> None:
        self.message = message
        self.payload = message.encode("utf-8") if isinstance(message, str) else message
        self._frames: dict[object, bytes] = {}

    def __len__(self) -> int:
        return len(self.payload)

    @property
    def encodings(self) -> int:
        """How many different frames were built for it so far."""
        return len(self._frames)

    def frame(self, variant: object, build: Callable[[Prepared], bytes]) -> bytes:
        """The frame for ``variant``, built by ``build(self)`` the first time it is asked for."""
        frame = self._frames.get(variant)
        if frame is None:
            frame = self._frames[variant] = build(self)
        return frame


#: What an outbox holds: a session's own messages, and rooms' prepared ones.
Outgoing = Message | Prepared


class TransportClosed(Exception):
    """Raised by a transport when the connection can carry no more messages.

    ``ending`` is PEER_CLOSED (a close frame arrived and the engine answered
    it), PEER_VANISHED (no close frame: EOF or reset), MESSAGE_TOO_BIG or
    PROTOCOL_ERROR (the engine refused the peer's data).
    """

    def __init__(self, ending: Ending, code: int, reason: str = "") -> None:
        super().__init__(ending, code, reason)
        self.ending = ending
        self.code = code
        self.reason = reason


@attrs.frozen
class ConnectionInfo:
    """What the opening handshake carried."""

    path: str = "/"
    query: str = ""
    headers: Headers = attrs.field(factory=Headers)
    remote: tuple[str, int] | None = None
    subprotocol: str | None = None
    request: Request | None = None  # the server's view of the handshake (None on a client)


class Transport(Protocol):
    """One open WebSocket connection, as the supervisor sees it."""

    @property
    def info(self) -> ConnectionInfo: ...

    async def receive(self) -> Message:
        """The next whole message; raises TransportClosed."""
        ...

    async def send(self, message: Message) -> None:
        """Write one message; raises TransportClosed."""
        ...

    async def send_many(self, messages: Sequence[Outgoing]) -> None:
        """Write ``messages`` in order, as one write where the engine can, with any control
        frames (pongs, pings) that wait; ``messages`` may be empty. Raises TransportClosed."""
        ...

    def set_writer_wakeup(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` when a control frame waits while the writer may be idle: the
        writer then calls :meth:`send_many`, with no messages if it has none."""
        ...

    @property
    def writes_now(self) -> bool:
        """Whether :meth:`write_now` can ever write (False: it always returns False)."""
        ...

    def write_now(self, message: Outgoing) -> bool:
        """Write ``message`` without waiting, while the writer is idle; False if nothing
        was written (the writer must send it). True means it is the transport's: what the
        socket did not take goes out first in the next :meth:`send_many`, and the transport
        calls the writer's wake-up for it."""
        ...

    async def ping(self) -> None:
        """Send a ping and return when its pong arrives; raises TransportClosed."""
        ...

    async def close(self, code: int, reason: str) -> TransportClosed | None:
        """Send a close frame and wait for the peer's.

        Returns None when our frame went out; if the connection had already
        ended (the peer's close was answered, the peer vanished, the engine
        refused a message), sends nothing and returns how it ended: the wire
        wins over the supervisor's decision.
        """
        ...

    async def abort(self) -> None:
        """Drop the connection at once, without a close frame."""
        ...
