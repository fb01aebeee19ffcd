"""One accepted connection: HTTP requests until one upgrades to a WebSocket.

Every request must arrive within ``handshake_timeout`` (slow or idle clients are
dropped). Plain requests are answered by ``endpoints``, with keep-alive; an
upgrade request is checked (``upgrade.refusal``, then the admission's capacity
and shutdown) and, if it passes, answered with 101 (by the native engine, from
h11's parse: the request is read once) or handed to trio-websocket; the
session is then supervised. The front sees the routes and the :class:`Admission`, never the
server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import h11
import trio

from .._conn.config import Config
from .._conn.headers import Headers
from .._conn.supervisor import Supervisor
from .._conn.transport import ConnectionInfo, Transport
from .._wire.deflate import accept_offer, parse_extensions, settings_of
from .._wire.handshake import accept_value
from .._wire.native import NativeTransport
from .._wire.streams import peer_address
from .._wire.tws import server_transport
from .admission import Admission
from .endpoints import answer
from .parse import BadRequest, RequestHead, raw_response, read_head
from .routes import Route, RouteTable
from .upgrade import offered_subprotocols, refusal


async def serve_connection(
    stream: trio.abc.Stream, table: RouteTable, admission: Admission
) -> None:
    """Serve HTTP on ``stream`` until it closes or upgrades."""
    config = admission.config
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_header_bytes)
    while True:
        with admission.reading() as read_scope:
            try:
                head = await read_head(conn, stream, config.max_header_bytes)
            except BadRequest as exc:
                await _send_quietly(admission, stream, raw_response(exc.status, exc.message))
                return
        if read_scope.cancelled_caught:
            if admission.stopping and conn.trailing_data[0]:  # a request was on its way
                await _send_quietly(admission, stream, raw_response(503, "server shutting down"))
            return
        if head is None:
            return
        if head.wants_websocket:
            await _upgrade(conn, stream, head, table, admission)
            return
        admission.http_requests += 1
        response = answer(conn, head, table, admission.statistics, stopping=admission.stopping)
        with trio.move_on_after(config.write_timeout) as write_scope:
            await stream.send_all(response)
        if write_scope.cancelled_caught:  # the client does not read its answer
            return
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return
        conn.start_next_cycle()


async def _upgrade(
    conn: h11.Connection,
    stream: trio.abc.Stream,
    head: RequestHead,
    table: RouteTable,
    admission: Admission,
) -> None:
    config = admission.config
    refused = refusal(head, table, config) or admission.refusal()
    if refused is not None:
        response = raw_response(refused.status, refused.message, refused.headers)
        await _send_quietly(admission, stream, response)
        return
    route = table.sockets[head.path]
    info = ConnectionInfo(
        path=head.path,
        query=head.query,
        headers=Headers(head.headers),
        remote=peer_address(stream),
        subprotocol=route.choose_subprotocol(offered_subprotocols(head)),
    )
    with admission.upgrading() as upgraded:
        async with _open_transport(conn, stream, head, info, route, config) as transport:
            if transport is None:
                return
            supervisor = Supervisor(transport, route.handler, config, accepts=route.accepted_type)
            upgraded()
            await admission.supervise(supervisor)


@contextlib.asynccontextmanager
async def _open_transport(
    conn: h11.Connection,
    stream: trio.abc.Stream,
    head: RequestHead,
    info: ConnectionInfo,
    route: Route,
    config: Config,
) -> AsyncIterator[Transport | None]:
    """Answer 101 and open the configured engine's transport (None if the 101 cannot be sent
    within ``handshake_timeout``)."""
    received = conn.trailing_data[0]  # sent before our 101: the first frames
    if config.engine == "trio-websocket":  # it parses the request again, from bytes
        request = head.to_bytes() + received
        async with server_transport(stream, request, info, config, route.choose_subprotocol) as tws:
            yield tws
        return
    key = (head.header("sec-websocket-key") or "").strip()
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_value(key)),
    ]
    if info.subprotocol is not None:
        headers.append(("Sec-WebSocket-Protocol", info.subprotocol))
    agreement = None
    if route.compresses(config):
        offers = parse_extensions(head.header_lines("sec-websocket-extensions"))
        agreement = accept_offer(offers, settings_of(config))
        if agreement is not None:
            headers.append(("Sec-WebSocket-Extensions", agreement.header()))
    response = conn.send(
        h11.InformationalResponse(status_code=101, headers=headers, reason=b"Switching Protocols")
    )
    with trio.move_on_after(config.handshake_timeout) as scope:
        await stream.send_all(response or b"")
    if scope.cancelled_caught:
        yield None
    else:
        yield NativeTransport(stream, info, config, received=received, deflate=agreement)


async def _send_quietly(admission: Admission, stream: trio.abc.Stream, data: bytes) -> None:
    """Best-effort write of a final response; the peer may already be gone."""
    with trio.move_on_after(admission.config.close_timeout):
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(data)
