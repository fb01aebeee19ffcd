"""A room: its members in this process, its history, and its traffic through the bus.

(The theory of operation is in ``hub``.)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from typing import overload

import attrs

from .._conn.errors import ConnectionClosed
from .._conn.outbox import Mailbox
from .._conn.session import Session, mailbox_of
from .._conn.transport import Message, Prepared, check_message
from .bus import Bus, Envelope
from .delivery import deliver_to
from .history import Entry, MessageIds, Position, Recovery, Ring, entries_after
from .policy import Counters, RoomStatistics, SlowConsumerPolicy, check_policy

#: What a join sends between a member's recovered messages and its live ones.
Notice = Callable[
    [Recovery | None], Message | Iterable[Message] | Awaitable[Message | Iterable[Message]]
]

#: Own messages a room keeps while waiting for the broker to echo them.
_ECHO_LIMIT = 10_000


def exclusion(exclude: Session | Iterable[Session] | None) -> Collection[Session]:
    """``exclude`` as a collection of sessions."""
    if exclude is None:
        return ()
    if isinstance(exclude, Session):
        return (exclude,)
    if isinstance(exclude, set | frozenset):
        return exclude
    return frozenset(exclude)


@attrs.frozen
class Settings:
    """A room's settings, kept by the hub while the room is gone."""

    policy: SlowConsumerPolicy
    history: int = 0
    history_ttl: float | None = None


@attrs.define(eq=False)
class Host:
    """What a hub shares with its rooms: its origin and bus, ids, counters, rooms, settings."""

    origin: str
    bus: Bus | None
    ids: MessageIds
    counts: Counters = attrs.Factory(Counters)
    keys: Iterator[int] = attrs.Factory(lambda: itertools.count(1))  # presence keys
    rooms: weakref.WeakValueDictionary[str, Room] = attrs.Factory(weakref.WeakValueDictionary)
    settings: dict[str, Settings] = attrs.Factory(dict)  # rooms given their own settings


