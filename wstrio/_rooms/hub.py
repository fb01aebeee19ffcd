"""Rooms of sessions, and broadcasts that never wait: :class:`Hub` and :class:`Room`.

Theory of operation
-------------------
A broadcast encodes the message once (:class:`Prepared`: its UTF-8 payload,
and frames built once per variant and shared by every member whose connection
sends the same bytes) and puts it into each member's bounded outbox with a
non-blocking put; that member's writer task sends it when the peer reads. A
member whose writer is idle and whose socket has room gets it written on the
spot (the outbox's direct path), with no task woken for it.
Nothing here awaits, so a member that stops reading cannot delay anyone else.

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

A room holds each member's :class:`Mailbox` (its outbox and counters, and
how to close it as a slow consumer), never its supervisor: a broadcast goes
from the room into the member's outbox and on to its writer, one way.
A session leaves every room the moment its ending is decided (whatever the
reason), so a closing session never holds a place or receives more. The hub
holds rooms weakly: a room lives while it has members or someone holds it.
All of this is plain state, safe to use from any task of one ``trio.run``.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Collection, Iterable
from typing import Literal, get_args

import attrs
import trio

from .._conn.errors import ConnectionClosed
from .._conn.outbox import Mailbox
from .._conn.session import Session, mailbox_of
from .._conn.transport import Message, Prepared, check_message

SlowConsumerPolicy = Literal["close", "drop_newest", "drop_oldest"]
POLICIES: tuple[str, ...] = get_args(SlowConsumerPolicy)


def _check_policy(policy: str) -> SlowConsumerPolicy:
    if policy not in POLICIES:
        raise ValueError(f"slow-consumer policy must be one of {', '.join(POLICIES)}: {policy!r}")
    return policy  # type: ignore[return-value]


@attrs.frozen
class RoomStatistics:
    """What one room holds and has done. A delivery is a message queued for one member."""

    name: str
    policy: SlowConsumerPolicy
    members: int
    broadcasts: int
    deliveries: int
    drops: int  # messages dropped for slow members (drop policies)
    slow_closes: int  # members closed with 1008 (close policy)


@attrs.frozen
class HubStatistics:
    """Totals over every room the hub has had, and what it holds now."""

    rooms: int  # rooms alive now
    members: int  # memberships now (a session in two rooms counts twice)
    broadcasts: int
    deliveries: int
    drops: int
    slow_closes: int


def _exclusion(exclude: Session | Iterable[Session] | None) -> Collection[Session]:
    if exclude is None:
        return ()
    if isinstance(exclude, Session):
        return (exclude,)
    if isinstance(exclude, set | frozenset):
        return exclude
    return frozenset(exclude)


@attrs.define
class _Counters:
    broadcasts: int = 0
    deliveries: int = 0
    drops: int = 0
    slow_closes: int = 0


class Room:
    """A named set of sessions that receive the same broadcasts. Get one from a Hub."""

    def __init__(self, hub: Hub, name: str, policy: SlowConsumerPolicy) -> None:
        self.hub = hub
        self.name = name
        self._policy = policy
        self._members: dict[Session, Mailbox] = {}  # insertion order is join order
        self._counts = _Counters()

    @property
    def policy(self) -> SlowConsumerPolicy:
        """What happens to a member whose outbox and backlog are full; settable, kept by the hub."""
        return self._policy

    @policy.setter
    def policy(self, policy: SlowConsumerPolicy) -> None:
        self._policy = self.hub._policies[self.name] = _check_policy(policy)

    @property
    def members(self) -> tuple[Session, ...]:
        """The sessions in the room, in the order they joined."""
        return tuple(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, session: object) -> bool:
        return session in self._members

    def join(self, session: Session) -> None:
        """Add ``session`` (no-op if present); ConnectionClosed if it has ended."""
        if session.closed is not None:
            raise ConnectionClosed(session.closed.code, session.closed.reason)
        if session not in self._members:
            mailbox = mailbox_of(session)
            self._members[session] = mailbox
            mailbox.rooms[self] = functools.partial(self.leave, session)
            self.hub._rooms.setdefault(self.name, self)

    def leave(self, session: Session) -> None:
        """Remove ``session``; no-op if it is not a member."""
        mailbox = self._members.pop(session, None)
        if mailbox is not None:
            mailbox.rooms.pop(self, None)

    def broadcast(
        self, message: Message, *, exclude: Session | Iterable[Session] | None = None
    ) -> int:
        """Queue ``message`` for every member but ``exclude``; never waits.

        Returns how many members it was queued for. Members whose outbox is
        full and whose backlog is spent get the room's slow-consumer policy.
        """
        delivered = self._deliver(Prepared(check_message(message)), _exclusion(exclude))
        self.hub._counts.broadcasts += 1
        return delivered

    def _deliver(self, message: Prepared, skip: Collection[Session]) -> int:
        """Queue ``message`` for every member not in ``skip``; count one broadcast of the room."""
        full: list[Mailbox] = []
        delivered = 0
        for session, mailbox in self._members.items():
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
                delivered += self._when_full(mailbox, message, size)
        self._counts.broadcasts += 1
        self._counts.deliveries += delivered
        self.hub._counts.deliveries += delivered
        return delivered

    def _when_full(self, mailbox: Mailbox, message: Prepared, size: int) -> int:
        """A member's outbox is full: backlog, or apply the policy; 1 if ``message`` was queued."""
        outbox = mailbox.outbox
        if outbox.to_backlog(message, size):
            return 1
        if self._policy == "close":
            self._counts.slow_closes += 1
            self.hub._counts.slow_closes += 1
            mailbox.close_slow()
            return 0
        if self._policy == "drop_oldest":
            while outbox.backlog and not outbox.to_backlog(message, size):
                outbox.pop_backlog()
                self._count_drop(mailbox)
            if outbox.backlog:
                return 1  # it fit once older broadcasts were dropped
            if outbox.drop_oldest():  # no backlog to spend: make room in the outbox
                self._count_drop(mailbox)
                outbox.queue_nowait(message)
                return 1
        self._count_drop(mailbox)
        return 0

    def _count_drop(self, mailbox: Mailbox) -> None:
        mailbox.counters.drops += 1
        self._counts.drops += 1
        self.hub._counts.drops += 1

    def statistics(self) -> RoomStatistics:
        """Members now; broadcasts, deliveries, drops and slow closes so far."""
        counts = self._counts
        return RoomStatistics(
            name=self.name,
            policy=self._policy,
            members=len(self._members),
            broadcasts=counts.broadcasts,
            deliveries=counts.deliveries,
            drops=counts.drops,
            slow_closes=counts.slow_closes,
        )

    def __repr__(self) -> str:
        return f"<wstrio.Room {self.name!r} {len(self._members)} members {self._policy}>"


