"""Message ids and a room's history: what a reconnecting member missed.

Theory of operation
-------------------
Every message of a room with history gets an id when it is broadcast:
``<origin>-<n>``, where ``origin`` names the hub (one per process, random)
and ``n`` counts up. Ids are unique across processes and opaque to clients.
A history keeps the last ``size`` messages, in the one order every member of
the room sees them (the hub's own order, or Redis's when a bus carries the
room). A member that comes back with the id of the last message it saw gets
every message after that id, in that order; an id the history no longer holds
(trimmed, expired, or never seen) is a failed recovery, reported as such
rather than guessed at.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from collections.abc import Sequence

import attrs
import trio

from .._conn.transport import Message


def new_origin() -> str:
    """A fresh name for a hub: 12 random hex digits."""
    return secrets.token_hex(6)


class MessageIds:
    """Ids for one hub's messages: ``<origin>-1``, ``<origin>-2``, ..."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self._numbers = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.origin}-{next(self._numbers)}"


@attrs.frozen
class Recovery:
    """How a join with ``since`` went: ``recovered`` is False when the history no longer
    holds the id (so messages may be missing); ``missed`` counts the messages sent again."""

    recovered: bool
    missed: int


#: Where a message stands in a broker's order (Redis: the stream entry id as two ints).
Position = tuple[int, int]


@attrs.frozen
class Entry:
    """One message a history keeps: its id, the message, and its position in the broker's
    order (None in memory, where the order is the list's)."""

    id: str
    message: Message
    position: Position | None = None


def entries_after(entries: Sequence[Entry], since: str) -> tuple[bool, list[Entry]]:
    """``(True, the entries after since)``, or ``(False, [])`` if ``since`` is not among them."""
    for index, entry in enumerate(entries):
        if entry.id == since:
            return True, list(entries[index + 1 :])
    return False, []


class Ring:
    """A room's history in memory: the last ``size`` messages, each kept ``ttl`` seconds
    (``None``: until pushed out), timed on Trio's clock."""

    def __init__(self, size: int, ttl: float | None) -> None:
        self.size = size
        self.ttl = ttl
        self._entries: deque[tuple[float, Entry]] = deque(maxlen=size)

    def append(self, id: str, message: Message) -> None:
        self._entries.append((trio.current_time(), Entry(id, message)))

    def entries(self) -> list[Entry]:
        """The entries still held, oldest first."""
        if self.ttl is not None:
            oldest = trio.current_time() - self.ttl
            while self._entries and self._entries[0][0] < oldest:
                self._entries.popleft()
        return [entry for _, entry in self._entries]

    def __len__(self) -> int:
        return len(self.entries())
