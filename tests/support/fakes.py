"""An in-memory Transport: the supervisor's unit-level peer, driven on MockClock.

It behaves like an engine that answers a peer's close frame itself (as
trio-websocket does) and records every frame the supervisor puts on the wire.
The test drives the peer's side through the methods under "peer actions".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import attrs
import trio

from wstrio._conn.closecodes import Ending
from wstrio._conn.outbox import unwrap
from wstrio._conn.transport import ConnectionInfo, Message, Outgoing, TransportClosed


@attrs.frozen
class _PeerClose:
    code: int
    reason: str


@attrs.frozen
class _Vanish:
    pass


class FakeTransport:
    def __init__(
        self,
        *,
        info: ConnectionInfo | None = None,
        max_message_size: int = 2**20,
        pong_delay: float = 0.01,
    ) -> None:
        self._info = info or ConnectionInfo(path="/fake", remote=("127.0.0.1", 1))
        self._max = max_message_size
        self._inbound_send, self._inbound = trio.open_memory_channel[object](math.inf)
        self.pong_delay = pong_delay
        self.answers_pings = True
        self.answers_close = True
        self.reading = True
        self._reading_again = trio.Event()
        self.received: list[Message] = []  # what the supervisor sent, in order
        self.wire: list[object] = []  # messages and ("close", code, reason), in order
        self.close_frames: list[tuple[int, str]] = []  # every close frame sent to the peer
        self.aborted = False
        self.pings = 0
        self.direct = False  # write_now takes messages (the native engine on a plain socket)
        self.direct_writes = 0
        self._closed: TransportClosed | None = None
        self._close_reply = trio.Event()

    # -- peer actions ------------------------------------------------------------------
    def peer_send(self, message: Message) -> None:
        self._inbound_send.send_nowait(message)

    def peer_close(self, code: int = 1000, reason: str = "") -> None:
        self._inbound_send.send_nowait(_PeerClose(code, reason))

    def peer_vanish(self) -> None:
        self._inbound_send.send_nowait(_Vanish())

    def stop_reading(self) -> None:
        self.reading = False

    # -- the Transport interface ------------------------------------------------------
    @property
    def info(self) -> ConnectionInfo:
        return self._info

    def _fail(self, closed: TransportClosed) -> TransportClosed:
        if self._closed is None:
            self._closed = closed
        return self._closed

    async def receive(self) -> Message:
        if self._closed is not None:
            raise self._closed
        item = await self._inbound.receive()
        if self._closed is not None:
            raise self._closed
        if isinstance(item, _PeerClose):
            self.close_frames.append((item.code, item.reason))  # the engine's echo
            raise self._fail(TransportClosed(Ending.PEER_CLOSED, item.code, item.reason))
        if isinstance(item, _Vanish):
            raise self._fail(TransportClosed(Ending.PEER_VANISHED, 1006, ""))
        assert isinstance(item, str | bytes)
        if len(item) > self._max:  # refused, but no close frame sent yet
            self._inbound_send.send_nowait(item)
            raise TransportClosed(Ending.MESSAGE_TOO_BIG, 1009, "message too big")
        return item

    async def send(self, message: Message) -> None:
        if self._closed is not None:
            raise self._closed
        if not self.reading:
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        self.received.append(message)
        self.wire.append(message)

    async def send_many(self, messages: Sequence[Outgoing]) -> None:
        if not messages:
            await trio.lowlevel.checkpoint()
        for message in messages:
            await self.send(unwrap(message))

    def set_writer_wakeup(self, wake: Callable[[], None]) -> None:
        pass  # this engine writes no control frame of its own

    @property
    def writes_now(self) -> bool:
        return self.direct

    def write_now(self, message: Outgoing) -> bool:
        """With ``direct``: a reading peer takes the message at once (like a socket with room)."""
        if not self.direct or not self.reading or self._closed is not None:
            return False
        self.received.append(unwrap(message))
        self.wire.append(unwrap(message))
        self.direct_writes += 1
        return True

    async def ping(self) -> None:
        if self._closed is not None:
            raise self._closed
        self.pings += 1
        if not self.answers_pings:
            await trio.sleep_forever()
        await trio.sleep(self.pong_delay)

    async def close(self, code: int, reason: str) -> TransportClosed | None:
        if self._closed is not None:
            await trio.lowlevel.checkpoint()
            return self._closed
        self.close_frames.append((code, reason))
        self.wire.append(("close", code, reason))
        self._closed = TransportClosed(Ending.PEER_CLOSED, code, reason)
        if not (self.answers_close and self.reading):
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        return None

    async def abort(self) -> None:
        self.aborted = True
        self._fail(TransportClosed(Ending.PEER_VANISHED, 1006, ""))
        await trio.lowlevel.checkpoint()
