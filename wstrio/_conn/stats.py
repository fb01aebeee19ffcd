"""Counters and the statistics values read from them.

Theory of operation: a connection's counters are one :class:`SessionCounters`
object with public fields, made by the supervisor and shared (as trio's
``MemoryChannelState`` is shared by a channel's two ends) with the session,
the reader and writer, and the rooms that queue for it. Everyone writes its
own fields, in the open: no module touches another module's private attributes. The
``*Statistics`` values are frozen snapshots for users.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping

import attrs


@attrs.define
class SessionCounters:
    """A session's running counts; bytes are payload bytes (UTF-8 for text)."""

    messages_in: int = 0  # the reader
    messages_out: int = 0  # the writer
    bytes_in: int = 0  # the reader
    bytes_out: int = 0  # the writer
    drops: int = 0  # rooms: broadcasts dropped by a slow-consumer policy
    rate_limited: int = 0  # the reader: messages over max_messages_per_second
    latency: float | None = None  # seconds of the last ping's round trip

    def add_to(self, totals: SessionCounters) -> None:
        """Add the message, byte and drop counts to ``totals``."""
        totals.messages_in += self.messages_in
        totals.messages_out += self.messages_out
        totals.bytes_in += self.bytes_in
        totals.bytes_out += self.bytes_out
        totals.drops += self.drops
        totals.rate_limited += self.rate_limited


@attrs.frozen
class SessionStatistics:
    """Counters of one session; bytes are payload bytes (UTF-8 for text)."""

    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    inbox_used: int
    inbox_size: int
    outbox_used: int
    outbox_size: int
    drops: int = 0  # broadcasts dropped for this session by a room's slow-consumer policy
    backlog_used: int = 0  # broadcasts waiting beyond the full outbox
    backlog_bytes: int = 0
    rate_limited: int = 0  # messages over max_messages_per_second (dropped, or the one that closed)


@attrs.frozen
class ServerStatistics:
    """What a server is doing now, and has done since it started."""

    open_connections: int  # sessions being supervised
    handshakes: int  # accepted TCP connections not yet (or never) upgraded
    connections_total: int  # sessions supervised since start
    closes_by_code: Mapping[int, int]  # how the finished sessions closed
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    handler_errors: int = 0
    slow_consumer_drops: int = 0  # broadcasts dropped for slow sessions (drop policies)
    slow_consumer_closes: int = 0  # sessions closed with 1008 "slow consumer"
    http_requests: int = 0
    uptime: float = 0.0
    rate_limited: int = 0  # messages over max_messages_per_second: dropped, or closing a session
    rate_limit_closes: int = 0  # sessions closed with 1008 "rate limit"
    frame_timeouts: int = 0  # sessions closed with 1008 "frame timeout"
    per_ip_refusals: int = 0  # upgrades refused (503) past max_connections_per_ip
    busiest_address: int = 0  # sessions and upgrades of the client address with the most now


class Buckets:
    """A histogram with fixed upper bounds, cheap enough for every message: ``observe(x)``
    adds one to the first bucket whose bound is at least ``x`` (the last holds the rest)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or below it)``, ending with ``(inf, count)``."""
        out, running = [], 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


#: Received message sizes, bytes: 64 B to 16 MiB by powers of 4.
MESSAGE_SIZE_BOUNDS = tuple(float(64 * 4**n) for n in range(10))
#: Opening handshake durations, seconds (request read to 101 sent, the hook included).
HANDSHAKE_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
