"""The plain-HTTP front: read one request head with h11, answer it, or hand it on.

Theory of operation: every accepted connection is HTTP/1.1 first. ``read_head``
parses one request with h11, keeping every byte it read. A WebSocket upgrade is
then handed to the engine with those bytes (the trio-websocket engine replays
them into its own parser); anything else is answered by ``endpoints`` (health,
metrics, static content, or an error status), and keep-alive lets the client
send the next request on the same connection.
"""

from __future__ import annotations

import email.utils
from http import HTTPStatus
from urllib.parse import urlsplit

import attrs
import h11
import trio

from .._conn.headers import first_value
from .._wire.handshake import has_token


def reason(status: int) -> bytes:
    """The standard reason phrase of ``status`` (``http.HTTPStatus``), or empty."""
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


class BadRequest(Exception):
    """The request cannot be served; answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


@attrs.frozen
class RequestHead:
    """One request as h11 read it: header names lower-cased, values as latin-1 text."""

    method: str
    target: str  # origin-form (/path?query) or absolute-form (http://host/path?query)
    headers: tuple[tuple[str, str], ...]
    version: str = "1.1"  # the HTTP version, as h11 read it
    body: bytes = b""  # the request body (bounded by Config.max_body_size)

    @property
    def path(self) -> str:
        """The target's path (RFC 7230 5.3: origin-form and absolute-form alike)."""
        return _split_target(self.target)[0]

    @property
    def query(self) -> str:
        """The target's query string, without the ``?``."""
        return _split_target(self.target)[1]

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return first_value(self.headers, name)

    def header_lines(self, name: str) -> list[str]:
        """Every value of header ``name`` (lower-case), one per header line, in order."""
        return [value for key, value in self.headers if key == name]

    @property
    def wants_websocket(self) -> bool:
        """True if the request asks to upgrade to WebSocket (the token, case-insensitive)."""
        return has_token(self.header_lines("upgrade"), "websocket")

    def to_bytes(self) -> bytes:
        """The request head as HTTP/1.1 bytes, for an engine that parses it again; repeated
        header lines are joined into one, as RFC 7230 3.2.2 allows."""
        combined: dict[str, list[str]] = {}
        for key, value in self.headers:
            combined.setdefault(key, []).append(value)
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        lines += [f"{key}: {', '.join(values)}" for key, values in combined.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _split_target(target: str) -> tuple[str, str]:
    if not target.startswith("/") and "://" in target:  # absolute-form
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path, query


async def read_head(
    conn: h11.Connection, stream: trio.abc.Stream, max_bytes: int, max_body: int
) -> RequestHead | None:
    """Read one request: its head (up to ``max_bytes``, else 431) and its body (up to
    ``max_body``, else 413, refused from ``Content-Length`` before it is read); None on a
    clean EOF.

    Bytes read past the request stay in ``conn``: the next request (keep-alive,
    pipelining) or, after an upgrade, the WebSocket stream (``conn.trailing_data``).
    """
    request: h11.Request | None = None
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise BadRequest(exc.error_status_hint, str(exc)) from None
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data and conn.their_state is h11.IDLE and not conn.trailing_data[0]:
                return None  # a clean EOF between requests
            conn.receive_data(bytes(data))
            continue
        if isinstance(event, h11.Request):
            request = event
            size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
            if size > max_bytes:  # h11 only limits heads that arrive in pieces
                raise BadRequest(431, "request head too large")
            names = {name.lower() for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                # h11 lets Transfer-Encoding win; a request smuggler counts on a proxy that
                # does not: refuse it, and close (RFC 9112 6.1, 6.3)
                raise BadRequest(400, "Content-Length and Transfer-Encoding together")
            declared = first_value(
                ((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in event.headers),
                "content-length",
            )
            if declared is not None and declared.isdigit() and int(declared) > max_body:
                raise BadRequest(413, f"request body over {max_body} bytes")
            if conn.they_are_waiting_for_100_continue:  # Expect: 100-continue (curl -d @file)
                go_on = h11.InformationalResponse(status_code=100, headers=[])
                await stream.send_all(conn.send(go_on) or b"")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_body:
                raise BadRequest(413, f"request body over {max_body} bytes")
        elif isinstance(event, h11.EndOfMessage | type(h11.PAUSED)):
            break
        elif isinstance(event, h11.ConnectionClosed):
            if request is None:
                return None
            raise BadRequest(400, "connection closed mid-request")
    assert request is not None
    headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers)
    return RequestHead(
        request.method.decode("ascii", "replace"),
        request.target.decode("latin-1"),
        headers,
        request.http_version.decode("ascii", "replace"),
        bytes(body),
    )


def response_bytes(
    conn: h11.Connection,
    status: int,
    body: bytes = b"",
    *,
    content_type: str = "text/plain; charset=utf-8",
    headers: tuple[tuple[str, str], ...] = (),
    head_only: bool = False,
    close: bool = False,
) -> bytes:
    """Serialise a whole response through h11 (so keep-alive stays consistent). A 204 or
    304 carries no body and no ``Content-Length`` (RFC 9110 8.6, 15.3.5, 15.4.5)."""
    bodiless = status in (204, 304)
    all_headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Server", "wstrio"),
        *headers,
    ]
    if bodiless:
        body = b""
        del all_headers[1]
    if close:
        all_headers.append(("Connection", "close"))
    out = conn.send(h11.Response(status_code=status, headers=all_headers, reason=reason(status)))
    assert out is not None
    if body and not head_only:
        out += conn.send(h11.Data(data=body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    return out


def raw_response(
    status: int,
    message: str,
    headers: tuple[tuple[str, str], ...] = (),
    *,
    head_only: bool = False,
) -> bytes:
    """A complete response for when h11's state is unusable (bad or oversized input);
    ``head_only`` for a HEAD request: the same head, no content (RFC 9110 9.3.2)."""
    body = (message.rstrip("\n") + "\n").encode("utf-8", "replace")
    lines = [
        f"HTTP/1.1 {status} {reason(status).decode()}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "Server: wstrio",
        *(f"{k}: {v}" for k, v in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body)
