"""One accepted connection: HTTP requests until one upgrades to a WebSocket.

Every request must arrive within ``handshake_timeout`` (slow or idle clients are
dropped). Each is matched against the route table and becomes a
:class:`Request` value (the client's address and scheme through trusted
proxies). Plain requests are answered by ``plain``, with keep-alive; an
upgrade request is checked (``upgrade.refusal``, then the admission's capacity
and shutdown), then the route's handshake hook decides (``hooks``): a
``Reject`` is sent as it is, an ``Accept`` is answered with 101 (by the native
engine, from h11's parse: the request is read once) or handed to
trio-websocket; the session is then supervised. The front sees the routes and
the :class:`Admission`, never the server.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import attrs
import h11
import trio

from .._conn.config import Config
from .._conn.headers import Headers
from .._conn.logfields import get_logger, log_fields
from .._conn.request import QueryParams, Request
from .._conn.supervisor import Supervisor
from .._conn.transport import ConnectionInfo, Transport
from .._wire.deflate import accept_offer, parse_extensions, settings_of
from .._wire.handshake import accept_value
from .._wire.native import NativeTransport
from .._wire.streams import peer_address
from .._wire.tws import server_transport
from .admission import Admission
from .answers import Accept
from .hooks import run_hook
from .parse import BadRequest, RequestHead, raw_response, read_head
from .plain import answer_bytes, respond
from .proxies import client_of
from .routes import Match, Route, RouteTable
from .upgrade import offered_subprotocols, refusal

logger = get_logger("wstrio.server")


async def serve_connection(
    stream: trio.abc.Stream, table: RouteTable, admission: Admission
) -> None:
    """Serve HTTP on ``stream`` until it closes or upgrades."""
    config = admission.config
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=config.max_header_bytes)
    while True:
        with admission.reading() as read_scope:
            try:
                head = await read_head(conn, stream, config.max_header_bytes, config.max_body_size)
            except BadRequest as exc:
                await _send_quietly(admission, stream, raw_response(exc.status, exc.message))
                return
        if read_scope.cancelled_caught:
            if admission.stopping and conn.trailing_data[0]:  # a request was on its way
                await _send_quietly(admission, stream, raw_response(503, "server shutting down"))
            return
        if head is None:
            return
        with log_fields(path=head.path):
            match = table.match(head.path)
            request, known_scheme = _request_of(head, match, stream, config)
            if head.wants_websocket:
                hint = table.other_slash(head.path) if match is None else None
                await _upgrade(conn, stream, head, match, request, known_scheme, admission, hint)
                return
            admission.http_requests += 1
            response = await respond(conn, head, table, admission, request, match)
        with trio.move_on_after(config.write_timeout) as write_scope:
            await stream.send_all(response)
        if write_scope.cancelled_caught:  # the client does not read its answer
            return
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return
        conn.start_next_cycle()


def _request_of(
    head: RequestHead, match: Match | None, stream: trio.abc.Stream, config: Config
) -> tuple[Request, str | None]:
    """The request as a value, and its scheme if known (TLS, or a trusted proxy said)."""
    headers = Headers(head.headers)
    scheme = "https" if isinstance(stream, trio.SSLStream) else "http"
    peer = peer_address(stream)
    remote, said = client_of(
        peer, scheme, headers, config.trusted_proxies, config.forwarded_header
    )
    known = said if isinstance(stream, trio.SSLStream) or said != scheme else None
    request = Request(
        method=head.method,
        path=head.path,
        query=QueryParams.parse(head.query),
        headers=headers,
        params=match.params if match is not None else {},
        remote=remote,
        scheme=said,
        subprotocols=offered_subprotocols(head),
    )
    return request, known


async def _upgrade(
    conn: h11.Connection,
    stream: trio.abc.Stream,
    head: RequestHead,
    match: Match | None,
    request: Request,
    scheme: str | None,
    admission: Admission,
    hint: str | None = None,
) -> None:
    config = admission.config
    target = match.target if match is not None else None
    refused = refusal(head, target, config, scheme) or admission.refusal(request.remote)
    if refused is not None and hint is not None:
        refused = attrs.evolve(refused, message=f"{refused.message} (did you mean {hint}?)")
    if refused is not None:
        response = raw_response(
            refused.status, refused.message, refused.headers, head_only=head.method == "HEAD"
        )
        await _send_quietly(admission, stream, response)
        return
    assert match is not None and isinstance(target, Route)
    started = trio.current_time()
    with admission.upgrading(request.remote) as upgraded:
        decision = await run_hook(target, match.pattern, request, config.handshake_timeout)
        if not isinstance(decision, Accept):
            logger.info(
                "%s %s refused by on_handshake: %d", request.remote, head.path, decision.status
            )
            await _send_quietly(admission, stream, answer_bytes(conn, decision, close=True))
            return
        chosen = decision.subprotocol or target.choose_subprotocol(request.subprotocols)
        info = ConnectionInfo(
            path=head.path,
            query=head.query,
            headers=request.headers,
            remote=request.remote,
            subprotocol=chosen,
            request=request,
        )
        async with _open_transport(
            conn, stream, head, info, target, config, decision.headers
        ) as transport:
            if transport is None:
                return
            admission.handshake_seconds.observe(trio.current_time() - started)
            supervisor = Supervisor(
                transport,
                target.handler,
                config,
                accepts=target.accepted_type,
                state=decision.state,
                sizes=admission.message_sizes,
            )
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
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> AsyncIterator[Transport | None]:
    """Answer 101 and open the configured engine's transport (None if the 101 cannot be sent
    within ``handshake_timeout``)."""
    received = conn.trailing_data[0]  # sent before our 101: the first frames
    if config.engine == "trio-websocket":  # it parses the request again, from bytes
        request = head.to_bytes()
        async with server_transport(stream, request, received, info, config, extra_headers) as tws:
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
    headers.extend(extra_headers)
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
