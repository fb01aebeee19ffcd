"""Slow-consumer policies and the counters rooms and hubs keep, as plain data."""

from __future__ import annotations

from typing import Literal, get_args

import attrs

SlowConsumerPolicy = Literal["close", "drop_newest", "drop_oldest"]
POLICIES: tuple[str, ...] = get_args(SlowConsumerPolicy)


def check_policy(policy: str) -> SlowConsumerPolicy:
    """``policy`` if it names a slow-consumer policy, else ValueError."""
    if policy not in POLICIES:
        raise ValueError(f"slow-consumer policy must be one of {', '.join(POLICIES)}: {policy!r}")
    return policy  # type: ignore[return-value]


@attrs.frozen
class RoomStatistics:
    """What one room holds and has done. A delivery is a message queued for one member."""

    name: str
    policy: SlowConsumerPolicy
    members: int  # members in this process
    broadcasts: int
    deliveries: int
    drops: int  # messages dropped for slow members (drop policies)
    slow_closes: int  # members closed with 1008 (close policy)
    history: int | None = None  # messages the history keeps (None: no history)


@attrs.frozen
class HubStatistics:
    """Totals over every room the hub has had, and what it holds now."""

    rooms: int  # rooms alive now
    members: int  # memberships now (a session in two rooms counts twice)
    broadcasts: int
    deliveries: int
    drops: int
    slow_closes: int
    received: int = 0  # messages that came from other processes through the bus


@attrs.define
class Counters:
    broadcasts: int = 0
    deliveries: int = 0
    drops: int = 0
    slow_closes: int = 0
    received: int = 0
