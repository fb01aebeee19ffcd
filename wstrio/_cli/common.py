"""What the ``client`` and ``bench`` commands share: connection options, Ctrl-C, errors."""

from __future__ import annotations

import argparse
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import attrs
import trio

from .._client.dial import parse_url
from .._conn.config import ENGINES, Config, default_ping_timeout

DEFAULTS = Config()


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option (unless there is none to show); the
    description's paragraphs kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line: what is wrong, and where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def plain(docstring: str | None) -> str | None:
    """A module docstring as ``--help`` text: reStructuredText literals unquoted."""
    return docstring.replace("``", "") if docstring else None


def fail(message: str, status: int) -> int:
    """Print ``wstrio: message`` on stderr; return ``status``."""
    print(f"wstrio: {message}", file=sys.stderr, flush=True)
    return status


def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def seconds_or_off(text: str) -> float | None:
    return None if text.lower() in ("0", "off", "none") else seconds(text)


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0-65535 (the OS would silently change any other)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a port is a number from 0 to 65535, not {text!r}"
        ) from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535, not {port}")
    return port


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(text: str) -> str:
    """An argparse type: a logging level name, any case."""
    if text.upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a logging level: use one of {', '.join(LOG_LEVELS)}"
        )
    return text.upper()


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
        raise argparse.ArgumentTypeError(f"a header is NAME:VALUE, not {text!r}")
    return name.strip(), value.strip()


def add_connection_options(parser: argparse.ArgumentParser, *, session: bool) -> None:
    """Options for opening WebSockets; ``session`` adds heartbeat and size options."""
    add = parser.add_argument
    add(
        "--header",
        action="append",
        type=_header,
        metavar="NAME:VALUE",
        help="send this request header (repeatable)",
    )
    add(
        "--subprotocol",
        action="append",
        metavar="NAME",
        help="offer this subprotocol (repeatable, most preferred first)",
    )
    add(
        "--cafile",
        metavar="PEM",
        help="wss://: trust the CA certificates in this file (default: the system's)",
    )
    add(
        "--insecure",
        action="store_true",
        help="wss://: do not verify the server's certificate or host name",
    )
    add(
        "--handshake-timeout",
        type=seconds,
        default=DEFAULTS.handshake_timeout,
        metavar="SECONDS",
        help="time to connect and finish the opening handshake",
    )
    add(
        "--engine",
        choices=ENGINES,
        default=DEFAULTS.engine,
        help="the WebSocket engine: wstrio's own, or trio-websocket",
    )
    if session:
        add(
            "--ping-interval",
            type=seconds_or_off,
            default=DEFAULTS.ping_interval,
            metavar="SECONDS",
            help="time between heartbeat pings; 0 or 'off': no heartbeat",
        )
        add(
            "--ping-timeout",
            type=seconds,
            default=argparse.SUPPRESS,
            metavar="SECONDS",
            help="time a pong may take before the connection fails with 1011 "
            f"(default: {DEFAULTS.ping_timeout}, or --ping-interval if that is smaller)",
        )
        add(
            "--close-timeout",
            type=seconds,
            default=DEFAULTS.close_timeout,
            metavar="SECONDS",
            help="time the close handshake may take before TCP is dropped",
        )
        add(
            "--max-message-size",
            type=int,
            default=DEFAULTS.max_message_size,
            metavar="BYTES",
            help="larger incoming messages close the connection with 1009",
        )


def connection_kwargs(args: argparse.Namespace, **config: Any) -> dict[str, Any]:
    """Keyword arguments for ``wstrio.connect``; ValueError for nonsense."""
    parse_url(args.url)
    fields: dict[str, Any] = {
        "handshake_timeout": args.handshake_timeout,
        "engine": args.engine,
        **config,
    }
    if hasattr(args, "ping_interval"):
        interval = args.ping_interval
        timeout = getattr(args, "ping_timeout", None)
        if timeout is None:
            timeout = default_ping_timeout(interval)
        fields.update(
            ping_interval=interval,
            ping_timeout=timeout,
            close_timeout=args.close_timeout,
            max_message_size=args.max_message_size,
        )
    context = None
    if args.cafile or args.insecure:
        try:
            context = ssl.create_default_context(cafile=args.cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load --cafile {args.cafile}: {exc}") from None
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return {
        "config": attrs.evolve(DEFAULTS, **fields),
        "subprotocols": tuple(args.subprotocol or ()),
        "headers": tuple(args.header or ()),
        "ssl_context": context,
    }


def format_ms(seconds: float | None) -> str:
    """Seconds as milliseconds with sensible precision: ``0.41 ms``, ``12.3 ms``."""
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 1000 else f"{ms:,.0f} ms"


class Interrupt:
    """Ctrl-C (SIGINT) cancels the innermost :meth:`scope`; ``hit`` says it came."""

    def __init__(self) -> None:
        self.hit = False
        self._scope = trio.CancelScope()

    @contextmanager
    def scope(self) -> Iterator[trio.CancelScope]:
        with trio.CancelScope() as scope:
            previous, self._scope = self._scope, scope
            try:
                yield scope
            finally:
                self._scope = previous

    def fire(self) -> None:
        self.hit = True
        self._scope.cancel()


async def interruptible(main: Callable[[Interrupt], Awaitable[int]]) -> int:
    """Run ``main(interrupt)`` with Ctrl-C delivered to ``interrupt``; its result."""
    interrupt = Interrupt()
    with trio.open_signal_receiver(signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for _ in signals:
                    interrupt.fire()

            nursery.start_soon(watch)
            status = await main(interrupt)
            nursery.cancel_scope.cancel()
    return status
