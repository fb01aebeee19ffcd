"""Rooms of sessions, and broadcasts that never wait: :class:`Hub` and :class:`Room`.

Theory of operation
-------------------
A broadcast encodes the message once (:class:`Prepared`) and puts it into each
member's bounded outbox with a non-blocking put; that member's writer task
sends it when the peer reads (or the outbox writes it on the spot while the
writer is idle). Nothing here awaits, so a member that stops reading cannot
delay anyone else. Bursts beyond a full outbox go to the member's *backlog*
(``Config.broadcast_backlog`` bytes); only when that is spent too does the
room apply its slow-consumer policy to that member alone (see ``delivery``).

A room with ``history`` gives each message an id and keeps the last N, so a
member that joins again with ``since=<id>`` gets what it missed, then live
traffic, with no gap and no duplicate: while its recovery is read, live
messages for it are held, and those the history already returned are skipped.

With a bus (``Hub(bus=RedisBus(url))``) a broadcast also goes to the other
processes with members in the room, published once. A room without history
delivers to local members at once. A room with history delivers, in every
process, in the order the broker saw the messages (one round trip later), so
every member sees one order and recovery is exact; while the bus is down it
delivers locally at once. Rooms are plain state, safe from any task of one
``trio.run``; the hub holds rooms weakly, except rooms whose history it keeps.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .._conn.session import Session
from .._conn.transport import Message, Prepared, check_message
from .bus import Bus, Envelope
from .history import MessageIds, new_origin
from .policy import POLICIES as POLICIES  # re-exported for the CLI
from .policy import HubStatistics, SlowConsumerPolicy, check_policy
from .room import (
    Host,
    Room,
    Settings,
    bus_down,
    configure,
    deliver_here,
    exclusion,
    is_idle,
    receive,
)


class Hub:
    """Named rooms with one slow-consumer policy by default (rooms may override it).

    ``bus`` (:class:`wstrio.RedisBus`) carries the rooms to other processes; without one,
    rooms live in this process only.
    """

    def __init__(self, *, policy: SlowConsumerPolicy = "close", bus: Bus | None = None) -> None:
        self.policy = check_policy(policy)
        self.bus = bus
        origin = bus.attach(self) if bus is not None else new_origin()
        self._host = Host(origin, bus, MessageIds(origin))
        self._kept: dict[str, Room] = {}  # rooms with history live as long as the hub

    @property
    def origin(self) -> str:
        """The name this hub's messages carry between processes (random, per process)."""
        return self._host.origin

    def room(
        self,
        name: str,
        *,
        policy: SlowConsumerPolicy | None = None,
        history: int | None = None,
        history_ttl: float | None = None,
    ) -> Room:
        """The room called ``name``, made on first use; ``policy`` overrides the hub's.

        ``history`` (messages, 0 for none) keeps the room's last messages for members
        that join again with ``since``; ``history_ttl`` (seconds, None: no limit) drops
        them that long after they were sent. Settings are kept by the hub, even while
        the room is gone. ValueError for a negative size, a TTL that is not positive,
        or a new history size for a room that has members.
        """
        if not isinstance(name, str):
            raise TypeError(f"a room name is a str, not {type(name).__name__}")
        host = self._host
        default = Settings(self.policy)
        settings = host.settings.get(name, default)
        if policy is not None:
            settings = attrs.evolve(settings, policy=check_policy(policy))
        if history is not None or history_ttl is not None:
            if history is not None and (
                isinstance(history, bool) or not isinstance(history, int) or history < 0
            ):
                raise ValueError(f"history must be an int of messages >= 0, not {history!r}")
            if history_ttl is not None and not history_ttl > 0:
                raise ValueError(f"history_ttl must be seconds > 0 or None, not {history_ttl!r}")
            size = settings.history if history is None else history
            settings = attrs.evolve(settings, history=size, history_ttl=history_ttl)
        room = host.rooms.get(name)
        if room is None or (settings.history != room.history and not len(room)):
            for idle in [kept for kept in self._kept.values() if is_idle(kept)]:
                del self._kept[idle.name]  # its history expired: nothing left to keep
            room = Room(host, name, settings, self)
            host.rooms[name] = room
        else:
            configure(room, settings)
        if settings != default:
            host.settings[name] = settings
        if settings.history:
            self._kept[name] = room
        return room

    @property
    def rooms(self) -> dict[str, Room]:
        """The rooms alive now, by name."""
        return dict(self._host.rooms)

    def receive(self, envelope: Envelope) -> None:
        """A message the bus brought: deliver it to the room's members in this process."""
        room = self._host.rooms.get(envelope.room)
        if room is not None and len(room):
            receive(room, envelope)

    def bus_down(self) -> None:
        """The bus lost the broker: deliver at once what waited for its echo."""
        for room in list(self._host.rooms.values()):
            bus_down(room)

    def broadcast(
        self, message: Message, *, exclude: Session | Iterable[Session] | None = None
    ) -> int:
        """Queue ``message`` once for every session in any room of this process; never waits
        (it does not go through the bus, nor into any history)."""
        prepared = Prepared(check_message(message))
        seen = set(exclusion(exclude))
        delivered = 0
        for room in list(self._host.rooms.values()):
            delivered += deliver_here(room, prepared, seen)
            seen.update(room.members)
        self._host.counts.broadcasts += 1
        return delivered

    def statistics(self) -> HubStatistics:
        """Rooms and memberships now; broadcast totals since the hub was made."""
        rooms = list(self._host.rooms.values())
        counts = self._host.counts
        return HubStatistics(
            rooms=len(rooms),
            members=sum(len(room) for room in rooms),
            broadcasts=counts.broadcasts,
            deliveries=counts.deliveries,
            drops=counts.drops,
            slow_closes=counts.slow_closes,
            received=counts.received,
        )
