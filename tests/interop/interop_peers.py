"""The checks every client of the interop matrix runs, and the Python peers.

Every client (Chromium, Node's ``ws``, gorilla, the Python libraries below and wstrio's own)
runs the same six checks against a server's routes and reports one JSON object per check;
``matrix.py`` judges them. The routes every server of the matrix serves (wstrio's in
``conftest.py``, the peers' here, in ``node/server.js`` and ``go/peer.go``):

``/echo``
    sends every message back, text as text and binary as binary.
``/close?code=C&reason=R``
    closes at once with that code and reason.
``/observe?id=I``
    sends :data:`OBSERVING` (so the client closes only once the route runs), reads until the
    client closes and remembers the code and reason it saw under ``I``.
``/report?id=I``
    sends what ``/observe`` saw under ``I`` as JSON text (waiting for it), then closes with 1000.
``/ping``
    once the client's first message came, pings with :data:`PING`; once the pong comes
    back, sends :data:`PONG_TEXT`.
``/ping-at-once``
    the same, but pings as soon as the handshake is done (the ping may reach the client in
    the same read as the 101).
``/proto``
    speaks the subprotocol ``chat.v1`` and sends the one agreed (or ``""``) as its first message.

``python tests/interop/interop_peers.py client IMPL BASE PREFIX`` runs the checks with IMPL's
client against BASE (``ws://host:port``) and prints them; ``... server IMPL`` serves the routes
on 127.0.0.1, prints ``{"port": N}`` and stops when its standard input closes. IMPL is
``websockets-asyncio``, ``websockets-trio`` or ``trio-websocket``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

import trio

Message = str | bytes
Record = dict[str, Any]

MAX_MESSAGE = 16 * 2**20
SIZES = (0, 125, 126, 65536, 2**20, 16 * 2**20)
KINDS = ("text", "binary")
CLOSES = ((1000, ""), (1001, "going away"), (4000, "bye ✓"))
PING = b"interop-ping"
PONG_TEXT = "pong received"
OBSERVING = "observing"
SUBPROTOCOL = "chat.v1"
OFFER = ("x.unknown", SUBPROTOCOL)
STEP_TIMEOUT = 30.0  # seconds, for each check
AT_ONCE_TIMEOUT = 5.0  # seconds for the pong of a ping sent right after the 101
CHECKS = (
    "echo",
    "ping_from_client",
    "close_from_server",
    "close_from_client",
    "ping_from_server",
    "ping_at_once",
    "subprotocol",
)
_TEXT_UNIT = "é✓ab"  # 7 bytes of UTF-8
_BYTES_UNIT = bytes(range(251))


def payload(kind: str, size: int) -> Message:
    """The message of ``kind`` every client sends: text of exactly ``size`` UTF-8 bytes
    (``"é✓ab"`` repeated, then ``"x"``), or bytes counting 0..250 over and over."""
    if kind == "text":
        return _TEXT_UNIT * (size // 7) + "x" * (size % 7)
    return (_BYTES_UNIT * (size // 251 + 1))[:size]


def verdict(sent: Message, got: Message) -> str:
    """``"ok"`` when ``got`` is ``sent`` (same type, same content), else what differs."""
    if isinstance(got, bytes) and isinstance(sent, str):
        return "binary instead of text"
    if isinstance(got, str) and isinstance(sent, bytes):
        return "text instead of binary"
    if got != sent:
        size = len(got.encode() if isinstance(got, str) else got)
        return f"different content ({size} bytes)"
    return "ok"


class PeerClosed(Exception):
    """The connection ended: the close code and reason this side received."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class Conn(Protocol):
    """One open connection, whichever library holds it."""

    subprotocol: str | None
    extensions: str  # the agreed Sec-WebSocket-Extensions ("" for none)

    async def send(self, message: Message) -> None: ...

    async def recv(self) -> Message:
        """The next message; PeerClosed once the connection has ended."""
        ...

    async def ping(self, data: bytes) -> bool:
        """Ping and wait for the pong; whether the pong answered this ping."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code`` and ``reason``; returns when the close handshake is done."""
        ...


