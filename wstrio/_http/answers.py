"""What application code answers with: :class:`Accept`, :class:`Reject`, :class:`Response`.

A route's handshake hook returns None, an ``Accept`` or a ``Reject``; an
``HttpRoute`` handler returns a ``Response``. They are plain values, checked
when built (status range, header names as tokens, no CR or LF in values), so a
mistake fails in the application's code, not in the middle of a response.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._wire.handshake import is_token

#: Response headers only wstrio may set on a 101: the handshake itself (RFC 6455 4.2.2).
HANDSHAKE_HEADERS = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
    }
)


def header_pairs(
    headers: Iterable[tuple[str, str]] | Mapping[str, str],
) -> tuple[tuple[str, str], ...]:
    """Headers as ``(name, value)`` text pairs; ValueError for a name that is not a token
    (RFC 7230 3.2.6) or a value with CR, LF or NUL."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise ValueError(f"a header is a (name, value) pair, not {item!r}") from None
        if not isinstance(name, str) or not is_token(name):
            raise ValueError(f"header name must be a token: {name!r}")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"header {name} must be text without CR, LF or NUL: {value!r}")
        pairs.append((name, value))
    return tuple(pairs)


def _body(body: str | bytes) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"a body is bytes or str, not {type(body).__name__}")


def _status(low: int, high: int) -> Any:
    def check(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{attribute.name} must be an int from {low} to {high}: {value!r}")

    return check


def _state(state: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if state is None else dict(state)


@attrs.frozen
class Accept:
    """Accept the WebSocket handshake: with ``subprotocol`` (one the client offered; None:
    the route's choice), extra ``headers`` on the 101, and the session's first ``state``."""

    subprotocol: str | None = None
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=header_pairs)
    state: dict[str, Any] | None = attrs.field(default=None, converter=_state, eq=False)

    def __attrs_post_init__(self) -> None:
        taken = [name for name, _ in self.headers if name.lower() in HANDSHAKE_HEADERS]
        if taken:
            raise ValueError(f"Accept cannot set the handshake's own headers: {taken}")
        if self.subprotocol is not None and not is_token(self.subprotocol):
            raise ValueError(f"a subprotocol is a token: {self.subprotocol!r}")


@attrs.frozen
class Reject:
    """Refuse the WebSocket handshake with an HTTP response: ``status`` (300-599),
    ``headers`` (e.g. ``WWW-Authenticate``, ``Retry-After``) and ``body``; the connection
    closes after it."""

    status: int = attrs.field(validator=_status(300, 599))
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=header_pairs)
    body: bytes = attrs.field(default=b"", converter=_body)

    def __attrs_post_init__(self) -> None:
        if self.status == 304:
            raise ValueError("Reject(304): Not Modified answers a conditional GET, not a handshake")


@attrs.frozen
class Response:
    """A plain HTTP response from an :class:`HttpRoute` handler: ``status`` (200-599),
    ``headers`` and ``body`` (``str`` is sent as UTF-8; without a ``Content-Type``
    header, ``text/plain; charset=utf-8`` is sent)."""

    status: int = attrs.field(default=200, validator=_status(200, 599))
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=header_pairs)
    body: bytes = attrs.field(default=b"", converter=_body)

    def __attrs_post_init__(self) -> None:
        if self.status in (204, 304) and self.body:
            raise ValueError(f"a {self.status} response has no body (RFC 9110 15.3.5, 15.4.5)")