class Hub:
    """Named rooms with one slow-consumer policy by default (rooms may override it)."""

    def __init__(self, *, policy: SlowConsumerPolicy = "close") -> None:
        self.policy = _check_policy(policy)
        self._rooms: weakref.WeakValueDictionary[str, Room] = weakref.WeakValueDictionary()
        self._policies: dict[str, SlowConsumerPolicy] = {}  # rooms given their own policy
        self._counts = _Counters()

    def room(self, name: str, *, policy: SlowConsumerPolicy | None = None) -> Room:
        """The room called ``name``, made on first use; ``policy`` overrides the hub's."""
        if not isinstance(name, str):
            raise TypeError(f"a room name is a str, not {type(name).__name__}")
        room = self._rooms.get(name)
        if room is None:
            room = Room(self, name, self._policies.get(name, self.policy))
            self._rooms[name] = room
        if policy is not None:
            room.policy = policy  # kept by the hub, even while the room is gone
        return room

    @property
    def rooms(self) -> dict[str, Room]:
        """The rooms alive now, by name."""
        return dict(self._rooms)

    def broadcast(
        self, message: Message, *, exclude: Session | Iterable[Session] | None = None
    ) -> int:
        """Queue ``message`` once for every session in any room; never waits."""
        prepared = Prepared(check_message(message))
        seen = set(_exclusion(exclude))
        delivered = 0
        for room in list(self._rooms.values()):
            delivered += room._deliver(prepared, seen)
            seen.update(room._members)
        self._counts.broadcasts += 1
        return delivered

    def statistics(self) -> HubStatistics:
        """Rooms and memberships now; broadcast totals since the hub was made."""
        rooms = list(self._rooms.values())
        counts = self._counts
        return HubStatistics(
            rooms=len(rooms),
            members=sum(len(room) for room in rooms),
            broadcasts=counts.broadcasts,
            deliveries=counts.deliveries,
            drops=counts.drops,
            slow_closes=counts.slow_closes,
        )
