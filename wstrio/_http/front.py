"""One accepted connection: HTTP requests until one upgrades to a WebSocket.

Every request must arrive within ``handshake_timeout`` (slow or idle clients are
dropped). Plain requests are answered here, with keep-alive; an upgrade request
is checked (route, method, handshake headers, origin, capacity, shutdown) and,
if it passes, replayed into trio-websocket's ``wrap_server_stream``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import h11
import trio
import trio_websocket

from .._conn.supervisor import Supervisor
from .._conn.transport import ConnectionInfo, Headers
from .._wire.tws import EngineTransport, GuardedNursery
from .endpoints import PROMETHEUS_CONTENT_TYPE, health_json, prometheus_text
from .parse import BadRequest, ReplayStream, RequestHead, raw_response, read_head, response_bytes

if TYPE_CHECKING:
    from .._server import Server

_READ_METHODS = ("GET", "HEAD")
_VERSION_13 = (("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"))


async def serve_connection(server: Server, stream: trio.abc.Stream) -> None:
    """Serve HTTP on ``stream`` until it closes or upgrades."""
    config = server.config
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_header_bytes)
    while True:
        with trio.move_on_after(config.handshake_timeout) as read_scope:
            server.fronts.add(read_scope)
            try:
                head = await read_head(conn, stream, config.max_header_bytes)
            except BadRequest as exc:
                await _send_quietly(server, stream, raw_response(exc.status, exc.message))
                return
            finally:
                server.fronts.discard(read_scope)
        if read_scope.cancelled_caught:
            if server.stopping and conn.trailing_data[0]:  # a request was on its way
                await _send_quietly(server, stream, raw_response(503, "server shutting down"))
            return
        if head is None:
            return
        if head.wants_websocket:
            await _upgrade(server, stream, head)
            return
        server.http_requests += 1
        with trio.move_on_after(config.write_timeout) as write_scope:
            await stream.send_all(_answer(server, conn, head))
        if write_scope.cancelled_caught:  # the client does not read its answer
            return
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return
        conn.start_next_cycle()


def _answer(server: Server, conn: h11.Connection, head: RequestHead) -> bytes:
    """The response to a plain HTTP request."""
    head_only = head.method == "HEAD"
    close = server.stopping
    path = head.path
    known = path in server.routes or path in server.statics or path in ("/healthz", "/metrics")
    if not known:
        return response_bytes(conn, 404, b"not found\n", head_only=head_only, close=close)
    if head.method not in _READ_METHODS:
        return response_bytes(
            conn,
            405,
            b"method not allowed\n",
            head_only=head_only,
            headers=(("Allow", "GET, HEAD"),),
            close=close,
        )
    if path == "/healthz":
        body = health_json(server.statistics(), stopping=server.stopping)
        status = 503 if server.stopping else 200
        return response_bytes(
            conn, status, body, content_type="application/json", head_only=head_only, close=close
        )
    if path == "/metrics":
        return response_bytes(
            conn,
            200,
            prometheus_text(server.statistics()),
            content_type=PROMETHEUS_CONTENT_TYPE,
            head_only=head_only,
            close=close,
        )
    if path in server.statics:
        static = server.statics[path]
        return response_bytes(
            conn,
            200,
            static.body,
            content_type=static.content_type,
            head_only=head_only,
            close=close,
        )
    return response_bytes(
        conn,
        426,
        b"this is a WebSocket endpoint: send an Upgrade request\n",
        headers=(
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
        ),
        head_only=head_only,
        close=close,
    )


def _refusal(server: Server, head: RequestHead) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    """Why an upgrade request is refused (status, message, headers), or status 0."""
    if head.path not in server.routes:
        return 404, "no WebSocket endpoint at this path", ()
    if head.method != "GET":
        return 405, "a WebSocket handshake is a GET", (("Allow", "GET"),)
    if "upgrade" not in (head.header("connection") or "").lower():
        return 400, "Connection: Upgrade is missing", ()
    if head.header("sec-websocket-version") != "13":
        return 426, "only WebSocket version 13 is spoken", _VERSION_13
    try:
        key = base64.b64decode(head.header("sec-websocket-key") or "", validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 16:
        return 400, "Sec-WebSocket-Key must be 16 bytes in base64", ()
    if not _origin_allowed(server, head):
        return 403, "origin not allowed", ()
    if server.stopping:
        return 503, "server shutting down", (("Retry-After", "5"),)
    if len(server.live) + server.upgrading >= server.config.max_connections:
        return 503, "too many connections", (("Retry-After", "1"),)
    return 0, "", ()


def _origin_allowed(server: Server, head: RequestHead) -> bool:
    origin = head.header("origin")
    allowed = server.config.allowed_origins
    if origin is None or allowed == "*":
        return True  # not a browser, or any origin is fine
    if allowed is None:
        host = (head.header("host") or "").lower()
        return urlsplit(origin.lower()).netloc == host
    return origin.rstrip("/").lower() in allowed


async def _upgrade(server: Server, stream: trio.abc.Stream, head: RequestHead) -> None:
    status, message, headers = _refusal(server, head)
    if status:
        await _send_quietly(server, stream, raw_response(status, message, headers))
        return
    await _hand_to_engine(server, stream, head)


async def _hand_to_engine(server: Server, stream: trio.abc.Stream, head: RequestHead) -> None:
    route = server.routes[head.path]
    config = server.config
    server.upgrading += 1  # counts against max_connections until supervised
    upgrading = True
    try:
        async with trio.open_nursery() as engine:
            request = None
            with trio.move_on_after(config.handshake_timeout):
                request = await trio_websocket.wrap_server_stream(
                    GuardedNursery(engine, stream),  # type: ignore[arg-type]
                    ReplayStream(stream, head.raw),
                    message_queue_size=1,
                    max_message_size=config.max_message_size,
                    receive_buffer_size=config.receive_buffer_size,
                )
            if request is None:
                engine.cancel_scope.cancel()
                return
            subprotocol = route.choose_subprotocol(request.proposed_subprotocols)
            ws = await request.accept(subprotocol=subprotocol)
            info = ConnectionInfo(
                path=head.path,
                query=head.target.partition("?")[2],
                headers=Headers(head.headers),
                remote=peer_address(stream),
                subprotocol=subprotocol,
            )
            supervisor = Supervisor(
                EngineTransport(ws, stream, info),
                route.handler,
                config,
                accepts=route.accepted_type,
            )
            server.upgrading -= 1
            upgrading = False
            await server.supervise(supervisor)
            engine.cancel_scope.cancel()
    finally:
        if upgrading:
            server.upgrading -= 1


def peer_address(stream: trio.abc.Stream) -> tuple[str, int] | None:
    """The ``(host, port)`` of the peer under any TLS layers, if on a socket."""
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        try:
            host, port, *_ = stream.socket.getpeername()
        except OSError:
            return None
        return str(host), int(port)
    return None


async def _send_quietly(server: Server, stream: trio.abc.Stream, data: bytes) -> None:
    """Best-effort write of a final response; the peer may already be gone."""
    with trio.move_on_after(server.config.close_timeout):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(data)
