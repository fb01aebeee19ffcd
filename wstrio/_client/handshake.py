"""The client's opening handshake on the native engine: h11 writes the request and reads the
response, once; RFC 6455 4.1-4.2.2 decides whether the 101 may be trusted.
"""

from __future__ import annotations

import h11
import trio

from .._conn.errors import ConnectError, HandshakeRejected
from .._conn.headers import Headers
from .._conn.transport import ConnectionInfo
from .._wire.deflate import (
    Agreement,
    ExtensionError,
    Settings,
    accept_response,
    client_offer,
    parse_extensions,
    settings_of,
)
from .._wire.handshake import accept_value, has_token, list_items, new_key
from .._wire.native import NativeTransport
from .._wire.streams import peer_address
from .dial import Options, Target

#: The most of a refusal's body kept for HandshakeRejected.
_MAX_BODY = 65536


async def handshake(stream: trio.abc.Stream, target: Target, options: Options) -> NativeTransport:
    """Upgrade ``stream`` to a WebSocket; raises HandshakeRejected for a refusal and
    ConnectError for a response that is not a valid answer (naming what is wrong)."""
    key = new_key()
    conn = h11.Connection(h11.CLIENT)
    headers = [
        ("Host", target.host_header),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if options.subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(options.subprotocols)))
    settings = settings_of(options.config)
    offered = options.config.compression == "deflate"
    if offered:
        headers.append(("Sec-WebSocket-Extensions", client_offer(settings)))
    headers += options.headers
    request = conn.send(h11.Request(method="GET", target=target.resource, headers=headers))
    await stream.send_all((request or b"") + (conn.send(h11.EndOfMessage()) or b""))
    response = await _read_response(conn, stream, target)
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
    if response.status_code != 101:
        body = await _read_body(conn, stream)
        raise HandshakeRejected(response.status_code, pairs, body)
    subprotocol = _check_upgrade(Headers(tuple(pairs)), key, options, target)
    agreement = _agreement(Headers(tuple(pairs)), offered, settings, target)
    path, _, query = target.resource.partition("?")
    info = ConnectionInfo(path, query, Headers(tuple(pairs)), peer_address(stream), subprotocol)
    received = conn.trailing_data[0]  # frames the server sent right after its 101
    return NativeTransport(
        stream, info, options.config, client=True, received=received, deflate=agreement
    )


def _agreement(
    headers: Headers, offered: bool, settings: Settings, target: Target
) -> Agreement | None:
    """The permessage-deflate the 101 agreed to; ConnectError for one we must refuse."""
    values = headers.get_all("sec-websocket-extensions")
    if not values:
        return None
    try:
        if not offered:
            raise ExtensionError("it chose an extension we did not offer")
        return accept_response(parse_extensions(values), settings)
    except ExtensionError as exc:
        raise ConnectError(f"{target.url} is not a valid WebSocket server: {exc}") from None


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream, target: Target) -> object:
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise ConnectError(_not_http(conn, target, exc)) from None
        if event is not h11.NEED_DATA:
            return event
        try:
            data = await stream.receive_some(_MAX_BODY)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""  # a reset: an end of stream, as h11 sees it
        conn.receive_data(bytes(data))


def _not_http(conn: h11.Connection, target: Target, exc: h11.RemoteProtocolError) -> str:
    """What to say when the answer is not HTTP: TLS bytes, or nothing at all, are common."""
    data, closed = conn.trailing_data
    if data[:1] in (b"\x15", b"\x16") and not target.secure:
        return f"{target.url} answered with TLS, not HTTP: try wss://"
    if closed and not data:
        return _closed(target)
    return f"{target.url} did not answer with valid HTTP: {exc}"


def _closed(target: Target) -> str:
    hint = " (is the server speaking TLS? try wss://)" if not target.secure else ""
    return f"{target.url} closed the connection during the handshake{hint}"


async def _read_response(
    conn: h11.Connection, stream: trio.abc.Stream, target: Target
) -> h11.Response | h11.InformationalResponse:
    """The server's 101, or its final response (1xx other than 101 are skipped)."""
    while True:
        event = await _next_event(conn, stream, target)
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            return event
        if isinstance(event, h11.Response):
            return event
        if isinstance(event, h11.ConnectionClosed):
            raise ConnectError(_closed(target))


async def _read_body(conn: h11.Connection, stream: trio.abc.Stream) -> bytes:
    """A refusal's body, however h11 frames it (length, chunks, or until EOF), cut at 64 KiB."""
    body = bytearray()
    while len(body) < _MAX_BODY:
        try:
            event = await _next_event(conn, stream, _NO_TARGET)
        except ConnectError:
            break  # a body that breaks off: keep what came
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    return bytes(body[:_MAX_BODY])


def _check_upgrade(headers: Headers, key: str, options: Options, target: Target) -> str | None:
    """The subprotocol the 101 chose; ConnectError if the 101 breaks RFC 6455 4.1."""
    problem = None
    if not has_token(headers.get_all("upgrade"), "websocket"):
        problem = "its 101 has no Upgrade: websocket"
    elif not has_token(headers.get_all("connection"), "upgrade"):
        problem = "its 101 has no Connection: Upgrade"
    elif headers.get_all("sec-websocket-accept") != [accept_value(key)]:
        problem = "its Sec-WebSocket-Accept does not match our key"
    if problem is not None:
        raise ConnectError(f"{target.url} is not a valid WebSocket server: {problem}")
    chosen = list_items(headers.get_all("sec-websocket-protocol"))
    if not chosen:
        return None
    if len(chosen) > 1 or chosen[0] not in options.subprotocols:
        offered = ", ".join(options.subprotocols) or "none"
        raise ConnectError(
            f"{target.url} chose subprotocol {', '.join(chosen)!r}, which we did not offer "
            f"(offered: {offered})"
        )
    return chosen[0]


_NO_TARGET = Target("", False, "", 0, "")
