"""``python -m wstrio``: the command line.

``serve`` (the default) lives here, with what ``client`` and ``bench`` share:
the connection options, Ctrl-C handling and one-line errors. Those two
commands live in ``_cli_client`` and ``_cli_bench``, imported only when used.
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from ._apps import default_routes
from ._chat import Chat
from ._config import Config
from ._dial import parse_url
from ._hub import POLICIES, Hub
from ._server import serve

_DEFAULTS = Config()
_SECONDS = (
    "ping_interval",
    "ping_timeout",
    "close_timeout",
    "write_timeout",
    "handshake_timeout",
    "shutdown_timeout",
)
_SIZES = (
    "inbox_size",
    "outbox_size",
    "max_message_size",
    "receive_buffer_size",
    "socket_send_buffer",
    "max_header_bytes",
    "max_connections",
    "broadcast_backlog",
)


def _parser() -> argparse.ArgumentParser:
    from . import _cli_bench, _cli_client

    parser = argparse.ArgumentParser(
        prog="wstrio", description="WebSocket server, client and load generator for Trio."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_cmd = commands.add_parser(
        "serve",
        help="serve the browser page, echo and chat (the default command)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve_cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve_cmd.add_argument("--port", type=int, default=7777, help="port to listen on (0: any)")
    serve_cmd.add_argument("--certfile", help="PEM certificate chain: serve wss:// and https://")
    serve_cmd.add_argument("--keyfile", help="PEM private key (default: in --certfile)")
    serve_cmd.add_argument("--log-level", default="INFO", help="logging level")
    serve_cmd.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="browser origin allowed to connect (repeatable; '*' for any; default: same origin)",
    )
    serve_cmd.add_argument(
        "--slow-consumer",
        choices=POLICIES,
        default="close",
        help="what a chat room does to a member whose outbox is full",
    )
    serve_cmd.add_argument(
        "--chat-max-text", type=int, default=1000, help="longest chat message, in characters"
    )
    for name in _SECONDS + _SIZES:
        kind: Any = float if name in _SECONDS else int
        default: Any = getattr(_DEFAULTS, name)
        extra = ""
        if name == "ping_interval":
            kind, extra = _seconds_or_off, "; 0 or 'off': no heartbeat"
        elif name == "ping_timeout":  # follows a smaller --ping-interval unless given
            default, extra = None, f" (default: {_DEFAULTS.ping_timeout} or --ping-interval)"
        serve_cmd.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=default,
            help=f"Config.{name}" + (" in seconds" if name in _SECONDS else "") + extra,
        )
    _cli_client.add_parser(commands)
    _cli_bench.add_parser(commands)
    return parser


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.certfile, args.keyfile)
    return context


def _chat(args: argparse.Namespace) -> Chat:
    return Chat(Hub(policy=args.slow_consumer), max_text=args.chat_max_text)


async def _serve(args: argparse.Namespace, config: Config, tls: ssl.SSLContext | None) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                functools.partial(
                    serve,
                    default_routes(_chat(args)),
                    host=args.host,
                    port=args.port,
                    config=config,
                    ssl_context=tls,
                )
            )
            scheme = "wss" if tls else "ws"
            print(f"wstrio listening on {scheme}://{args.host}:{port}/ws/echo", flush=True)
            web = "https" if tls else "http"
            print(f"open {web}://{args.host}:{port}/ for the echo and chat page", flush=True)
            async for signum in signals:
                logging.getLogger("wstrio").info("%s: shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "serve")
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command in ("client", "bench"):
        from . import _cli_bench, _cli_client

        command = _cli_client.run if args.command == "client" else _cli_bench.run
        try:
            return command(args)
        except KeyboardInterrupt:  # before Trio took over SIGINT
            return 130
        except Exception as exc:  # a bug: one line, with the details in the debug log
            logging.getLogger("wstrio").debug("%s failed", args.command, exc_info=exc)
            return fail(f"unexpected error (a bug in wstrio, please report it): {exc!r}", 1)
    try:
        fields = {n: getattr(args, n) for n in _SECONDS + _SIZES}
        if fields["ping_timeout"] is None:
            interval = fields["ping_interval"] or _DEFAULTS.ping_timeout
            fields["ping_timeout"] = min(_DEFAULTS.ping_timeout, interval)
        if args.allowed_origin:
            fields["allowed_origins"] = "*" if "*" in args.allowed_origin else args.allowed_origin
        config = attrs.evolve(_DEFAULTS, **fields)
    except ValueError as exc:
        print(f"wstrio: {exc}", file=sys.stderr)
        return 2
    try:
        tls = _ssl_context(args)
    except (OSError, ssl.SSLError) as exc:
        print(f"wstrio: cannot load the certificate: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(_serve, args, config, tls)
    except OSError as exc:
        print(f"wstrio: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


# -- shared by ``client`` and ``bench`` ---------------------------------------------------
class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option (unless there is none to show); the
    description's paragraphs kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


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


def _seconds_or_off(text: str) -> float | None:
    return None if text.lower() in ("0", "off", "none") else seconds(text)


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or any(c.isspace() for c in name.strip()):
        raise argparse.ArgumentTypeError(f"a header is NAME:VALUE, not {text!r}")
    return name.strip(), value.strip()


def add_connection_options(parser: argparse.ArgumentParser, *, session: bool) -> None:
    """Options for opening WebSockets; ``session`` adds heartbeat and size options."""
    add = parser.add_argument
    add("--header", action="append", type=_header, metavar="NAME:VALUE",
        help="send this request header (repeatable)")
    add("--subprotocol", action="append", metavar="NAME",
        help="offer this subprotocol (repeatable, most preferred first)")
    add("--cafile", metavar="PEM",
        help="wss://: trust the CA certificates in this file (default: the system's)")
    add("--insecure", action="store_true",
        help="wss://: do not verify the server's certificate or host name")
    add("--handshake-timeout", type=seconds, default=_DEFAULTS.handshake_timeout,
        metavar="SECONDS", help="time to connect and finish the opening handshake")
    if session:
        add("--ping-interval", type=_seconds_or_off, default=_DEFAULTS.ping_interval,
            metavar="SECONDS", help="time between heartbeat pings; 0 or 'off': no heartbeat")
        add("--ping-timeout", type=seconds, default=argparse.SUPPRESS, metavar="SECONDS",
            help="time a pong may take before the connection fails with 1011 "
            f"(default: {_DEFAULTS.ping_timeout}, or --ping-interval if that is smaller)")
        add("--close-timeout", type=seconds, default=_DEFAULTS.close_timeout,
            metavar="SECONDS", help="time the close handshake may take before TCP is dropped")
        add("--max-message-size", type=int, default=_DEFAULTS.max_message_size,
            metavar="BYTES", help="larger incoming messages close the connection with 1009")


def connection_kwargs(args: argparse.Namespace, **config: Any) -> dict[str, Any]:
    """Keyword arguments for ``wstrio.connect``; ValueError for nonsense."""
    parse_url(args.url)
    fields: dict[str, Any] = {"handshake_timeout": args.handshake_timeout, **config}
    if hasattr(args, "ping_interval"):
        interval = args.ping_interval
        timeout = getattr(args, "ping_timeout", None)
        if timeout is None:
            timeout = min(_DEFAULTS.ping_timeout, interval or _DEFAULTS.ping_timeout)
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
        "config": attrs.evolve(_DEFAULTS, **fields),
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
