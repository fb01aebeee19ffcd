"""A session's incoming message rate: a token bucket (``Config.max_messages_per_second``).

Theory of operation: the bucket holds up to ``size`` tokens (``Config.message_burst``,
or one second's worth) and starts full; it refills at ``rate`` tokens a second, and
each received data message takes one. A message that finds less than one token is
over the limit: the connection's reader then applies ``Config.rate_limit_policy``
(close with 1008 ``rate limit``, or drop the message and count it). Time is Trio's
clock, read by the caller, so the bucket works on a ``MockClock`` too. Pings and
pongs take no token: the engine answers pings itself, at most 16 pongs owed.
"""

from __future__ import annotations

import math

from .config import Config


class TokenBucket:
    """``rate`` tokens a second, ``size`` at most; :meth:`take` one at time ``now``."""

    __slots__ = ("rate", "size", "stamp", "tokens")

    def __init__(self, rate: float, size: int, now: float) -> None:
        self.rate = rate
        self.size = size
        self.tokens = float(size)
        self.stamp = now

    def take(self, now: float) -> bool:
        """Take a token at ``now`` (seconds); False if there was not a whole one."""
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.stamp = now
        if tokens > self.size:
            tokens = self.size
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False


def burst_of(config: Config) -> int:
    """The bucket's size: ``message_burst``, or one second's worth of messages (at least 1)."""
    if config.message_burst is not None:
        return config.message_burst
    return max(1, math.ceil(config.max_messages_per_second or 1))


def bucket_for(config: Config, now: float) -> TokenBucket | None:
    """A full bucket for one session, or None when ``max_messages_per_second`` is None."""
    rate = config.max_messages_per_second
    return None if rate is None else TokenBucket(float(rate), burst_of(config), now)