class Room:
    """A named set of sessions that receive the same broadcasts. Get one from a Hub."""

    def __init__(self, host: Host, name: str, settings: Settings, hub: object = None) -> None:
        self._host = host
        self.hub = hub  # the Hub it belongs to
        self.name = name
        self._settings = settings
        self._members: dict[Session, Mailbox] = {}  # insertion order is join order
        self._names: dict[Session, tuple[str, str]] = {}  # presence key, name
        self._held: dict[Session, list[tuple[Position | None, Prepared]]] = {}  # recovering
        # How far a member's recovery read the broker's order: the history read can overtake
        # this process's fan-out, so live messages up to there are skipped for the member.
        self._horizon: dict[Session, Position] = {}
        self._ring = Ring(settings.history, settings.history_ttl) if settings.history else None
        self._echo: OrderedDict[str, tuple[Prepared, Collection[Session]]] = OrderedDict()
        self._early: set[str] = set()  # own messages delivered before the broker echoed them
        self._counts = Counters()

    @property
    def policy(self) -> SlowConsumerPolicy:
        """What happens to a member whose outbox and backlog are full; settable, kept by the hub."""
        return self._settings.policy

    @policy.setter
    def policy(self, policy: SlowConsumerPolicy) -> None:
        self._settings = attrs.evolve(self._settings, policy=check_policy(policy))
        self._host.settings[self.name] = self._settings

    @property
    def history(self) -> int:
        """How many messages the room's history keeps (0: no history)."""
        return self._settings.history

    @property
    def members(self) -> tuple[Session, ...]:
        """The sessions in the room in this process, in the order they joined."""
        return tuple(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, session: object) -> bool:
        return session in self._members

    @overload
    def join(self, session: Session, *, name: str | None = None) -> None: ...
    @overload
    def join(
        self,
        session: Session,
        *,
        name: str | None = None,
        since: str | None = None,
        notice: Notice | None = None,
    ) -> Awaitable[Recovery | None]: ...
    def join(
        self,
        session: Session,
        *,
        name: str | None = None,
        since: str | None = None,
        notice: Notice | None = None,
    ) -> Awaitable[Recovery | None] | None:
        """Add ``session`` (no-op if present), shown as ``name`` in :meth:`presence`.

        ConnectionClosed if the session has ended. With ``since`` (the id of the
        last message the member saw) or ``notice``, it returns an awaitable: await it
        to queue every message after ``since``, then what ``notice(recovery)`` returns
        (a message or a list of them; it may be async, and ``recovery`` is None without
        ``since``), then the live messages that arrived meanwhile, and get the
        :class:`Recovery` (None without ``since``). The member is in the room from the
        call on; its live messages wait until then, none lost and none twice.
        """
        if session.closed is not None:
            raise ConnectionClosed(session.closed.code, session.closed.reason)
        if session not in self._members:
            mailbox = mailbox_of(session)
            first = not self._members
            self._members[session] = mailbox
            mailbox.rooms[self] = functools.partial(self.leave, session)
            self._host.rooms.setdefault(self.name, self)
            key = f"{self._host.origin}:{next(self._host.keys)}"
            self._names[session] = key, name or key
            bus = self._host.bus
            if bus is not None:
                if first:
                    bus.subscribe(self.name)
                bus.present(self.name, key, name or key)
        if since is None and notice is None:
            return None
        self._held[session] = []
        return self._recover(session, since, notice)

    def leave(self, session: Session) -> None:
        """Remove ``session``; no-op if it is not a member."""
        mailbox = self._members.pop(session, None)
        if mailbox is None:
            return
        mailbox.rooms.pop(self, None)
        self._held.pop(session, None)
        self._horizon.pop(session, None)
        key, _ = self._names.pop(session)
        bus = self._host.bus
        if bus is not None:
            bus.present(self.name, key, None)
            if not self._members:
                bus.unsubscribe(self.name)

    async def presence(self) -> list[str]:
        """The names of the room's members in every process the bus reaches, in join order
        (with no bus, or while it is down: this process's members)."""
        bus = self._host.bus
        if bus is not None and bus.connected:
            try:
                return await bus.presence(self.name)
            except OSError:
                pass  # the broker went away: say what this process knows
        return [name for _, name in self._names.values()]

    async def last_id(self) -> str | None:
        """The id of the newest message the history holds (None: none, no history, or the
        bus is down): a cursor for a member that has seen no message yet."""
        try:
            entries = await self._history()
        except OSError:
            return None
        return entries[-1].id if entries else None

    def new_id(self) -> str:
        """A fresh message id, unique across processes: give it to :meth:`broadcast` when
        the message itself must carry its id (as the chat's ``message`` frames do)."""
        return self._host.ids()

    def broadcast(
        self,
        message: Message,
        *,
        exclude: Session | Iterable[Session] | None = None,
        id: str | None = None,
        keep: bool = True,
    ) -> int:
        """Queue ``message`` for every member but ``exclude``; never waits.

        Returns how many members in this process it was queued for now (0 in a
        room with history while a bus carries it: those deliveries come back from
        the broker). Members whose outbox is full and whose backlog is spent get the
        room's slow-consumer policy. In a room with history the message is kept
        under ``id`` (a fresh :meth:`new_id` if None) unless ``keep`` is False (a
        notice that only live members need, delivered as in a room without history).
        """
        prepared = Prepared(check_message(message))
        skip = exclusion(exclude)
        self._counts.broadcasts += 1
        self._host.counts.broadcasts += 1
        bus = self._host.bus
        settings = self._settings
        kept = bool(settings.history and keep)
        if kept and id is None:
            id = self.new_id()
        if bus is not None:
            size, ttl = (settings.history, settings.history_ttl) if kept else (0, None)
            bus.publish(Envelope(self.name, id, self._host.origin, prepared.message, size, ttl))
            if kept and id is not None:
                if bus.connected:
                    self._echo[id] = prepared, skip  # delivered when the broker echoes it
                    while len(self._echo) > _ECHO_LIMIT:
                        self._echo.popitem(last=False)
                    return 0
                self._early.add(id)
        elif kept and self._ring is not None and id is not None:
            self._ring.append(id, prepared.message)
        return self._deliver(prepared, skip, id)

    def _deliver(
        self,
        message: Prepared,
        skip: Collection[Session],
        id: str | None,
        position: Position | None = None,
    ) -> int:
        """Queue ``message`` for every member not in ``skip`` (held for recovering ones)."""
        members = self._members
        if self._held or (self._horizon and position is not None):
            members = {}
            for session, mailbox in self._members.items():
                held = self._held.get(session)
                horizon = self._horizon.get(session)
                if horizon is not None and position is not None:
                    if position <= horizon:
                        continue  # its recovery covered this one
                    del self._horizon[session]  # the fan-out has passed the recovery
                if held is None:
                    members[session] = mailbox
                elif session not in skip:
                    held.append((position, message))
        counts = (self._counts, self._host.counts)
        return deliver_to(members, message, skip, self._settings.policy, counts)

    async def _history(self) -> list[Entry]:
        bus = self._host.bus
        if not self._settings.history:
            return []
        if bus is not None:
            return await bus.history(self.name)
        return self._ring.entries() if self._ring is not None else []

    async def _recover(
        self, session: Session, since: str | None, notice: Notice | None
    ) -> Recovery | None:
        recovery: Recovery | None = None
        try:
            history: list[Entry] = []
            missed: list[Entry] = []
            if since is not None:
                with contextlib.suppress(OSError):  # the broker is down: no history to read
                    history = await self._history()
                found, missed = entries_after(history, since)
                recovery = Recovery(found, len(missed))
            extra = await _call_notice(notice, recovery)
        finally:
            held = self._held.pop(session, [])
        mailbox = self._members.get(session)
        if mailbox is None:
            return recovery
        horizon = history[-1].position if history else None
        if horizon is not None:  # what the read covered: skip it live, once held or later
            held = [(at, message) for at, message in held if at is None or at > horizon]
            self._horizon[session] = horizon
        queue = [Prepared(entry.message) for entry in missed]
        queue.extend(Prepared(check_message(message)) for message in extra)
        queue.extend(message for _, message in held)
        for message in queue:
            counts = (self._counts, self._host.counts)
            deliver_to({session: mailbox}, message, (), self._settings.policy, counts)
        return recovery
        horizon = history[-1].position if history else None
        if horizon is not None:  # what the read covered: skip it live, once held or later
            held = [(at, message) for at, message in held if at is None or at > horizon]
            self._horizon[session] = horizon
        queue = [Prepared(entry.message) for entry in missed]
        if notice is not None:
            queue.append(Prepared(check_message(notice(recovery))))
        queue.extend(message for _, message in held)
        for message in queue:
            counts = (self._counts, self._host.counts)
            deliver_to({session: mailbox}, message, (), self._settings.policy, counts)
        return recovery

    def statistics(self) -> RoomStatistics:
        """Members now; broadcasts, deliveries, drops and slow closes so far."""
        counts = self._counts
        return RoomStatistics(
            name=self.name,
            policy=self._settings.policy,
            members=len(self._members),
            broadcasts=counts.broadcasts,
            deliveries=counts.deliveries,
            drops=counts.drops,
            slow_closes=counts.slow_closes,
            history=self._settings.history or None,
        )

    def __repr__(self) -> str:
        return f"<wstrio.Room {self.name!r} {len(self._members)} members {self.policy}>"


