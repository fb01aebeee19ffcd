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
from .parse import RequestHead
from .routes import RouteTable

_VERSION_13 = (("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"))


@attrs.frozen
class Refusal:
    """An HTTP answer instead of 101: ``status``, a one-line ``message``, extra ``headers``."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def refusal(head: RequestHead, table: RouteTable, config: Config) -> Refusal | None:
    """Why ``head`` cannot be upgraded (route, method, handshake headers, origin), or None."""
    if head.path not in table.sockets:
        return Refusal(404, "no WebSocket endpoint at this path")
    if head.method != "GET":
        return Refusal(405, "a WebSocket handshake is a GET", (("Allow", "GET"),))
    if "upgrade" not in (head.header("connection") or "").lower():
        return Refusal(400, "Connection: Upgrade is missing")
    if head.header("sec-websocket-version") != "13":
        return Refusal(426, "only WebSocket version 13 is spoken", _VERSION_13)
    try:
        key = base64.b64decode(head.header("sec-websocket-key") or "", validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 16:
        return Refusal(400, "Sec-WebSocket-Key must be 16 bytes in base64")
    if not origin_allowed(head, config):
        return Refusal(403, "origin not allowed")
    return None


def origin_allowed(head: RequestHead, config: Config) -> bool:
    """The ``Origin`` check (RFC 6455 10.2) against ``Config.allowed_origins``."""
    origin = head.header("origin")
    allowed = config.allowed_origins
    if origin is None or allowed == "*":
        return True  # not a browser, or any origin is fine
    if allowed is None:
        host = (head.header("host") or "").lower()
        return urlsplit(origin.lower()).netloc == host
    return origin.rstrip("/").lower() in allowed
