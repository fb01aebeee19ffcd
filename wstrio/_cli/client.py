"""``wstrio client URL``: a WebSocket client in the terminal, or in a pipe.

Interactive (stdin is a terminal): each line typed is sent as a text message,
with line editing and history (the arrow keys, Ctrl-R) by prompt_toolkit, and
incoming messages printed above the line being typed, never into it;
incoming messages print as ``< text`` (binary as ``< [binary N bytes] hex``);
each new heartbeat round trip prints as ``· ping 0.41 ms``; ``/help`` lists
the commands (``/close [CODE [REASON]]``, ``/ping``, ``/bin HEX``, ``/quit``).
Ctrl-D closes with 1000, Ctrl-C with 1001. The last line is ``closed CODE
REASON``, with ``(aborted)`` if the close handshake did not complete.

Pipe (stdin is not a terminal): each line of stdin is sent as a text message,
empty lines too, slashes and all; incoming messages are printed one per line,
exactly as received (binary as ``[binary N bytes] hex``). Once stdin ends, the
client waits until no message has arrived for --wait seconds, or until the
server closes, then closes with 1000. The close line goes to stderr.

Exit status: 0 after a close with 1000, 1001 or 1005 (a close frame without a
code); 1 after any other code, an aborted close or a failed connection (one
line on stderr); 2 for usage errors; 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import codecs
import io
import math
import os
import sys
from collections import deque
from typing import Any, TextIO

import trio

from .._client.connect import connect
from .._conn.closecodes import Closed, check_close
from .._conn.errors import ConnectError, ConnectionClosed, HandshakeRejected
from .._conn.session import Session
from .._conn.transport import Message
from . import common as cli
from .prompt import Interrupted, LineEditor

_HELP = """commands:
  /close [CODE [REASON]]  close with CODE (default 1000) and REASON, then exit
  /ping                   send a ping now and show its round trip
  /bin HEX                send a binary message (hex digits, spaces allowed)
  /quit                   close with 1000 and exit (as Ctrl-D does)
  /help                   this list
  //text                  send "/text": a leading // stands for one slash
other lines are sent as text messages; empty lines are not sent"""

_HEX_SHOWN = 32  # bytes of a binary message shown in interactive mode


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    client = commands.add_parser(
        "client",
        help="a client for the terminal (or for scripts, when stdin is not a terminal)",
        description=cli.plain(__doc__),
        formatter_class=cli.HelpFormatter,
    )
    client.add_argument("url", help="ws:// or wss:// URL, e.g. ws://127.0.0.1:7777/ws/echo")
    client.add_argument(
        "--wait",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="pipe mode: once stdin has ended, close after this long without a message",
    )
    cli.add_connection_options(client, session=True)
    client.add_argument("--log-level", type=cli.log_level, default="WARNING", help="logging level")


def run(args: argparse.Namespace) -> int:
    """The ``client`` command; its exit status."""
    try:
        kwargs = cli.connection_kwargs(args)
    except ValueError as exc:
        return cli.fail(str(exc), 2)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    client = Terminal(args.url, kwargs, interactive=os.isatty(0), wait=max(0.0, args.wait))
    return trio.run(cli.interruptible, client.main)


class LineReader:
    """Lines of a file descriptor, read in a worker thread (never blocking Trio).

    ``os.read`` on the raw descriptor, not ``sys.stdin``: a thread left blocked
    in a read when the session ends then holds no lock that exiting needs.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._lines: deque[str] = deque()
        self._partial: list[str] = []
        self._eof = False

    async def readline(self) -> str | None:
        """The next line without its line ending; None at the end."""
        while not self._lines and not self._eof:
            chunk = await trio.to_thread.run_sync(os.read, self._fd, 65536, abandon_on_cancel=True)
            self._eof = not chunk
            parts = self._decoder.decode(chunk, final=self._eof).split("\n")
            self._partial.append(parts.pop())
            if parts:
                parts[0] = "".join(self._partial[:-1]) + parts[0]
                self._partial = self._partial[-1:]
                self._lines.extend(parts)
            if self._eof and "".join(self._partial):
                self._lines.append("".join(self._partial))
        return self._lines.popleft().removesuffix("\r") if self._lines else None