async def _call_notice(notice: Notice | None, recovery: Recovery | None) -> list[Message]:
    """What ``notice(recovery)`` gives, as a list of messages (awaited if need be)."""
    if notice is None:
        return []
    result = notice(recovery)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, str | bytes):
        return [result]
    return list(result)


def configure(room: Room, settings: Settings) -> None:
    """New settings from the hub; ValueError for a new history size while it has members."""
    if settings.history != room._settings.history and room._members:
        raise ValueError(f"room {room.name!r} has members: its history size cannot change")
    room._settings = settings


def deliver_here(room: Room, message: Prepared, skip: Collection[Session]) -> int:
    """Queue ``message`` for this process's members not in ``skip``, bypassing bus and
    history (``Hub.broadcast``); counts one broadcast of the room."""
    room._counts.broadcasts += 1
    return room._deliver(message, skip, None)


def receive(room: Room, envelope: Envelope) -> None:
    """Deliver a message the bus brought (from another process, or this one's own echo)."""
    skip: Collection[Session] = ()
    if envelope.origin == room._host.origin:
        if not envelope.history or envelope.id in room._early:
            room._early.discard(envelope.id)
            return  # delivered when it was sent
        prepared, skip = room._echo.pop(envelope.id or "", (Prepared(envelope.message), ()))
    else:
        prepared = Prepared(envelope.message)
        room._host.counts.received += 1
    room._deliver(prepared, skip, envelope.id, envelope.position)


def bus_down(room: Room) -> None:
    """The bus is down: deliver at once what still waits for the broker's echo."""
    while room._echo:
        id, (prepared, skip) = room._echo.popitem(last=False)
        room._early.add(id)
        room._deliver(prepared, skip, id)


def is_idle(room: Room) -> bool:
    """No member, nothing awaited from the broker and no history left in memory: a room
    the hub may forget."""
    return not (room._members or room._echo or (room._ring is not None and len(room._ring)))
