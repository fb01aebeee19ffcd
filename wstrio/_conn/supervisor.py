"""One nursery per connection: reader, writer, heartbeat and the handler.

Theory of operation
-------------------
Four single-purpose tasks share one nursery:

* the *reader* moves whole messages from the transport into the bounded inbox
  (past ``max_messages_per_second``, it drops a message or decides RATE_LIMITED);
* the *writer* is the only task that sends data: it drains the bounded outbox
  in batches (``writer.py``);
* the *heartbeat* pings every ``ping_interval`` and wants a pong within
  ``ping_timeout`` (it records the round trip as the session's latency);
* the *handler* is the user's code; it sees only the :class:`Session`.

Whichever task ends first *decides*: it hands an :class:`Ending` to
``decide``, which looks it up in ``CLOSE_TABLE`` exactly once and then
stops the others: the session leaves its rooms; the reader and heartbeat are
cancelled; the inbox is closed (the handler drains what was already received,
then gets ConnectionClosed);
the outbox is closed and either drained by the writer (rules with ``drain``)
or dropped with the writer cancelled. A handler that did not decide gets a
grace period (``close_timeout``, or ``shutdown_timeout`` when the server goes
away) to return before it is cancelled. A closer task then does what the rule
says on the wire (close handshake bounded by ``close_timeout``, else abort).

If the nursery is cancelled from outside, the ending is GOING_AWAY and the
close runs shielded, still bounded. Expected endings are values
(:class:`Closed`); only a bug in wstrio raises, as InternalError.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import attrs
import trio

from .closecodes import CLOSE_TABLE, Closed, Ending, Wire, closed_for
from .config import Config
from .errors import (
    CloseConnection,
    InternalError,
    classify_handler_exception,
    fatal_leaf,
    split_group,
)
from .logfields import get_logger
from .outbox import Mailbox, Outbox, payload_size
from .ratelimit import bucket_for
from .session import Handler, Session
from .stats import Buckets, SessionCounters
from .transport import Message, Transport, TransportClosed
from .writer import Writer

logger = get_logger("wstrio.session")

#: Endings the handler itself decided: it has returned already.
_HANDLER_DONE = frozenset({Ending.HANDLER_RETURNED, Ending.HANDLER_ERROR, Ending.HANDLER_CLOSED})


class Supervisor:
    """Runs one connection to its end; ``await run()`` returns how it closed."""

    def __init__(
        self,
        transport: Transport,
        handler: Handler,
        config: Config,
        *,
        accepts: type[str] | type[bytes] | None = None,
        quiet: bool = False,
        state: dict[str, Any] | None = None,
        sizes: Buckets | None = None,
    ) -> None:
        self._transport = transport
        self._sizes = sizes  # the server's histogram of received message sizes
        self._handler = handler
        self._config = config
        self._accepts = accepts
        self._inbox_send, inbox_recv = trio.open_memory_channel[Message](config.inbox_size)
        self.outbox = Outbox(config.outbox_size, config.broadcast_backlog)
        self.counters = SessionCounters()
        close_slow = functools.partial(self.decide, Ending.SLOW_CONSUMER)
        self.mailbox = Mailbox(self.outbox, self.counters, close_slow)
        self.session = Session(
            self, transport.info, inbox_recv, self.mailbox, quiet=quiet, state=state
        )
        self._writer = Writer(transport, self.outbox, self.counters, config.write_timeout)
        self.closed: Closed | None = None
        self.wire_closed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._handler_scope = trio.CancelScope()
        self._reader_scope = trio.CancelScope()
        self._heartbeat_scope = trio.CancelScope()
        self._inbox_full = False
        self._close_started = False

    # -- lifecycle -------------------------------------------------------------------
    async def run(self) -> Closed:
        """Supervise the connection until every task is done; never raises for peers."""
        failure: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._run_handler)
                nursery.start_soon(self._reader)
                nursery.start_soon(self._write)
                if self._config.ping_interval is not None:
                    nursery.start_soon(self._heartbeat)
                if self.closed is not None:  # decided before run(): go_away() came early
                    nursery.start_soon(self._finish_wire)
        except BaseException as exc:  # cancelled from outside, or a bug: handled below
            failure = exc
        self._nursery = None
        if failure is not None:
            # Outside the except block, so that no library code mistakes the
            # pending exception for one of its own while the wire closes.
            bug = split_group(failure, trio.Cancelled)[1]
            self.decide(Ending.GOING_AWAY if bug is None else Ending.INTERNAL_ERROR)
            with trio.CancelScope(shield=True):
                await self._finish_wire()
            if bug is None:
                raise failure
            fatal = fatal_leaf(bug)
            if fatal is not None:  # KeyboardInterrupt or SystemExit from a handler: pass it on
                raise fatal from None
            raise InternalError(f"bug in wstrio's connection supervisor: {bug!r}") from failure
        assert self.closed is not None
        return self.closed

    def go_away(self, ending: Ending = Ending.GOING_AWAY) -> None:
        """Close with 1001 (server shutting down) or, for ``Ending.SERVICE_RESTART``, 1012
        (a rolling restart: reconnect); the handler gets ``shutdown_timeout``."""
        self.decide(ending)

    async def ping(self) -> None:
        """A ping outside the heartbeat (``Session.ping``); raises TransportClosed."""
        await self._transport.ping()

    async def close(self, code: int, reason: str) -> None:
        """The handler closes (``Session.close``): decide, then wait for the close handshake."""
        self.decide(Ending.HANDLER_CLOSED, code, reason)
        await self.wire_closed.wait()

    # -- the decision ----------------------------------------------------------------
    def decide(self, ending: Ending, code: int | None = None, reason: str | None = None) -> None:
        """End the connection with ``ending``; the first decision wins, later ones are no-ops.

        Any task may call it: the four tasks, a room (slow consumer), a
        stopping server, a client's caller leaving its block.
        """
        if self.closed is not None:
            return
        self.closed = closed_for(ending, code, reason)
        self.mailbox.end()
        self._reader_scope.cancel()
        self._heartbeat_scope.cancel()
        self._inbox_send.close()
        self.outbox.close()
        if not CLOSE_TABLE[ending].drain:
            self._writer.scope.cancel()
            self.outbox.clear_backlog()
        if ending not in _HANDLER_DONE:
            grace = self._config.close_timeout
            if ending in (Ending.GOING_AWAY, Ending.SERVICE_RESTART):
                grace = self._config.shutdown_timeout
            self._give_handler(grace)
        if self._nursery is not None:
            # RuntimeError: cancelled from outside, the nursery is closing; run() closes the wire
            with contextlib.suppress(RuntimeError):
                self._nursery.start_soon(self._finish_wire)

    def _give_handler(self, seconds: float) -> None:
        deadline = trio.current_time() + seconds
        self._handler_scope.deadline = min(self._handler_scope.deadline, deadline)

    async def _finish_wire(self) -> None:
        """Do on the wire what the rule says; exactly once, always bounded."""
        if self.wire_closed.is_set():
            return
        assert self.closed is not None
        closed = self.closed
        with trio.move_on_after(self._config.close_timeout):
            await self._writer.done.wait()
        if not self._writer.done.is_set():  # the drain took too long
            self._writer.scope.cancel()
            self._writer.in_send = True
        wire = CLOSE_TABLE[closed.ending].wire
        aborted = False
        if wire is Wire.CLOSE and (self._writer.in_send or self._close_started):
            wire, aborted = Wire.ABORT, True  # the stream cannot carry a close frame
        if wire is Wire.CLOSE:
            self._close_started = True
            with trio.move_on_after(self._config.close_timeout) as scope:
                earlier = await self._transport.close(closed.code, closed.reason)
                if earlier is not None and earlier.ending is not closed.ending:
                    closed = closed_for(earlier.ending, earlier.code, earlier.reason)
                    self.closed = closed  # the wire wins: report what the peer saw
            aborted = scope.cancelled_caught
        if aborted or wire is Wire.ABORT:
            with trio.CancelScope(shield=True):
                await self._transport.abort()
        if aborted:
            self.closed = attrs.evolve(closed, aborted=True)
        self.wire_closed.set()
        if closed.ending is Ending.HANDLER_CLOSED:
            self._give_handler(self._config.close_timeout)

    # -- the four tasks --------------------------------------------------------------
    async def _run_handler(self) -> None:
        with self._handler_scope:
            try:
                await self._handler(self.session)
            except BaseException as exc:  # classified below; Cancelled goes on
                cancelled, rest = split_group(exc, trio.Cancelled)
                if rest is not None:
                    self._handler_raised(rest)
                if cancelled is not None:
                    raise cancelled from None
            else:
                self.decide(Ending.HANDLER_RETURNED)

    def _handler_raised(self, exc: BaseException) -> None:
        """Decide from what the handler (or a task in its nursery) raised."""
        verdict = classify_handler_exception(exc, decided=self.closed is not None)
        if verdict is Ending.HANDLER_ERROR:
            logger.error("handler for %s raised", self.session.path, exc_info=exc)
            self.decide(Ending.HANDLER_ERROR)
        elif isinstance(verdict, CloseConnection):
            self.decide(Ending.HANDLER_CLOSED, verdict.code, verdict.reason)

    async def _reader(self) -> None:
        counters = self.counters
        accepts = self._accepts
        inbox = self._inbox_send
        sizes = self._sizes
        bucket = bucket_for(self._config, trio.current_time())
        drop = self._config.rate_limit_policy == "drop"
        with self._reader_scope:
            try:
                while True:
                    message = await self._transport.receive()
                    if accepts is not None and not isinstance(message, accepts):
                        self.decide(Ending.UNSUPPORTED_DATA)
                        return
                    if bucket is not None and not bucket.take(trio.current_time()):
                        counters.rate_limited += 1  # over the rate: never reaches the inbox
                        if drop:
                            continue
                        self.decide(Ending.RATE_LIMITED)
                        return
                    counters.messages_in += 1
                    size = payload_size(message)
                    counters.bytes_in += size
                    if sizes is not None:
                        sizes.observe(size)
                    try:
                        inbox.send_nowait(message)
                    except trio.WouldBlock:
                        self._inbox_full = True
                        await inbox.send(message)
                        self._inbox_full = False
            except TransportClosed as exc:
                self.decide(exc.ending, exc.code, exc.reason)
            except trio.ClosedResourceError:
                pass  # a decision closed the inbox

    async def _write(self) -> None:
        ended = await self._writer.run()
        if ended is not None:
            self.decide(ended.ending, ended.code, ended.reason)
        elif self._writer.in_send:  # a write outlived its deadline
            self.decide(Ending.WRITE_TIMEOUT)

    async def _heartbeat(self) -> None:
        assert self._config.ping_interval is not None
        interval = self._config.ping_interval
        timeout = self._config.ping_timeout
        with self._heartbeat_scope:
            try:
                while True:
                    await trio.sleep(interval)
                    sent = trio.current_time()
                    with trio.move_on_after(timeout) as scope:
                        await self._transport.ping()
                    if not scope.cancelled_caught:
                        self.counters.latency = trio.current_time() - sent
                    elif not self._inbox_full:  # a full inbox is our back-pressure, not theirs
                        self.decide(Ending.KEEPALIVE_TIMEOUT)
                        return
            except TransportClosed as exc:
                self.decide(exc.ending, exc.code, exc.reason)
