"""One prepared message into many outboxes, and what a full one gets: the slow-consumer policy.

A full outbox alone does not make a member slow: Trio runs every ready task
before any task it wakes, so when many members speak at once their broadcasts
all land before any writer runs. Such bursts go to the member's *backlog*
(bounded by ``Config.broadcast_backlog`` bytes), which its writer moves into
the outbox as it drains it. Only when the backlog is spent too does the room
apply its slow-consumer policy to that member alone:

* ``"close"`` (the default): the member is closed with 1008 "slow consumer";
  the messages queued for it are dropped, and it leaves every room;
* ``"drop_newest"``: this message is not queued for that member;
* ``"drop_oldest"``: the oldest backlogged broadcasts are dropped to make room
  (the oldest outbox message if there is no backlog to spend).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import trio

from .._conn.outbox import Mailbox
from .._conn.session import Session
from .._conn.transport import Prepared
from .policy import Counters, SlowConsumerPolicy


def deliver_to(
    members: Mapping[Session, Mailbox],
    message: Prepared,
    skip: Collection[Session],
    policy: SlowConsumerPolicy,
    counts: Sequence[Counters],
) -> int:
    """Queue ``message`` for every member not in ``skip``; how many it was queued for.
    Deliveries, drops and slow closes are added to each of ``counts``."""
    full: list[Mailbox] = []
    delivered = 0
    for session, mailbox in members.items():
        if skip and session in skip:
            continue
        try:
            mailbox.outbox.put_nowait(message)
            delivered += 1
        except trio.WouldBlock:
            full.append(mailbox)
    if full:
        size = len(message)  # the UTF-8 payload, measured once
        for mailbox in full:
            delivered += _when_full(mailbox, message, size, policy, counts)
    for count in counts:
        count.deliveries += delivered
    return delivered


def _when_full(
    mailbox: Mailbox,
    message: Prepared,
    size: int,
    policy: SlowConsumerPolicy,
    counts: Sequence[Counters],
) -> int:
    """A member's outbox is full: backlog, or apply the policy; 1 if ``message`` was queued."""
    outbox = mailbox.outbox
    if outbox.to_backlog(message, size):
        return 1
    if policy == "close":
        for count in counts:
            count.slow_closes += 1
        mailbox.close_slow()
        return 0
    if policy == "drop_oldest":
        while outbox.backlog and not outbox.to_backlog(message, size):
            outbox.pop_backlog()
            _count_drop(mailbox, counts)
        if outbox.backlog:
            return 1  # it fit once older broadcasts were dropped
        if outbox.drop_oldest():  # no backlog to spend: make room in the outbox
            _count_drop(mailbox, counts)
            outbox.queue_nowait(message)
            return 1
    _count_drop(mailbox, counts)
    return 0


def _count_drop(mailbox: Mailbox, counts: Sequence[Counters]) -> None:
    mailbox.counters.drops += 1
    for count in counts:
        count.drops += 1