class Terminal:
    def __init__(self, url: str, kwargs: dict[str, Any], *, interactive: bool, wait: float):
        self.url = url
        self.kwargs = kwargs
        self.interactive = interactive
        self.wait = wait

    async def main(self, interrupt: cli.Interrupt) -> int:
        """Connect, talk, close; the exit status."""
        session: Session | None = None
        try:
            with interrupt.scope():
                async with connect(self.url, **self.kwargs) as session:
                    if self.interactive:
                        offered = session.subprotocol
                        extra = f" (subprotocol {offered})" if offered else ""
                        _say(f"connected to {self.url}{extra}")
                    with interrupt.scope():
                        if self.interactive:
                            await self._interactive(session, interrupt)
                        else:
                            await self._pipe(session)
                    if interrupt.hit:
                        await session.close(1001, "going away")
        except HandshakeRejected as exc:
            return cli.fail(" ".join(str(exc).split()), 1)
        except ConnectError as exc:
            return cli.fail(str(exc.strerror if exc.errno is not None else exc), 1)
        if session is None or session.closed is None:
            return cli.fail(f"connecting to {self.url} was interrupted", 130)
        self._report(session.closed)
        if interrupt.hit:
            return 130
        return 0 if session.closed.code in (1000, 1001, 1005) and not session.closed.aborted else 1

    def _report(self, closed: Closed) -> None:
        line = f"closed {closed.code} {closed.reason}".rstrip()
        _say(line + " (aborted)" * closed.aborted, sys.stdout if self.interactive else sys.stderr)

    async def _pipe(self, session: Session) -> None:
        # Once stdin has ended, ``quiet`` expires --wait seconds after the last
        # message (or the end of stdin, if later); each message moves it on.
        quiet = trio.CancelScope(deadline=-math.inf)
        async with trio.open_nursery() as nursery:

            async def printer() -> None:
                try:
                    while True:
                        message = await session.receive()
                        quiet.deadline = trio.current_time() + self.wait
                        _write_raw(message)
                except (ConnectionClosed, BrokenPipeError):
                    nursery.cancel_scope.cancel()  # the server closed, or stdout did

            nursery.start_soon(printer)
            reader = LineReader(0)
            try:
                while (line := await reader.readline()) is not None:
                    await session.send(line)
            except ConnectionClosed:
                return
            quiet.deadline = max(quiet.deadline, trio.current_time() + self.wait)
            with quiet:
                await trio.sleep_forever()
            nursery.cancel_scope.cancel()

    async def _interactive(self, session: Session, interrupt: cli.Interrupt) -> None:
        editor = LineEditor()
        with editor.output_above():
            try:
                await self._talk(session, editor)
            except Interrupted:  # Ctrl-C at the prompt: the same as SIGINT elsewhere
                interrupt.fire()
                await trio.lowlevel.checkpoint()

    async def _talk(self, session: Session, editor: LineEditor) -> None:
        interrupted = False
        async with trio.open_nursery() as nursery:

            async def show_incoming() -> None:
                try:
                    while True:
                        _say("< " + describe(await session.receive(), limit=_HEX_SHOWN))
                except ConnectionClosed:
                    nursery.cancel_scope.cancel()

            nursery.start_soon(show_incoming)
            shown = _Shown(session.latency)
            nursery.start_soon(_show_latency, session, shown)
            try:
                while (line := await editor.readline()) is not None:
                    if line.startswith("/") and not line.startswith("//"):
                        if not await _command(session, nursery, line, shown):
                            break
                    elif line:
                        await session.send(line.removeprefix("/"))
            except ConnectionClosed:
                pass
            except Interrupted:
                interrupted = True  # raised again below, outside the nursery (no group)
            nursery.cancel_scope.cancel()
        if interrupted:
            raise Interrupted


class _Shown:
    """The round trip printed last, so a /ping's is not printed again as the heartbeat's."""

    def __init__(self, latency: float | None) -> None:
        self.latency = latency


async def _command(session: Session, nursery: trio.Nursery, line: str, shown: _Shown) -> bool:
    """Run one slash command; False when the session is over."""
    name, _, rest = line.partition(" ")
    if name in ("/quit", "/close"):
        code_text, _, reason = rest.strip().partition(" ")
        try:
            code, reason = check_close(int(code_text or 1000), reason.strip())
        except ValueError as exc:
            _say(f"! {exc}" if code_text.isdigit() else f"! not a close code: {code_text}")
            return True
        await session.close(code, reason)
        return False
    if name == "/ping":
        nursery.start_soon(_ping, session, shown)
    elif name == "/bin":
        try:
            await session.send(bytes.fromhex(rest))
        except ValueError:
            _say("! /bin wants hex digits, e.g. /bin 01 ff")
    elif name == "/help":
        _say(_HELP)
    else:
        _say(f"! unknown command {name}; /help lists them")
    return True


async def _show_latency(session: Session, shown: _Shown) -> None:
    # Session has no "heartbeat measured" event, so look at its latency often.
    while True:
        await trio.sleep(0.2)
        if session.latency is not None and session.latency != shown.latency:
            shown.latency = session.latency
            _say(f"· ping {cli.format_ms(shown.latency)}")


async def _ping(session: Session, shown: _Shown) -> None:
    """A ping outside the heartbeat, with its round trip (printed once)."""
    try:
        with trio.fail_after(10):
            rtt = await session.ping()
            shown.latency = rtt
    except ConnectionClosed:
        return  # the close line will say how
    except trio.TooSlowError:
        _say("! no pong within 10 s")
        return
    _say(f"· ping {cli.format_ms(rtt)} (/ping)")


def describe(message: Message, limit: int | None = None) -> str:
    """A message as one printable string: text as is, binary as its size and hex."""
    if isinstance(message, bytes):
        shown = message if limit is None else message[:limit]
        more = "…" if len(shown) < len(message) else ""
        return f"[binary {len(message)} bytes] {shown.hex(' ')}{more}".rstrip()
    if not message.isprintable():  # a server must not drive the terminal
        message = "".join(
            c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode()
            for c in message
        )
    return message.replace("\n", "\n  ")  # continuation lines under the "< "


def _say(line: str, stream: TextIO | None = None) -> None:
    print(line, file=stream or sys.stdout, flush=True)


def _write_raw(message: Message) -> None:
    """Pipe mode: one message per line on stdout, text as UTF-8 and unescaped."""
    if isinstance(message, bytes):
        data = describe(message).encode()
    else:
        data = message.encode("utf-8", "surrogatepass")
    try:
        sys.stdout.buffer.write(data + b"\n")
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit then finds no broken pipe
        raise
