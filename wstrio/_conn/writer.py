"""The connection's writer: the only task that sends data, in batches.

Theory of operation: the writer takes what the outbox holds (up to a batch),
moves the room backlog up behind it, and hands the batch to the transport's
``send_many``, which writes it (and any control frame that waits) at once.
Each write gets a fresh deadline (``write_timeout``) on a scope that is not
disarmed afterwards: a deadline that expires while the writer is idle only
means the scope is spent, and the writer starts over with a new one. A write
cut short leaves ``in_send`` set: the stream is then unusable and the closer
aborts it. When the transport has a control frame (a pong, a ping) and the
writer is idle, :meth:`Writer.wake` gets it to write with no message.

While idle, the writer lends the outbox its ``direct`` path: a message put
without waiting is written by the transport's ``write_now`` on the spot (and
counted here), so a broadcast to a member whose socket has room costs no task
switch. Whatever the socket did not take, the transport keeps and wakes the
writer for, like a control frame.
"""

from __future__ import annotations

import trio

from .outbox import Outbox, payload_size
from .stats import SessionCounters
from .transport import Outgoing, Transport, TransportClosed

#: At most this many queued messages, or about this many bytes, go out in one write.
BATCH_MESSAGES = 64
BATCH_BYTES = 65536


class Writer:
    """Drains an outbox into a transport until the outbox is closed and empty."""

    def __init__(
        self, transport: Transport, outbox: Outbox, counters: SessionCounters, timeout: float
    ) -> None:
        self._transport = transport
        self._outbox = outbox
        self._counters = counters
        self._timeout = timeout
        self.scope = trio.CancelScope()  # cancelled by a decision that does not drain
        self.done = trio.Event()
        self.in_send = False  # a write is under way, or was cut short (the stream is unusable)
        self._idle: trio.CancelScope | None = None  # set while waiting for the outbox
        self._woken = False  # a control frame waits: write even with no message
        self._direct = self._write_now if transport.writes_now else None
        transport.set_writer_wakeup(self.wake)

    async def run(self) -> TransportClosed | None:
        """Write until the outbox is closed and drained; how the wire ended, if it did.

        ``in_send`` set on return means a write timed out."""
        held: list[Outgoing] | None = None
        try:
            with self.scope:
                try:
                    while not self.in_send:
                        with trio.CancelScope() as write_scope:
                            batch, held = held, None
                            held = await self._send_until_stale(write_scope, batch)
                except trio.EndOfChannel:  # a decision closed the outbox and it is drained
                    await self._drain_backlog()
        except TransportClosed as exc:
            self.in_send = False
            return exc
        finally:
            self.done.set()
        return None

    def wake(self) -> None:
        """The transport has a control frame to send: write, even with no message."""
        self._woken = True
        self._outbox.direct = None
        if self._idle is not None:
            self._idle.cancel()

    def _write_now(self, message: Outgoing) -> bool:
        """The outbox's direct path while idle: the transport writes ``message`` now."""
        if not self._transport.write_now(message):
            return False
        counters = self._counters
        counters.messages_out += 1
        counters.bytes_out += payload_size(message)
        return True

    async def _send_until_stale(
        self, write_scope: trio.CancelScope, held: list[Outgoing] | None
    ) -> list[Outgoing]:
        """Take and send batches, each with a fresh deadline on ``write_scope``; return the
        batch just taken once the scope is spent (its deadline passed while idle)."""
        while True:
            batch = held if held is not None else await self._next_batch()
            held = None
            if write_scope.cancel_called:  # a stale deadline: start over with a new scope
                return batch
            write_scope.deadline = trio.current_time() + self._timeout
            await self._send_batch(batch)

    async def _next_batch(self) -> list[Outgoing]:
        """What the outbox holds, up to a batch; waits for a message or a wake-up."""
        receive = self._outbox.receive
        try:
            batch = [receive.receive_nowait()]
        except trio.WouldBlock:
            batch = await self._wait_for_message()
        size = len(batch[0]) if batch else 0
        while len(batch) < BATCH_MESSAGES and size < BATCH_BYTES:
            try:
                message = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            batch.append(message)
            size += len(message)
        if self._outbox.backlog:
            self._outbox.top_up()
        return batch

    async def _wait_for_message(self) -> list[Outgoing]:
        """The next message, or none if :meth:`wake` is (or was) called."""
        if not self._woken:
            outbox = self._outbox
            with trio.CancelScope() as self._idle:
                outbox.direct = self._direct
                try:
                    return [await outbox.receive.receive()]
                finally:
                    self._idle = None
                    outbox.direct = None
        self._woken = False
        return []

    async def _send_batch(self, batch: list[Outgoing]) -> None:
        """Write a batch and count it; ``in_send`` stays set if the write is cut short."""
        self.in_send = True
        await self._transport.send_many(batch)
        self.in_send = False
        counters = self._counters
        counters.messages_out += len(batch)
        for message in batch:
            counters.bytes_out += payload_size(message)

    async def _drain_backlog(self) -> None:
        """After a draining decision: send the broadcasts that waited beyond the outbox."""
        outbox = self._outbox
        while outbox.backlog:
            batch = [outbox.pop_backlog()]
            while outbox.backlog and len(batch) < BATCH_MESSAGES:
                batch.append(outbox.pop_backlog())
            with trio.move_on_after(self._timeout):
                await self._send_batch(batch)
            if self.in_send:
                return  # write timeout: the closer sees a send cut short and aborts
