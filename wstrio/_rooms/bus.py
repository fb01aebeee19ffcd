"""What a hub needs from a bus that carries its rooms to other processes.

Theory of operation
-------------------
A bus moves :class:`Envelope` values between the hubs of several processes.
The hub calls it without waiting (``publish``, ``subscribe``, ``present``):
a bus queues what it cannot do at once and does it from its own tasks. What
arrives from other processes the bus hands to ``Hub.receive`` in the order
the broker saw it. For a room with history, the bus also keeps that history
(``history``), and every process, the publishing one included, delivers the
room's messages as they come back from the broker, so every member sees one
order and a recovery is exact. While the bus is down (``connected`` False)
the hub delivers locally at once and the bus catches up when it is back.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from .._conn.transport import Message
from .history import Entry, Position


@attrs.frozen
class Envelope:
    """A room's message on its way between processes: the room, the message id (None in a
    room without history), the hub that sent it, and the message (str: a text frame)."""

    room: str
    id: str | None
    origin: str
    message: Message
    history: int = 0  # messages the room's history keeps (0: not kept; received: 1 if kept)
    history_ttl: float | None = None  # seconds the history lives after its last message
    position: Position | None = None  # received from a kept room: where the broker put it


class Receiver(Protocol):
    """What a bus hands messages to: a :class:`wstrio.Hub`."""

    def receive(self, envelope: Envelope) -> None:
        """Deliver a message that came through the broker."""

    def bus_down(self) -> None:
        """The broker is unreachable: deliver at once what waits for it."""


class Bus(Protocol):
    """A broker between hubs (:class:`wstrio.RedisBus`); one bus serves one hub."""

    @property
    def connected(self) -> bool:
        """Whether messages go through the broker now (False: degraded, local only)."""

    def attach(self, hub: Receiver) -> str:
        """Serve ``hub`` from now on; returns the origin its messages are sent under."""

    def publish(self, envelope: Envelope) -> None:
        """Send ``envelope`` to every process with members in its room; never waits."""

    def subscribe(self, room: str) -> None:
        """The room has local members now: receive its messages."""

    def unsubscribe(self, room: str) -> None:
        """The room's last local member left."""

    def present(self, room: str, key: str, name: str | None) -> None:
        """Show ``key`` as a member called ``name`` of ``room`` (None: remove it)."""

    async def presence(self, room: str) -> list[str]:
        """The names of the room's members in every process, in join order."""

    async def history(self, room: str) -> list[Entry]:
        """The room's history, oldest first; OSError-like errors if the broker is down."""
