"""wstrio.testing: test handlers without sockets and without waiting for real time.

``open_memory_server(routes)`` runs a real :class:`wstrio.Server` (HTTP front,
handshake, supervisor, close table: all of it) whose connections are in-memory
streams, and ``server.connect(path)`` opens a real client session to it. No
socket is involved, so Trio's ``MockClock`` with ``autojump_threshold=0``
(pytest-trio's ``autojump_clock`` fixture) jumps over every timeout: a
30-second heartbeat test runs in milliseconds. ``server.faults(session)``
makes the client side misbehave: stop reading, vanish without a close frame,
send a malformed frame or a message of a given size.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

from .._client.connect import connect as _connect
from .._client.dial import HeadersLike, Target
from .._conn.config import Config
from .._conn.session import Session
from .._conn.stats import ServerStatistics
from .._http.answers import Response
from .._http.routes import Routes
from .._server import Server
from .._wire.frames import short_frame
from ._http import http_exchange
from ._redis import RedisServer
from ._streams import ClientEnd, MemoryStream, memory_stream_pair

__all__ = [
    "Faults",
    "MemoryServer",
    "MemoryStream",
    "RedisServer",
    "memory_stream_pair",
    "open_memory_server",
]


class Faults:
    """What a test can make the client side of an in-memory connection do."""

    def __init__(self, session: Session, end: ClientEnd) -> None:
        self._session = session
        self._end = end

    def stop_reading(self) -> None:
        """Stop reading: pings go unanswered and the server's writes back up."""
        self._end.stop_reading()

    def resume_reading(self) -> None:
        """Read again after :meth:`stop_reading`."""
        self._end.resume_reading()

    def vanish(self) -> None:
        """Drop the connection without a close frame, as a killed process does (1006)."""
        self._end.vanish()

    async def send_malformed_frame(self) -> None:
        """Send a frame with a reserved opcode (the server closes with 1002)."""
        await self._end.send_raw(short_frame(0x83, b"", mask=os.urandom(4)))

    async def send_message_of_size(self, size: int, *, binary: bool = False) -> None:
        """Send one valid message of ``size`` bytes (ASCII text when not ``binary``)."""
        await self._session.send(b"\0" * size if binary else "x" * size)


class MemoryServer:
    """A running :class:`wstrio.Server` reached through in-memory streams."""

    def __init__(self, server: Server, buffer: int) -> None:
        self.server = server
        self._buffer = buffer
        self._incoming, self._accepted = trio.open_memory_channel[MemoryStream](0)
        self._ends: dict[int, ClientEnd] = {}

    def statistics(self) -> ServerStatistics:
        """The server's statistics (see :meth:`wstrio.Server.statistics`)."""
        return self.server.statistics()

    async def wait_idle(self) -> None:
        """Return once no connection is left."""
        await self.server.wait_idle()

    async def open_stream(self, target: Target | None = None) -> ClientEnd:
        """A raw client stream to the server (an ``opener`` for ``wstrio.connect``)."""
        client, server_end = memory_stream_pair(self._buffer)
        await self._incoming.send(server_end)
        return client

    @asynccontextmanager
    async def connect(
        self,
        path: str = "/",
        *,
        config: Config = Config(),  # noqa: B008 - frozen, so sharing it is safe
        subprotocols: Iterable[str] = (),
        headers: HeadersLike | None = None,
    ) -> AsyncIterator[Session]:
        """A client session to ``path`` (query allowed), as ``wstrio.connect`` gives."""
        ends: list[ClientEnd] = []

        async def opener(target: Target) -> trio.abc.Stream:
            ends.append(await self.open_stream(target))
            return ends[-1]

        async with _connect(
            f"ws://wstrio.test{path}",
            config=config,
            subprotocols=subprotocols,
            headers=headers,
            opener=opener,
        ) as session:
            self._ends[id(session)] = ends[-1]
            try:
                yield session
            finally:
                del self._ends[id(session)]

    async def request(
        self,
        method: str,
        path: str = "/",
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """One plain HTTP request (``Host: wstrio.test``, ``Connection: close``): the
        server's answer as a :class:`wstrio.Response` (its ``Content-Type``, ``ETag``... in
        ``headers``). For ``HttpRoute``, ``Static`` and ``StaticDir`` routes and ``/healthz``."""
        stream = await self.open_stream()
        async with stream:
            return await http_exchange(stream, method, path, headers, body)

    def faults(self, session: Session) -> Faults:
        """Fault injection for a session opened with :meth:`connect`."""
        return Faults(session, self._ends[id(session)])


class _MemoryListener(trio.abc.Listener[MemoryStream]):
    def __init__(self, accepted: trio.MemoryReceiveChannel[MemoryStream]) -> None:
        self._accepted = accepted

    async def accept(self) -> MemoryStream:
        return await self._accepted.receive()

    async def aclose(self) -> None:
        await self._accepted.aclose()


@asynccontextmanager
async def open_memory_server(
    routes: Routes,
    *,
    config: Config = Config(),  # noqa: B008 - frozen, so sharing it is safe
    buffer: int = 65536,
) -> AsyncIterator[MemoryServer]:
    """Run a server for ``routes`` over in-memory streams (``buffer`` bytes each way).

    Leaving the block shuts the server down gracefully, as cancelling ``serve`` does.
    """
    server = Server(routes, config=config)
    memory = MemoryServer(server, buffer)
    listener = _MemoryListener(memory._accepted)
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(_serve, server, listener)
        try:
            yield memory
        except BaseException as exc:  # re-raised below: never inside an ExceptionGroup
            error = exc
        nursery.cancel_scope.cancel()
    if error is not None:
        raise error


async def _serve(server: Server, listener: _MemoryListener, task_status: Any) -> None:
    await server.serve_listeners([listener], task_status=task_status)
