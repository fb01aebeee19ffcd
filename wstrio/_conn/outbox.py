"""A session's outgoing queue (:class:`Outbox`) and the handle rooms hold (:class:`Mailbox`).

The outbox is a trio memory channel: handlers' sends wait on it (back-pressure)
and the connection's writer drains it. Room broadcasts never wait; when the
outbox is full they go to the backlog, bounded in bytes, which the writer moves
into the outbox as it drains it (``top_up``), so broadcasts keep their order.

While the writer is idle (waiting on an empty outbox) it sets ``direct``: a
non-blocking put (:meth:`Outbox.put_nowait`, what rooms and ``send_nowait``
use) then hands the message to the transport's ``write_now`` and, when the
socket takes it, no task runs for it at all. Anything that goes into the
channel clears ``direct`` first, so nothing can overtake a queued message; the
writer sets it again only once it is idle again.

A room holds no reference to the supervisor's parts: the supervisor hands out a
:class:`Mailbox` (the outbox, the counters, a way to close the member as a
slow consumer, and the rooms to leave when the session ends). A broadcast
travels one way: room, then the member's outbox, then its writer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

from .stats import SessionCounters
from .transport import Outgoing, Prepared


def payload_size(message: Outgoing) -> int:
    """Bytes the message occupies on the wire, before framing (UTF-8 for text)."""
    if isinstance(message, str) and not message.isascii():  # isascii() is O(1)
        return len(message.encode("utf-8"))
    return len(message)


def unwrap(item: Outgoing) -> str | bytes:
    """The message itself, prepared or not."""
    return item.message if isinstance(item, Prepared) else item


class Outbox:
    """The outbox channel's two ends and its backlog: session and rooms put, the writer takes."""

    __slots__ = ("backlog", "backlog_bytes", "backlog_limit", "direct", "receive", "send")

    def __init__(self, size: int, backlog_limit: int) -> None:
        self.send, self.receive = trio.open_memory_channel[Outgoing](size)
        self.backlog: deque[Outgoing] = deque()
        self.backlog_bytes = 0
        self.backlog_limit = backlog_limit
        #: Set by the idle writer: writes a message at once, False if it cannot.
        self.direct: Callable[[Outgoing], bool] | None = None

    def put_nowait(self, message: Outgoing) -> None:
        """Write ``message`` at once if the writer is idle and the socket takes it, else
        queue it; raises trio.WouldBlock (full) or trio.ClosedResourceError like the channel."""
        direct = self.direct
        if direct is not None and direct(message):
            return
        self.queue_nowait(message)

    def queue_nowait(self, message: Outgoing) -> None:
        """Queue ``message`` for the writer (never written directly); raises like the channel."""
        self.direct = None
        self.send.send_nowait(message)

    async def queue(self, message: Outgoing) -> None:
        """Queue ``message`` for the writer, waiting while the outbox is full."""
        self.direct = None
        await self.send.send(message)

    def close(self) -> None:
        """No more messages (puts raise trio.ClosedResourceError); the writer drains the rest."""
        self.direct = None
        self.send.close()

    def to_backlog(self, message: Outgoing, size: int) -> bool:
        """Queue a broadcast beyond the full outbox; False if the backlog has no room."""
        if self.backlog_bytes + size > self.backlog_limit:
            return False
        self.backlog.append(message)
        self.backlog_bytes += size
        return True

    def pop_backlog(self) -> Outgoing:
        """The oldest backlogged message, removed."""
        message = self.backlog.popleft()
        self.backlog_bytes -= payload_size(message)
        return message

    def top_up(self) -> None:
        """Move backlogged broadcasts into the outbox while it has room (the writer's job)."""
        backlog = self.backlog
        while backlog:
            try:
                self.queue_nowait(backlog[0])
            except (trio.WouldBlock, trio.ClosedResourceError):
                return
            self.backlog_bytes -= payload_size(backlog.popleft())

    def drop_oldest(self) -> bool:
        """Drop the oldest message in the outbox; False if it holds none or a send waits."""
        if self.receive.statistics().tasks_waiting_send:
            return False  # its message would take the freed slot at once
        try:
            self.receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            return False
        return True

    def clear_backlog(self) -> None:
        self.backlog.clear()
        self.backlog_bytes = 0


class Mailbox:
    """What a room holds of one member: the supervisor only through ``close_slow``.

    ``outbox`` and ``counters`` are shared with the session and its writer;
    ``close_slow()`` closes the member with 1008 "slow consumer". A room that
    the member joins registers how to leave it; the supervisor calls
    :meth:`end` once, when the session's ending is decided, and every room is
    left then.
    """

    __slots__ = ("_close_slow", "counters", "outbox", "rooms")

    def __init__(
        self, outbox: Outbox, counters: SessionCounters, close_slow: Callable[[], None]
    ) -> None:
        self.outbox = outbox
        self.counters = counters
        self._close_slow = close_slow
        self.rooms: dict[object, Callable[[], None]] = {}  # room -> how to leave it; join order

    def close_slow(self) -> None:
        """End the session with 1008 "slow consumer" (a room's ``close`` policy)."""
        self._close_slow()

    def end(self) -> None:
        """The session's ending is decided: leave every room (the supervisor calls this once)."""
        for leave in list(self.rooms.values()):
            leave()
        self.rooms.clear()
