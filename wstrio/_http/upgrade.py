"""Whether an upgrade request may become a WebSocket: the checks as a pure function.

The checks run in the order ``docs/reference/http.md`` gives, and the first
problem decides the status. Capacity and shutdown are the admission's to say
(:meth:`Admission.refusal`); everything else is here and needs no server.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

import attrs

from .._conn.config import Config
from .._wire.deflate import ExtensionError, parse_extensions
from .._wire.handshake import has_token, is_token, list_items
from .parse import RequestHead
from .routes import Route, Target

_VERSION_13 = (("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"))


@attrs.frozen
class Refusal:
    """An HTTP answer instead of 101: ``status``, a one-line ``message``, extra ``headers``."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


#: Request headers that must appear at most once (RFC 6455 4.1, 11.3.1, 11.3.5; RFC 7230 5.4).
_ONCE = ("host", "sec-websocket-key", "sec-websocket-version", "origin")
#: Request headers whose values must be ASCII (a host name, tokens, an origin).
_ASCII = ("host", "sec-websocket-protocol", "sec-websocket-extensions", "origin")
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_WS_OF = {"http": "ws", "https": "wss"}


def refusal(
    head: RequestHead, target: Target | None, config: Config, scheme: str | None = None
) -> Refusal | None:
    """Why ``head`` cannot be upgraded (route, method, handshake headers, origin), or None.

    ``target`` is what the path matched; ``scheme`` the request's (``https`` under TLS or
    from a trusted proxy), None when only the origin's own can be assumed. Header lists
    are read over all their lines (RFC 7230 3.2.2) and tokens are matched whole and
    case-insensitively (RFC 6455 4.2.1).
    """
    if not isinstance(target, Route):
        return Refusal(404, "no WebSocket endpoint at this path")
    if head.method != "GET":
        return Refusal(405, "a WebSocket handshake is a GET", (("Allow", "GET"),))
    if head.version != "1.1":
        return Refusal(400, "a WebSocket handshake needs HTTP/1.1 (RFC 6455 4.1)")
    if not has_token(head.header_lines("connection"), "upgrade"):
        return Refusal(400, "Connection: Upgrade is missing")
    for name in _ONCE:
        if len(head.header_lines(name)) > 1:
            return Refusal(400, f"{name} must appear once")
    for name in _ASCII:
        if any(not value.isascii() for value in head.header_lines(name)):
            return Refusal(400, f"{name} must be ASCII")
    if (head.header("sec-websocket-version") or "").strip() != "13":
        return Refusal(426, "only WebSocket version 13 is spoken", _VERSION_13)
    try:
        key = base64.b64decode((head.header("sec-websocket-key") or "").strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 16:
        return Refusal(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    if not all(is_token(name) for name in list_items(head.header_lines("sec-websocket-protocol"))):
        return Refusal(400, "Sec-WebSocket-Protocol must be a list of tokens")
    try:
        parse_extensions(head.header_lines("sec-websocket-extensions"))
    except ExtensionError as exc:
        return Refusal(400, f"invalid Sec-WebSocket-Extensions: {exc}")
    if not origin_allowed(head, config, scheme):
        return Refusal(403, "origin not allowed")
    return None


def offered_subprotocols(head: RequestHead) -> tuple[str, ...]:
    """The subprotocols the client offers, in its order of preference."""
    return tuple(list_items(head.header_lines("sec-websocket-protocol")))


def origin_allowed(head: RequestHead, config: Config, scheme: str | None = None) -> bool:
    """The ``Origin`` check (RFC 6455 10.2) against ``Config.allowed_origins``; origins are
    compared as (scheme, host, port) with default ports filled in (RFC 6454 4, 5). For the
    same-origin rule the ``Host`` port defaults by ``scheme`` when it is known (TLS, a
    trusted proxy), else by the origin's scheme."""
    origin = head.header("origin")
    allowed = config.allowed_origins
    if origin is None or allowed == "*":
        return True  # not a browser, or any origin is fine
    seen = origin_tuple(origin)
    if seen is None:
        return False
    if allowed is None:  # same origin as the Host the request was sent to
        host = urlsplit(f"//{head.header('host') or ''}")
        if scheme is not None and seen[0] not in (scheme, _WS_OF[scheme]):
            return False
        port = host.port if host.port is not None else _DEFAULT_PORTS.get(scheme or seen[0])
        return (host.hostname or "", port) == seen[1:]
    return any(origin_tuple(entry) == seen for entry in allowed)


def origin_tuple(origin: str) -> tuple[str, str, int | None] | None:
    """``scheme://host[:port]`` as (scheme, host, port), lower-cased, the scheme's default
    port filled in; None if it is not such an origin (``null``, a path, a bad port)."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname or parts.path not in ("", "/"):
        return None
    return (
        parts.scheme,
        parts.hostname,
        port if port is not None else _DEFAULT_PORTS.get(parts.scheme),
    )