class Client(Protocol):
    """A library's client: connections and deadlines in its own async framework."""

    def connect(
        self, url: str, subprotocols: tuple[str, ...] = (), *, speaks_first: bool = False
    ) -> AbstractAsyncContextManager[Conn]:
        """A connection to ``url``; ``speaks_first``: the server sends a frame right after
        its 101 (wstrio's client then reads the two together)."""
        ...

    def deadline(self, seconds: float) -> AbstractAsyncContextManager[object]: ...


async def until_closed(conn: Conn) -> Record:
    """Read (discarding messages) until the connection ends: the code and reason received."""
    while True:
        try:
            await conn.recv()
        except PeerClosed as closed:
            return {"code": closed.code, "reason": closed.reason}


async def run_checks(client: Client, base: str, prefix: str) -> list[Record]:
    """The six checks against the server at ``base`` (``ws://host:port``), in order; a check
    that fails records its error (``{"check": ..., "error": ...}``) and the next one runs."""

    async def echo() -> Record:
        async with client.connect(base + "/echo") as conn:
            out: Record = {"extensions": conn.extensions}
            for kind in KINDS:
                out[kind] = []
                for size in SIZES:
                    message = payload(kind, size)
                    await conn.send(message)
                    out[kind].append(verdict(message, await conn.recv()))
            await conn.close(1000, "")
        return out

    async def ping_from_client() -> Record:
        async with client.connect(base + "/echo") as conn:
            answered = await conn.ping(PING)
            await conn.close(1000, "")
        return {"answered": answered}

    async def close_from_server() -> Record:
        seen = []
        for code, reason in CLOSES:
            query = urlencode({"code": code, "reason": reason})
            async with client.connect(f"{base}/close?{query}", speaks_first=True) as conn:
                seen.append(await until_closed(conn))
        return {"seen": seen}

    async def close_from_client() -> Record:
        seen = []
        for code, reason in CLOSES:
            query = urlencode({"id": f"{prefix}-{code}"})
            async with client.connect(f"{base}/observe?{query}", speaks_first=True) as conn:
                await conn.recv()  # OBSERVING: the route runs
                await conn.close(code, reason)
            async with client.connect(f"{base}/report?{query}", speaks_first=True) as conn:
                report = await conn.recv()
                await until_closed(conn)
            seen.append(json.loads(report))
        return {"seen": seen}

    async def ping_from_server() -> Record:
        async with client.connect(base + "/ping") as conn:
            await conn.send("ping me")
            text = await conn.recv()
            await conn.close(1000, "")
        return {"text": text}

    async def ping_at_once() -> Record:
        async with client.connect(base + "/ping-at-once", speaks_first=True) as conn:
            async with client.deadline(AT_ONCE_TIMEOUT):
                text = await conn.recv()
            await conn.close(1000, "")
        return {"text": text}

    async def subprotocol() -> Record:
        async with client.connect(base + "/proto", OFFER, speaks_first=True) as conn:
            server = await conn.recv()
            mine = conn.subprotocol
            await conn.close(1000, "")
        return {"client": mine, "server": server}

    steps: dict[str, Callable[[], Awaitable[Record]]] = {
        "echo": echo,
        "ping_from_client": ping_from_client,
        "close_from_server": close_from_server,
        "close_from_client": close_from_client,
        "ping_from_server": ping_from_server,
        "ping_at_once": ping_at_once,
        "subprotocol": subprotocol,
    }
    records = []
    for name in CHECKS:
        try:
            async with client.deadline(STEP_TIMEOUT):
                record = await steps[name]()
        except Exception as exc:  # recorded: the matrix shows it as the check's failure
            record = {"error": f"{type(exc).__name__}: {exc}"}
        records.append({"check": name, **record})
    return records


# ---- the websockets package (asyncio and trio implementations) ----


