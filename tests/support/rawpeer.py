"""A deliberately misbehaving WebSocket client, built on wsproto (not our code).

It answers nothing by itself: no pongs, no close replies, unless asked. Tests
use it for the peers a polite client library cannot play: one that ignores
pings, one that vanishes, one that stops reading.
"""

from __future__ import annotations

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    RejectConnection,
    Request,
    TextMessage,
)


class RawPeer:
    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self._events: list[Event] = []

    @classmethod
    async def connect(
        cls, port: int, path: str = "/ws/echo", *, receive_buffer: int | None = None
    ) -> RawPeer:
        """Connect and handshake; ``receive_buffer`` sets a small SO_RCVBUF first."""
        sock = trio.socket.socket()
        if receive_buffer is not None:
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, receive_buffer)
        await sock.connect(("127.0.0.1", port))
        stream = trio.SocketStream(sock)
        ws = WSConnection(ConnectionType.CLIENT)
        peer = cls(stream, ws)
        await stream.send_all(ws.send(Request(host=f"127.0.0.1:{port}", target=path)))
        event = await peer.next_event()
        if isinstance(event, RejectConnection):
            raise ConnectionRefusedError(event.status_code)
        assert isinstance(event, AcceptConnection), event
        return peer

    async def next_event(self) -> Event | None:
        """The next protocol event, or None when the server closed TCP."""
        while not self._events:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
            if not data:
                return None
            self.ws.receive_data(data)
            self._events.extend(self.ws.events())
        return self._events.pop(0)

    async def send(self, message: str | bytes) -> None:
        event: Message[str] | Message[bytes]
        if isinstance(message, str):
            event = TextMessage(data=message)
        else:
            event = BytesMessage(data=message)
        await self.stream.send_all(self.ws.send(event))

    async def close_frame(self) -> tuple[int, str] | None:
        """Read until the server's close frame (returned) or EOF (None); skip the rest."""
        while True:
            event = await self.next_event()
            if event is None:
                return None
            if isinstance(event, CloseConnection):
                return event.code, event.reason

    async def vanish(self) -> None:
        """Drop TCP without a close frame."""
        await trio.aclose_forcefully(self.stream)
