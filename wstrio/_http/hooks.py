"""Running application code on the HTTP front: handshake hooks and HTTP handlers.

Both may be plain functions or ``async def``; both run with a deadline
(``handshake_timeout`` for a hook: 503 past it; ``write_timeout`` is not
theirs to spend). An exception is the application's bug, not the peer's: the
peer gets a 500 with a generic body, the traceback is logged once on the
``wstrio.server`` logger, and the server goes on serving. A return value of
the wrong type is treated the same way, with a message saying what was
expected.
"""

from __future__ import annotations

import inspect
from typing import Any

import trio

from .._conn.logfields import get_logger
from .._conn.request import Request
from .answers import Accept, Reject, Response
from .routes import HttpRoute, Route

logger = get_logger("wstrio.server")

_FAILED = b"internal server error\n"


def _failed() -> Reject:
    return Reject(500, body=_FAILED)


async def _call(fn: Any, *args: object) -> object:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def run_hook(
    route: Route, pattern: str, request: Request, seconds: float
) -> Accept | Reject:
    """What the route's ``on_handshake`` decided for ``request`` (Accept() without a hook);
    a hook still running after ``seconds`` is cancelled and the peer gets 503."""
    hook = route.on_handshake
    if hook is None:
        return Accept()
    with trio.move_on_after(seconds) as scope:
        try:
            result = await _call(hook, request)
        except Exception:
            logger.exception("on_handshake of route %s raised; the client got 500", pattern)
            return _failed()
    if scope.cancelled_caught:
        logger.warning(
            "on_handshake of route %s took over %s s; the client got 503", pattern, seconds
        )
        return Reject(503, headers=(("Retry-After", "1"),), body=b"handshake hook timed out\n")
    if result is None:
        return Accept()
    if isinstance(result, Reject):
        return result
    if not isinstance(result, Accept):
        logger.error(
            "on_handshake of route %s returned %r, not None, wstrio.Accept or wstrio.Reject;"
            " the client got 500",
            pattern,
            result,
        )
        return _failed()
    if result.subprotocol is not None and result.subprotocol not in request.subprotocols:
        logger.error(
            "on_handshake of route %s chose subprotocol %r, which the client did not offer"
            " (%s); the client got 500",
            pattern,
            result.subprotocol,
            ", ".join(request.subprotocols) or "none",
        )
        return _failed()
    return result


async def run_http(
    route: HttpRoute, pattern: str, request: Request, body: bytes
) -> Response | Reject:
    """The HTTP handler's response (a Reject(500) if it raised or returned something else)."""
    try:
        result = await _call(route.handler, request, body)
    except Exception:
        logger.exception("HttpRoute %s raised; the client got 500", pattern)
        return _failed()
    if isinstance(result, Response):
        return result
    logger.error(
        "HttpRoute %s returned %r, not a wstrio.Response; the client got 500", pattern, result
    )
    return _failed()