class WebsocketsConn:
    """A connection of the ``websockets`` package, asyncio or trio implementation."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.subprotocol = ws.subprotocol
        self.extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")

    async def send(self, message: Message) -> None:
        await self._ws.send(message)

    async def recv(self) -> Message:
        from websockets.exceptions import ConnectionClosed

        try:
            message: Message = await self._ws.recv()
        except ConnectionClosed as exc:
            frame = exc.rcvd
            raise PeerClosed(frame.code if frame else 1006, frame.reason if frame else "") from None
        return message

    async def ping(self, data: bytes) -> bool:
        waiter = await self._ws.ping(data)
        if isinstance(waiter, trio.Event):
            await waiter.wait()
        else:
            await waiter
        return True  # websockets matches pongs to pings by their payload

    async def close(self, code: int, reason: str) -> None:
        close = getattr(self._ws, "aclose", None) or self._ws.close  # trio's, asyncio's
        await close(code, reason)


class WebsocketsAsyncioClient:
    """``websockets.asyncio.client.connect``, messages up to 16 MiB, no keepalive pings."""

    @asynccontextmanager
    async def connect(
        self, url: str, subprotocols: tuple[str, ...] = (), *, speaks_first: bool = False
    ) -> AsyncIterator[Conn]:
        from websockets.asyncio.client import connect

        options = {"max_size": MAX_MESSAGE, "ping_interval": None, "open_timeout": 10}
        async with connect(url, subprotocols=list(subprotocols) or None, **options) as ws:
            yield WebsocketsConn(ws)

    def deadline(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)


class WebsocketsTrioClient:
    """``websockets.trio.client.connect``, messages up to 16 MiB, no keepalive pings."""

    @asynccontextmanager
    async def connect(
        self, url: str, subprotocols: tuple[str, ...] = (), *, speaks_first: bool = False
    ) -> AsyncIterator[Conn]:
        from websockets.trio.client import connect

        options = {"max_size": MAX_MESSAGE, "ping_interval": None, "open_timeout": 10}
        async with connect(url, subprotocols=list(subprotocols) or None, **options) as ws:
            yield WebsocketsConn(ws)

    @asynccontextmanager
    async def deadline(self, seconds: float) -> AsyncIterator[object]:
        with trio.fail_after(seconds):
            yield None


# ---- trio-websocket ----


class TrioWebsocketConn:
    """A trio-websocket connection (client or server side)."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.subprotocol = ws.subprotocol
        headers = dict(ws.handshake_headers) if ws.handshake_headers else {}
        self.extensions = headers.get(b"sec-websocket-extensions", b"").decode()

    async def send(self, message: Message) -> None:
        await self._ws.send_message(message)

    async def recv(self) -> Message:
        from trio_websocket import ConnectionClosed

        try:
            message: Message = await self._ws.get_message()
        except ConnectionClosed as exc:
            raise PeerClosed(exc.reason.code, exc.reason.reason or "") from None
        return message

    async def ping(self, data: bytes) -> bool:
        await self._ws.ping(data)  # returns when the pong with this payload came back
        return True

    async def close(self, code: int, reason: str) -> None:
        await self._ws.aclose(code, reason)


class TrioWebsocketClient:
    """``trio_websocket.open_websocket_url``, messages up to 16 MiB."""

    @asynccontextmanager
    async def connect(
        self, url: str, subprotocols: tuple[str, ...] = (), *, speaks_first: bool = False
    ) -> AsyncIterator[Conn]:
        from trio_websocket import open_websocket_url

        async with open_websocket_url(
            url, subprotocols=list(subprotocols), max_message_size=MAX_MESSAGE, connect_timeout=10
        ) as ws:
            yield TrioWebsocketConn(ws)

    @asynccontextmanager
    async def deadline(self, seconds: float) -> AsyncIterator[object]:
        with trio.fail_after(seconds):
            yield None


# ---- the peer routes, on any of the three servers ----


class Book:
    """What ``/observe`` saw, by id, for ``/report`` to wait for (``event`` makes an
    asyncio or a trio event)."""

    def __init__(self, event: Callable[[], Any]) -> None:
        self._event = event
        self._seen: dict[str, Record] = {}
        self._news: dict[str, Any] = {}

    def _news_of(self, key: str) -> Any:
        return self._news.setdefault(key, self._event())

    def record(self, key: str, seen: Record) -> None:
        self._seen[key] = seen
        self._news_of(key).set()

    async def wait(self, key: str) -> Record:
        await self._news_of(key).wait()
        return self._seen[key]


