"""``wstrio bench URL``: a load generator for an echo endpoint.

Opens --connections sessions at once; when all have opened (or failed), a
window of --duration seconds starts. In it, each session sends text messages
of --size bytes: with --rate 0 the next only once the echo of the last one
came back (closed loop); with --rate R, R messages per second on a schedule
whatever the replies do (open loop). Each message starts with its sequence
number in hex; latency is from when the message was sent (open loop: from
when it was due, so a server that stalls the sender is not flattered) until
its echo arrives. A session that fails is replaced, after a short backoff.

Counted as errors, by kind: ``connect ECONNREFUSED`` (an errno name), ``connect
timeout``, ``connect error``, ``http 503`` (a refused handshake), ``close
1011`` (the server closed or vanished: 1006), the local endings ``keepalive
timeout`` and ``message too big``, ``timeout`` (no echo within --timeout) and
``unexpected message`` (a reply that is not the echo of a message in flight).

A live progress line is shown while stdout is a terminal. --json prints one
object instead of the table, with these keys: url, connections, duration
(seconds measured), size, rate (0: closed loop), sessions (opened in all),
messages (echoes received in the window), messages_per_second, latency_ms
(p50, p90, p99, max, mean: numbers, or null without messages), errors (kind ->
count) and interrupted (true after Ctrl-C).

Exit status: 0 when messages went through without errors, 1 when there were
errors or no message at all, 2 for usage errors, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from array import array
from collections import Counter
from collections.abc import Callable
from typing import Any

import trio

from .._client.connect import connect
from .._conn.closecodes import Ending
from .._conn.errors import ConnectError, ConnectionClosed, HandshakeRejected
from .._conn.session import Session
from . import common as cli
from .report import error_kind, percentile, table

_ID = 8  # hex digits of the sequence number that starts each message


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench",
        help="a load generator for an echo endpoint",
        description=cli.plain(__doc__),
        formatter_class=cli.HelpFormatter,
    )
    add = bench.add_argument
    add("url", help="an echo endpoint, e.g. ws://127.0.0.1:7777/ws/echo")
    add("--connections", type=_at_least(1), default=10, metavar="N", help="sessions at once")
    add("--duration", type=cli.seconds, default=10.0, metavar="SECONDS", help="the window's length")
    add(
        "--size",
        type=_at_least(_ID),
        default=16,
        metavar="BYTES",
        help=f"bytes per text message, at least {_ID}",
    )
    add(
        "--rate",
        type=_at_least(0.0),
        default=0.0,
        metavar="PER_SECOND",
        help="messages per second per session; 0: each waits for its echo (closed loop)",
    )
    add(
        "--timeout",
        type=cli.seconds,
        default=5.0,
        metavar="SECONDS",
        help="an echo later than this counts as a timeout (also bounds closing)",
    )
    add("--json", action="store_true", help="print one JSON object instead of the table")
    cli.add_connection_options(bench, session=False)
    add("--log-level", type=cli.log_level, default="WARNING", help="logging level")


def _at_least(minimum: float) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        value = type(minimum)(text)
        if not minimum <= value < math.inf:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        return value

    return parse


def run(args: argparse.Namespace) -> int:
    """The ``bench`` command; its exit status."""
    try:
        kwargs = cli.connection_kwargs(
            args, close_timeout=args.timeout, max_message_size=max(2**20, args.size)
        )
    except ValueError as exc:
        return cli.fail(str(exc), 2)
    bench = Bench(args, kwargs, progress=sys.stdout.isatty())
    status = trio.run(cli.interruptible, bench.main)
    report = bench.report()
    print(json.dumps(report) if args.json else table(report), flush=True)
    return status


class Bench:
    """One run: the sessions, the window, the counts; timed on Trio's clock.

    ``args`` has url, connections, duration, size, rate and timeout;
    ``kwargs`` are for ``wstrio.connect``.
    """

    def __init__(self, args: Any, kwargs: dict[str, Any], *, progress: bool = False) -> None:
        self.url, self.kwargs, self.connections = args.url, kwargs, args.connections
        self.duration, self.size, self.rate = args.duration, args.size, args.rate
        self.timeout, self.progress = args.timeout, progress
        self.latencies = array("d")
        self.recent: list[float] = []  # latencies since the last progress line
        self.errors: Counter[str] = Counter()
        self.sessions = 0
        self.start = self.end = 0.0
        self.interrupted = False
        self._first_errors: list[BaseException] = []
        self._pending = self.connections  # first attempts still running
        self._go = trio.Event()
        self._scopes: set[trio.CancelScope] = set()

    async def main(self, interrupt: cli.Interrupt) -> int:
        with interrupt.scope():  # a second Ctrl-C: stop at once (sessions get 1001)
            async with trio.open_nursery() as nursery:
                for _ in range(self.connections):
                    nursery.start_soon(self._worker)
                with interrupt.scope():  # the first: end the window now
                    await self._go.wait()
                    async with trio.open_nursery() as window:
                        if self.sessions and self.progress:
                            window.start_soon(self._show_progress)
                        await trio.sleep_until(self.end)
                        window.cancel_scope.cancel()
                if interrupt.hit:
                    self.interrupted = True
                    self.end = min(self.end, trio.current_time())
                    for scope in self._scopes:
                        scope.cancel()
        if self.progress:
            print("\r\x1b[K", end="", flush=True)
        if not self.sessions and self._first_errors:
            exc = self._first_errors[0]
            message = exc.strerror if isinstance(exc, OSError) and exc.errno else exc
            cli.fail(" ".join(str(message).split()), 1)
        if interrupt.hit:
            self.interrupted = True
            return 130
        return 0 if self.latencies and not self.errors else 1

    def _opened(self, exc: BaseException | None) -> None:
        """A worker's first attempt is over; the window starts when all are."""
        if exc is not None:
            self._first_errors.append(exc)
        self._pending -= 1
        if self._pending == 0:
            self.start = trio.current_time()
            self.end = self.start + (self.duration if self.sessions and not self.interrupted else 0)
            self._go.set()

    async def _worker(self) -> None:
        first, failures = True, 0
        while first or trio.current_time() < self.end:
            try:
                async with connect(self.url, **self.kwargs) as session:
                    self.sessions += 1
                    if first:
                        first = False
                        self._opened(None)
                    await self._go.wait()
                    if await self._traffic(session):
                        failures = 0
            except (HandshakeRejected, ConnectError) as exc:
                if trio.current_time() < self.end or first:
                    self.errors[error_kind(exc)] += 1
                if first:
                    first = False
                    self._opened(exc)
            await self._go.wait()
            failures += 1
            with trio.move_on_at(self.end):
                await trio.sleep(min(1.0, 0.05 * 2**failures))

    async def _traffic(self, session: Session) -> bool:
        """Messages until the window ends or the session fails; True if any echo came."""
        before = len(self.latencies)
        with trio.CancelScope(deadline=self.end) as scope:
            self._scopes.add(scope)
            try:
                await (self._open_loop if self.rate else self._closed_loop)(session)
            finally:
                self._scopes.discard(scope)
        closed = session.closed
        if closed is not None and trio.current_time() < self.end:
            peer = closed.ending in (Ending.PEER_CLOSED, Ending.PEER_VANISHED)
            self.errors[f"close {closed.code}" if peer else closed.ending.value] += 1
        return len(self.latencies) > before

    def _payload(self, seq: int) -> str:
        return f"{seq & 0xFFFFFFFF:0{_ID}x}".ljust(self.size, "x")

    def _record(self, latency: float) -> None:
        if trio.current_time() <= self.end:
            self.latencies.append(latency)
            self.recent.append(latency)

    async def _closed_loop(self, session: Session) -> None:
        """Send, wait for the echo, repeat; returns when the session ends or an echo is late."""
        seq = 0
        try:
            while True:
                payload = self._payload(seq)
                sent = trio.current_time()
                await session.send(payload)
                with trio.move_on_after(self.timeout):
                    while await session.receive() != payload:
                        self.errors["unexpected message"] += 1
                    self._record(trio.current_time() - sent)
                    seq += 1
                    continue
                self.errors["timeout"] += 1
                return  # the echo may yet come: a new session keeps the counts honest
        except ConnectionClosed:
            return

    async def _open_loop(self, session: Session) -> None:
        """Send on schedule while another task matches echoes; returns when the session ends."""
        due: dict[int, float] = {}  # in flight: id -> when it was due, oldest first
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receive_echoes, session, due, nursery.cancel_scope)
            interval = 1 / self.rate  # sessions start out of step, not in bursts
            seq, next_due = 0, trio.current_time() + random.uniform(0, interval)
            try:
                while True:
                    await trio.sleep_until(next_due)
                    while due and next(iter(due.values())) < trio.current_time() - self.timeout:
                        del due[next(iter(due))]
                        self.errors["timeout"] += 1
                    key = seq & 0xFFFFFFFF
                    due[key] = next_due
                    await session.send(self._payload(key))
                    seq, next_due = seq + 1, next_due + interval
            except ConnectionClosed:
                nursery.cancel_scope.cancel()

    async def _receive_echoes(
        self, session: Session, due: dict[int, float], done: trio.CancelScope
    ) -> None:
        try:
            while True:
                reply = await session.receive()
                try:
                    sent = due.pop(int(reply[:_ID], 16)) if isinstance(reply, str) else None
                except (ValueError, KeyError):
                    sent = None
                if sent is None:
                    self.errors["unexpected message"] += 1
                else:
                    self._record(trio.current_time() - sent)
        except ConnectionClosed:
            done.cancel()

    async def _show_progress(self) -> None:
        tick = self.start
        while (tick := tick + 1.0) < self.end:
            await trio.sleep_until(tick)
            recent, self.recent = sorted(self.recent), []
            elapsed = tick - self.start
            print(
                f"\r\x1b[K{elapsed:4.0f} s  {len(self.latencies):,} messages  "
                f"{len(self.latencies) / elapsed:,.0f}/s  "
                f"p50 {cli.format_ms(percentile(recent, 50) if recent else None)}  "
                f"errors {sum(self.errors.values())}",
                end="",
                flush=True,
            )

    def report(self) -> dict[str, Any]:
        """The numbers, under the keys --json documents."""
        measured = max(0.0, self.end - self.start)
        ordered = sorted(self.latencies)
        latency: dict[str, float | None] = dict.fromkeys(("p50", "p90", "p99", "max", "mean"))
        if ordered:
            latency = {f"p{p}": round(percentile(ordered, p) * 1000, 3) for p in (50, 90, 99)}
            latency["max"] = round(ordered[-1] * 1000, 3)
            latency["mean"] = round(sum(ordered) / len(ordered) * 1000, 3)
        return {
            "url": self.url,
            "connections": self.connections,
            "duration": round(measured, 3),
            "size": self.size,
            "rate": self.rate,
            "sessions": self.sessions,
            "messages": len(ordered),
            "messages_per_second": round(len(ordered) / measured, 1) if measured else 0.0,
            "latency_ms": latency,
            "errors": dict(sorted(self.errors.items())),
            "interrupted": self.interrupted,
        }
