"""Plain HTTP requests on the WebSocket port: built-ins, content, directories, HTTP routes.

The path decides, then the method. ``/healthz`` and ``/metrics`` come first
(``endpoints``); then the route table: a WebSocket route answers 426, a
``Static`` its body, a ``StaticDir`` a file (read in a worker thread), an
``HttpRoute`` what its handler returns. A path that matches nothing but would
with its trailing slash added or removed gets a 308 redirect there (GET and
HEAD) or a 404 naming it; anything else unknown is a 404.
"""

from __future__ import annotations

import functools

import h11
import trio

from .._conn.request import Request
from .admission import Admission
from .answers import Reject, Response
from .endpoints import builtin_answer
from .hooks import run_http
from .parse import RequestHead, response_bytes
from .routes import BUILTIN_PATHS, HttpRoute, Match, Route, RouteTable, Static
from .staticdir import StaticDir, etag_matches

_READ_METHODS = ("GET", "HEAD")
_UPGRADE_HINT = (
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Version", "13"),
)


async def respond(
    conn: h11.Connection,
    head: RequestHead,
    table: RouteTable,
    admission: Admission,
    request: Request,
    match: Match | None,
) -> bytes:
    """The whole response to a plain HTTP request (``Connection: close`` while stopping)."""
    stopping = admission.stopping
    reading = head.method in _READ_METHODS
    reply = functools.partial(response_bytes, conn, head_only=head.method == "HEAD", close=stopping)
    path = head.path
    if path in BUILTIN_PATHS:
        if not reading:
            return reply(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
        return builtin_answer(
            reply,
            path,
            admission.statistics,
            admission.registry,
            admission.health,
            stopping=stopping,
        )
    if match is None:
        other = table.other_slash(path)
        if other is not None and ("\\" in path or path.startswith("//")):
            other = None  # "/\\evil.com" and "//evil.com" would leave the site in a browser
        if other is not None and reading:
            location = other + (f"?{head.query}" if head.query else "")
            return reply(308, f"see {other}\n".encode(), headers=(("Location", location),))
        hint = f" (did you mean {other}?)" if other else ""
        return reply(404, f"not found{hint}\n".encode())
    target = match.target
    if isinstance(target, HttpRoute):
        if head.method not in target.methods:
            allow = ", ".join(target.methods)
            return reply(405, b"method not allowed\n", headers=(("Allow", allow),))
        answer = await run_http(target, match.pattern, request, head.body)
        return answer_bytes(conn, answer, head_only=head.method == "HEAD", close=stopping)
    if not reading:
        return reply(405, b"method not allowed\n", headers=(("Allow", "GET, HEAD"),))
    if isinstance(target, Static):
        return reply(200, target.body, content_type=target.content_type)
    if isinstance(target, StaticDir):
        parts = list(match.params.get("file", "").split("/")) if match.params else [""]
        found = await trio.to_thread.run_sync(target.find, parts)
        if found is None:
            return reply(404, b"not found\n")
        headers = (("ETag", found.etag), ("Cache-Control", "no-cache"))
        if etag_matches(head.header("if-none-match"), found.etag):
            return reply(304, b"", content_type=found.content_type, headers=headers)
        return reply(200, found.body, content_type=found.content_type, headers=headers)
    assert isinstance(target, Route)
    body = b"this is a WebSocket endpoint: send an Upgrade request\n"
    return reply(426, body, headers=_UPGRADE_HINT)


def answer_bytes(
    conn: h11.Connection, answer: Response | Reject, *, head_only: bool = False, close: bool = False
) -> bytes:
    """An application's Response or Reject as bytes (its ``Content-Type`` if it set one;
    the framing headers are wstrio's)."""
    content_type = "text/plain; charset=utf-8"
    headers = []
    for name, value in answer.headers:
        if name.lower() == "content-type":
            content_type = value
        elif name.lower() not in ("content-length", "transfer-encoding", "connection"):
            headers.append((name, value))
    return response_bytes(
        conn,
        answer.status,
        answer.body,
        content_type=content_type,
        headers=tuple(headers),
        head_only=head_only,
        close=close,
    )