async def serve_route(conn: Conn, target: str, book: Book) -> None:
    """Serve one connection on the route ``target`` names (path and query)."""
    path, _, query = target.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if path == "/echo":
        while True:
            try:
                message = await conn.recv()
            except PeerClosed:
                return
            await conn.send(message)
    elif path == "/close":
        await conn.close(int(params["code"]), params.get("reason", ""))
    elif path == "/observe":
        await conn.send(OBSERVING)
        book.record(params["id"], await until_closed(conn))
    elif path == "/report":
        await conn.send(json.dumps(await book.wait(params["id"]), ensure_ascii=False))
        await conn.close(1000, "")
    elif path in ("/ping", "/ping-at-once"):
        if path == "/ping":
            await conn.recv()  # the client's first message
        if await conn.ping(PING):
            await conn.send(PONG_TEXT)
        await until_closed(conn)
    elif path == "/proto":
        await conn.send(conn.subprotocol or "")
        await until_closed(conn)
    else:
        await conn.close(4404, f"no route {path}")


def _select_subprotocol(connection: object, offered: Sequence[str]) -> str | None:
    """chat.v1 when the client offers it, else none (websockets' ``subprotocols`` option
    would refuse a client that offers none)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


def _ready(port: int) -> None:
    print(json.dumps({"port": port}), flush=True)


async def _serve_websockets_asyncio() -> None:
    from websockets.asyncio.server import serve

    book = Book(asyncio.Event)

    async def handler(ws: Any) -> None:
        await serve_route(WebsocketsConn(ws), ws.request.path, book)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        select_subprotocol=_select_subprotocol,
        max_size=MAX_MESSAGE,
        ping_interval=None,
    ) as server:
        _ready(server.sockets[0].getsockname()[1])
        await asyncio.to_thread(sys.stdin.read)  # until the test closes our stdin


async def _serve_websockets_trio() -> None:
    from websockets.trio.server import serve

    book = Book(trio.Event)

    async def handler(ws: Any) -> None:
        await serve_route(WebsocketsConn(ws), ws.request.path, book)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                serve,
                handler,
                0,
                host="127.0.0.1",
                select_subprotocol=_select_subprotocol,
                max_size=MAX_MESSAGE,
                ping_interval=None,
            )
        )
        _ready(server.listeners[0].socket.getsockname()[1])
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()


async def _serve_trio_websocket() -> None:
    from trio_websocket import serve_websocket

    book = Book(trio.Event)

    async def handler(request: Any) -> None:
        chosen = SUBPROTOCOL if SUBPROTOCOL in request.proposed_subprotocols else None
        ws = await request.accept(subprotocol=chosen)
        await serve_route(TrioWebsocketConn(ws), request.path, book)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            functools.partial(
                serve_websocket,
                handler,
                "127.0.0.1",
                0,
                ssl_context=None,
                max_message_size=MAX_MESSAGE,
            )
        )
        _ready(server.port)
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()


CLIENTS: dict[str, Callable[[], Client]] = {
    "websockets-asyncio": WebsocketsAsyncioClient,
    "websockets-trio": WebsocketsTrioClient,
    "trio-websocket": TrioWebsocketClient,
}


def main(argv: list[str]) -> int:
    """``client IMPL BASE PREFIX`` or ``server IMPL`` (see the module's docstring)."""
    if len(argv) == 4 and argv[0] == "client" and argv[1] in CLIENTS:
        client = CLIENTS[argv[1]]()
        if argv[1] == "websockets-asyncio":
            records = asyncio.run(run_checks(client, argv[2], argv[3]))
        else:
            records = trio.run(run_checks, client, argv[2], argv[3])
        for record in records:
            print(json.dumps(record, ensure_ascii=False), flush=True)
        return 0
    servers = {
        "websockets-asyncio": lambda: asyncio.run(_serve_websockets_asyncio()),
        "websockets-trio": lambda: trio.run(_serve_websockets_trio),
        "trio-websocket": lambda: trio.run(_serve_trio_websocket),
    }
    if len(argv) == 2 and argv[0] == "server" and argv[1] in servers:
        servers[argv[1]]()
        return 0
    print(f"usage: client {{{','.join(CLIENTS)}}} BASE PREFIX | server IMPL", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
