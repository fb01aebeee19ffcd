"""Who is connected and who may connect: the narrow view of a server the HTTP front gets.

Theory of operation: every accepted connection is counted from accept to
close (:meth:`Admission.connection`); while a request head is being read its
deadline scope is registered (:meth:`reading`), so a stopping server can cut
those reads short; an upgrade counts against ``max_connections`` from the
moment it is handed to the engine (:meth:`upgrading`) until its session is
supervised (:meth:`supervise`), which counts and logs the session to its end;
it also counts against ``max_connections_per_ip`` for its client address
(``addresses``) until the session has ended.
The server reads :meth:`statistics` and calls :meth:`stop`; the front never
sees the server itself.

A stop for a rolling restart (``stop(restart=True)``) differs in one way: a
connection that has not finished its first request was accepted a moment
before the stop and its client is still sending, so its request is served
(an upgrade becomes a session told to restart at once) instead of refused;
only connections idle between requests are cut short.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import Counter
from collections.abc import Callable, Iterator

import trio
from prometheus_client import CollectorRegistry

from .._conn.closecodes import Closed, Ending
from .._conn.config import Config
from .._conn.logfields import get_logger
from .._conn.stats import (
    HANDSHAKE_BOUNDS,
    MESSAGE_SIZE_BOUNDS,
    Buckets,
    ServerStatistics,
    SessionCounters,
)
from .._conn.supervisor import Supervisor
from .._wire.streams import address_text
from .addresses import AddressCounts, address_key
from .endpoints import Health
from .metrics import ServerCollector, new_registry
from .upgrade import Refusal

logger = get_logger("wstrio.server")

#: Retry-After past max_connections_per_ip: longer than at capacity, since only the client's
#: own sessions ending can make room.
_PER_IP_RETRY = (("Retry-After", "5"),)

#: Requests read so far on the connection of the running task (one cell per connection).
_requests_read: contextvars.ContextVar[list[int]] = contextvars.ContextVar("requests_read")


class Admission:
    """Connections, upgrades and sessions of one server, and the counts they leave."""

    def __init__(self, config: Config, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.stopping = False
        self.ending = Ending.GOING_AWAY  # how a stop closes sessions (SERVICE_RESTART: 1012)
        #: Which worker answers /healthz and /metrics, and the checks that make it degraded.
        self.health = Health()
        self.http_requests = 0  # plain requests answered
        self.connections = 0  # accepted TCP connections not yet closed
        self.sessions: set[Supervisor] = set()  # sessions being supervised
        self._upgrades: set[object] = set()  # handed to the engine, not yet supervised
        self._reads: dict[trio.CancelScope, bool] = {}  # request heads being read: first?
        self._sessions_total = 0
        self._closes: Counter[int] = Counter()
        self._handler_errors = 0
        self._slow_closes = 0
        self._rate_closes = 0
        self._frame_timeouts = 0
        self._per_ip_refusals = 0
        self._addresses = AddressCounts()  # sessions and upgrades per client address
        self._finished = SessionCounters()  # the counts of sessions that ended
        self._idle = trio.Event()
        self._idle.set()
        self._started = trio.current_time()
        #: Histograms /metrics exports: received message sizes (bytes) and handshakes (s).
        self.message_sizes = Buckets(MESSAGE_SIZE_BOUNDS)
        self.handshake_seconds = Buckets(HANDSHAKE_BOUNDS)
        #: Where /metrics reads from: wstrio's collector and whatever the application adds.
        self.registry = registry if registry is not None else new_registry()
        self.registry.register(
            ServerCollector(self.statistics, self.message_sizes, self.handshake_seconds)
        )

    # -- connections and requests ----------------------------------------------------
    @contextlib.contextmanager
    def connection(self) -> Iterator[None]:
        """Count one accepted connection for the block."""
        self.connections += 1
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        token = _requests_read.set([0])
        try:
            yield
        finally:
            _requests_read.reset(token)
            self.connections -= 1
            if self.connections == 0:
                self._idle.set()

    @contextlib.contextmanager
    def reading(self) -> Iterator[trio.CancelScope]:
        """A scope bounding one request head by ``handshake_timeout``; cancelled by :meth:`stop`."""
        read = _requests_read.get([0])
        with trio.move_on_after(self.config.handshake_timeout) as scope:
            self._reads[scope] = read[0] == 0  # a first request: a restart serves it
            try:
                yield scope
            finally:
                self._reads.pop(scope, None)
                read[0] += 1

    def refusal(self, remote: tuple[str, int] | None = None) -> Refusal | None:
        """503 while stopping (not for a restart), at ``max_connections``, or when the client
        address ``remote`` has ``max_connections_per_ip``; None if a session may start."""
        if self.stopping and self.ending is not Ending.SERVICE_RESTART:
            return Refusal(503, "server shutting down", (("Retry-After", "5"),))
        if len(self.sessions) + len(self._upgrades) >= self.config.max_connections:
            return Refusal(503, "too many connections", (("Retry-After", "1"),))
        limit = self.config.max_connections_per_ip
        if limit is not None and self._addresses.count(address_key(remote)) >= limit:
            self._per_ip_refusals += 1
            return Refusal(503, "too many connections from this address", _PER_IP_RETRY)
        return None

    @contextlib.contextmanager
    def upgrading(self, remote: tuple[str, int] | None = None) -> Iterator[Callable[[], None]]:
        """Count one upgrade until the block ends or the callable it gives is called, and one
        connection of the client address ``remote`` until the block ends."""
        token = object()
        self._upgrades.add(token)
        try:
            with self._addresses.holding(address_key(remote)):
                yield lambda: self._upgrades.discard(token)
        finally:
            self._upgrades.discard(token)

    # -- sessions --------------------------------------------------------------------
    async def supervise(self, supervisor: Supervisor) -> Closed:
        """Run one session to its end, counted and logged; how it closed."""
        session = supervisor.session
        started = trio.current_time()
        logger.info("open %s from %s", session.path, address_text(session.remote) or "?")
        self.sessions.add(supervisor)
        self._sessions_total += 1
        try:
            if self.stopping:
                supervisor.go_away(self.ending)
            closed = await supervisor.run()
        finally:
            self.sessions.discard(supervisor)
        self._closes[closed.code] += 1
        self._handler_errors += closed.ending is Ending.HANDLER_ERROR
        self._slow_closes += closed.ending is Ending.SLOW_CONSUMER
        self._rate_closes += closed.ending is Ending.RATE_LIMITED
        self._frame_timeouts += closed.ending is Ending.FRAME_TIMEOUT
        supervisor.counters.add_to(self._finished)
        duration = trio.current_time() - started
        logger.info(
            "close %s from %s: %d %s (%s%s) after %.3fs",
            session.path,
            address_text(session.remote) or "?",
            closed.code,
            closed.reason or "-",
            closed.ending.value,
            ", aborted" if closed.aborted else "",
            duration,
            extra={
                "code": closed.code,
                "reason": closed.reason,
                "ending": closed.ending.value,
                "aborted": closed.aborted,
                "duration": round(duration, 6),
            },
        )
        return closed

    # -- the server's side -----------------------------------------------------------
    def stop(self, *, restart: bool = False) -> None:
        """Refuse new sessions, cut request reads short, tell every session to go away (1001);
        with ``restart``, to reconnect (1012), and serve first requests under way."""
        self.stopping = True
        self.ending = Ending.SERVICE_RESTART if restart else Ending.GOING_AWAY
        for scope, first in list(self._reads.items()):
            if not (restart and first):
                scope.cancel()  # requests not yet complete: 503 if under way, else close
        for supervisor in list(self.sessions):
            supervisor.go_away(self.ending)

    async def wait_idle(self) -> None:
        """Return once no connection (open or handshaking) is left."""
        await self._idle.wait()

    def statistics(self) -> ServerStatistics:
        """Connection and message counts, now and since start."""
        totals = SessionCounters()
        self._finished.add_to(totals)
        for supervisor in self.sessions:
            supervisor.counters.add_to(totals)
        return ServerStatistics(
            open_connections=len(self.sessions),
            handshakes=self.connections - len(self.sessions),
            connections_total=self._sessions_total,
            closes_by_code=dict(self._closes),
            messages_in=totals.messages_in,
            messages_out=totals.messages_out,
            bytes_in=totals.bytes_in,
            bytes_out=totals.bytes_out,
            handler_errors=self._handler_errors,
            slow_consumer_drops=totals.drops,
            slow_consumer_closes=self._slow_closes,
            http_requests=self.http_requests,
            uptime=trio.current_time() - self._started,
            rate_limited=totals.rate_limited,
            rate_limit_closes=self._rate_closes,
            frame_timeouts=self._frame_timeouts,
            per_ip_refusals=self._per_ip_refusals,
            busiest_address=self._addresses.busiest(),
        )
