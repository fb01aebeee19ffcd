"""``wstrio.reconnecting``: a new session after each drop, with backoff and full jitter.

Theory of operation
-------------------
Whether to try again is decided from how the last session ended, by the
close code (``retries_after``) or, when no session opened, by the failure
(``retries_after_failure``). No WebSocket RFC defines this; it is wstrio's
convention, shown in ``RECONNECT_CODES`` and in docs. Delays follow
"exponential backoff with full jitter": before the n-th consecutive retry the
client sleeps ``uniform(0, min(cap, base * 2**n))`` seconds, unless the server
named a delay (a 1013 close whose reason holds ``retry-after=SECONDS``, or a
refused handshake's ``Retry-After`` header). ``n`` starts again at 0 after a
session that stayed open for at least ``cap`` seconds, so a server that
accepts and drops at once still sees growing delays.

Each connection runs as a Trio system task (see ``_client``), so abandoning
the loop (``break``, an exception) leaves no nursery open in the caller; the
session is then closed with 1000 when the generator is finalized.
"""

from __future__ import annotations

import logging
import math
import random
import re
import ssl
from collections.abc import AsyncIterator, Iterable

import trio

from .._conn.config import Config
from .._conn.errors import ConnectError, HandshakeRejected
from .._conn.session import Session
from .connect import ClientConnection
from .dial import HeadersLike, Opener, make_options, parse_url

logger = logging.getLogger("wstrio.client")

#: Close codes after which ``reconnecting`` tries again (4500-4999 too); any
#: other code ends the loop: 1000 normal, 1002/1007 protocol, 1003 unsupported
#: data, 1008 policy, 1009 too big, 1010 extension, 3000-3999, 4000-4499.
#: (On the trio-websocket engine 1014 arrives as 1002: wsproto does not know it.)
RECONNECT_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
#: HTTP statuses of a refused handshake that are worth another try.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: The longest delay a server's hint may ask for, in seconds.
MAX_HINT = 3600.0

_HINT = re.compile(r"retry-after=(\d+(?:\.\d+)?)", re.IGNORECASE)


def retries_after(code: int) -> bool:
    """True if a session that closed with ``code`` should be replaced."""
    return code in RECONNECT_CODES or 4500 <= code <= 4999


def retries_after_failure(exc: BaseException) -> bool:
    """True if a failed connection attempt should be tried again."""
    if isinstance(exc, HandshakeRejected):
        return exc.status_code in RETRY_STATUSES
    return isinstance(exc, ConnectError)


def _seconds(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return min(value, MAX_HINT) if math.isfinite(value) and value >= 0 else None


def hinted_delay(code: int, reason: str) -> float | None:
    """The delay a 1013 close asks for with ``retry-after=SECONDS`` in its reason."""
    match = _HINT.search(reason) if code == 1013 else None
    return _seconds(match.group(1)) if match else None


class Backoff:
    """Exponential backoff with full jitter; ``next()`` is the next delay."""

    def __init__(self, base: float, cap: float, rng: random.Random) -> None:
        if not (base > 0 and cap >= base):
            raise ValueError(f"backoff needs 0 < base <= cap, got base={base}, cap={cap}")
        self.base = base
        self.cap = cap
        self.rng = rng
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 64))
        self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


def _failure_delay(exc: ConnectError | HandshakeRejected, backoff: Backoff) -> float:
    """Seconds before the next attempt: a refusal's ``Retry-After``, else the backoff's."""
    hint = exc.header("retry-after") if isinstance(exc, HandshakeRejected) else None
    delay = _seconds(hint)
    return backoff.next() if delay is None else delay


async def reconnecting(
    url: str,
    *,
    config: Config = Config(),  # noqa: B008 - frozen, so sharing it is safe
    subprotocols: Iterable[str] = (),
    headers: HeadersLike | None = None,
    ssl_context: ssl.SSLContext | None = None,
    opener: Opener | None = None,
    proxy: str | bool | None = True,
    backoff_base: float = 0.5,
    backoff_cap: float = 30.0,
    max_attempts: int | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[Session]:
    """``async for session in reconnecting(url): ...``: a new session after each drop.

    ``async for message in session`` ends quietly however such a session
    closes; the loop then decides from the close code whether to reconnect
    (``RECONNECT_CODES``). A failed attempt (``ConnectError``, a refused
    handshake with 408/429/5xx) is retried too, up to ``max_attempts``
    consecutive failures (None: forever), after which it is raised. ``proxy`` as
    for :func:`connect`.
    """
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1 or None, got {max_attempts}")
    target = parse_url(url)
    options = make_options(
        config, subprotocols, headers, ssl_context, opener, quiet=True, proxy=proxy
    )
    backoff = Backoff(backoff_base, backoff_cap, rng if rng is not None else random.Random())
    failures = 0
    while True:
        client = ClientConnection(target, options)
        trio.lowlevel.spawn_system_task(client.run, name=f"wstrio client {url}")
        try:
            session = await client.opened()
        except (ConnectError, HandshakeRejected) as exc:
            failures += 1
            if not retries_after_failure(exc) or failures == max_attempts:
                raise
            delay = _failure_delay(exc, backoff)
            logger.info("connecting to %s failed (%s); retrying in %.2f s", url, exc, delay)
            await trio.sleep(delay)
            continue
        failures = 0
        opened_at = trio.current_time()
        try:
            yield session
        finally:
            client.end_body(None)  # the caller moved on: close if still open (1000)
            await client.finished.wait()
        if client.error is not None:
            raise client.error
        closed = session.closed
        assert closed is not None
        if not retries_after(closed.code):
            return
        if trio.current_time() - opened_at >= backoff_cap:
            backoff.reset()
        hinted = hinted_delay(closed.code, closed.reason)
        delay = backoff.next() if hinted is None else hinted
        logger.info("session to %s closed with %d; reconnecting in %.2f s", url, closed.code, delay)
        await trio.sleep(delay)
