"""``wstrio serve [APP]``: the page, echo and chat (or the application ``module:attr``) on
one port, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import errno
import functools
import socket
import ssl
import sys
from typing import Any

import attrs
import trio

from .._apps.chat import Chat
from .._apps.echo import default_routes
from .._bus.outage import BusUnavailable
from .._bus.redis import RedisBus
from .._conn.config import ENGINES, Config, default_ping_timeout
from .._conn.errors import one_of
from .._rooms.hub import POLICIES, Hub
from .._run import serve_until_signalled
from .._server import Server
from .._workers.entry import run_pool
from .._workers.pool import WorkersFailed
from .._workers.worker import Worker, serve_worker
from . import logs
from .app import AppError, build_app, find_app
from .bus import bus_of, carrying
from .common import DEFAULTS, HelpFormatter, fail, log_level, port_number, seconds_or_off
from .logs import FORMATS

_DESCRIPTION = """\
Serve WebSockets and HTTP on one port until Ctrl-C or SIGTERM, then close every
session with 1001 and exit 0. Without APP: the browser page at /, an echo at
/ws/echo and a chat at /ws/chat?room=NAME&name=YOU. With APP (module:attribute):
your routes mapping, or a function returning routes or a wstrio.Server.

With --workers N, N processes serve the port (each /healthz says which one
answered); one that dies is restarted, and SIGHUP restarts them one by one, the
old ones closing their sessions with 1012 while the new ones already accept.

examples:
  python -m wstrio serve --port 8000
  python -m wstrio serve myapp:routes --host 0.0.0.0 --port 8000 --workers 4
  python -m wstrio serve --certfile cert.pem --keyfile key.pem
"""

_SECONDS = (
    "ping_interval",
    "ping_timeout",
    "close_timeout",
    "write_timeout",
    "handshake_timeout",
    "shutdown_timeout",
    "frame_timeout",
    "tcp_keepalive",
)
_SIZES = (
    "inbox_size",
    "outbox_size",
    "max_message_size",
    "receive_buffer_size",
    "socket_send_buffer",
    "max_header_bytes",
    "max_body_size",
    "max_connections",
    "max_connections_per_ip",
    "max_messages_per_second",
    "message_burst",
    "broadcast_backlog",
    "compression_window_bits",
    "compression_memory_level",
    "compression_level",
    "compression_threshold",
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command and its options."""
    serve_cmd = commands.add_parser(
        "serve",
        help="serve the browser page, echo and chat, or your app (the default command)",
        description=_DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    serve_cmd.add_argument(
        "app",
        nargs="?",
        metavar="APP",
        help="module:attribute naming your routes mapping, a wstrio.Server, or a function"
        " returning one (called with the Config if it takes an argument); default: the page,"
        " /ws/echo and /ws/chat",
    )
    serve_cmd.add_argument(
        "--app-dir", default=".", help="directory put first on sys.path to import APP from"
    )
    serve_cmd.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve_cmd.add_argument(
        "--port", type=port_number, default=7777, help="port to listen on (0: any free port)"
    )
    serve_cmd.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        metavar="N",
        help="processes serving the port; with N > 1 this one supervises them: restarts one"
        " that dies, SIGHUP restarts them one by one (their sessions get 1012)",
    )
    serve_cmd.add_argument(
        "--redis",
        metavar="URL",
        help="share the chat's rooms, member lists and history with every server using this"
        " Redis (redis://host:port/db, rediss://..., unix:///path/redis.sock; needs the redis"
        " extra)",
    )
    serve_cmd.add_argument(
        "--redis-optional",
        action="store_true",
        help="start even if Redis is unreachable (rooms stay local until it is back)",
    )
    serve_cmd.add_argument("--certfile", help="PEM certificate chain: serve wss:// and https://")
    serve_cmd.add_argument("--keyfile", help="PEM private key (default: in --certfile)")
    serve_cmd.add_argument("--log-level", type=log_level, default="INFO", help="logging level")
    serve_cmd.add_argument(
        "--log-format",
        choices=FORMATS,
        default="text",
        help="text lines, or one JSON object per line with the connection's fields",
    )
    serve_cmd.add_argument(
        "--allowed-origin",
        action="append",
        metavar="ORIGIN",
        help="browser origin allowed to connect (repeatable; '*' for any; default: same origin)",
    )
    serve_cmd.add_argument(
        "--no-dashboard",
        dest="dashboard",
        action="store_false",
        help="do not serve /dashboard (live plots of the server's figures)",
    )
    serve_cmd.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDRESS",
        help="proxy address or network whose X-Forwarded-For/Forwarded headers are believed"
        " (repeatable; default: none)",
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
    serve_cmd.add_argument(
        "--chat-history",
        type=int,
        default=100,
        metavar="N",
        help="messages each chat room keeps for members that come back with ?since=<id>",
    )
    serve_cmd.add_argument(
        "--engine",
        choices=ENGINES,
        default=DEFAULTS.engine,
        help="the WebSocket engine: wstrio's own, or trio-websocket",
    )
    serve_cmd.add_argument(
        "--compression",
        choices=("deflate", "off"),
        default=DEFAULTS.compression or "off",
        help="permessage-deflate (native engine only)",
    )
    serve_cmd.add_argument(
        "--rate-limit-policy",
        choices=("close", "drop"),
        default=DEFAULTS.rate_limit_policy,
        help="past --max-messages-per-second: close with 1008 'rate limit', or drop and count",
    )
    serve_cmd.add_argument(
        "--no-compression-context-takeover",
        dest="compression_context_takeover",
        action="store_false",
        help="compress each message on its own (rooms then share one compressed frame)",
    )
    for name in _SECONDS + _SIZES:
        kind: Any = float if name in _SECONDS else int
        default: Any = getattr(DEFAULTS, name)
        extra = ""
        if name == "ping_interval":
            kind, extra = seconds_or_off, "; 0 or 'off': no heartbeat"
        elif name in ("frame_timeout", "tcp_keepalive"):
            kind, extra = seconds_or_off, "; 0 or 'off': none"
        elif name == "max_messages_per_second":
            kind = float
        elif name == "ping_timeout":  # follows a smaller --ping-interval unless given
            default, extra = None, f" (default: {DEFAULTS.ping_timeout} or --ping-interval)"
        serve_cmd.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=default,
            help=f"Config.{name}" + (" in seconds" if name in _SECONDS else "") + extra,
        )


def _worker_count(text: str) -> int:
    """An argparse type: a number of worker processes, 1 or more."""
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a number of processes, 1 or more, not {text!r}")
    return int(text)


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.certfile, args.keyfile)
    return context


def _chat(args: argparse.Namespace, bus: RedisBus | None) -> Chat:
    hub = Hub(policy=args.slow_consumer, bus=bus)
    return Chat(hub, max_text=args.chat_max_text, history=args.chat_history)


def _announce(args: argparse.Namespace, port: int, tls: bool, dashboard: bool) -> None:
    """Print where the server listens (what users and tests read first)."""
    scheme, web = ("wss", "https") if tls else ("ws", "http")
    base = f"{args.host}:{port}" if ":" not in args.host else f"[{args.host}]:{port}"
    if args.app is None:
        print(f"wstrio listening on {scheme}://{base}/ws/echo", flush=True)
        print(f"open {web}://{base}/ for the echo and chat page", flush=True)
    else:
        print(f"wstrio serving {args.app} on {web}://{base}/", flush=True)
    if dashboard:
        print(f"live figures at {web}://{base}/dashboard", flush=True)


def _server(args: argparse.Namespace, config: Config, found: object) -> Server:
    app = found if args.app is None else build_app(found, args.app, config)
    return app if isinstance(app, Server) else Server(app, config=config)  # type: ignore[arg-type]


async def _serve(
    args: argparse.Namespace,
    config: Config,
    tls: ssl.SSLContext | None,
    found: object,
    bus: RedisBus | None,
) -> None:
    server = _server(args, config, found)
    serve = functools.partial(
        serve_until_signalled, server, host=args.host, port=args.port, ssl_context=tls
    )
    try:
        async with carrying(bus, server), trio.open_nursery() as nursery:  # until a signal
            port = await nursery.start(serve)
            dashboard = config.dashboard and not isinstance(found, Server)
            _announce(args, port, tls is not None, dashboard)
    except BaseExceptionGroup as group:  # a failure to bind: one OSError, unwrapped
        raise one_of(group) from None


Prepared = tuple[Config, "ssl.SSLContext | None", object, "RedisBus | None"]


def _prepare(args: argparse.Namespace) -> Prepared | int:
    """The Config, TLS context, application and bus the options name; or a usage error's
    status."""
    try:
        fields = {n: getattr(args, n) for n in _SECONDS + _SIZES}
        fields["engine"] = args.engine
        fields["compression"] = None if args.compression == "off" else args.compression
        fields["compression_context_takeover"] = args.compression_context_takeover
        fields["rate_limit_policy"] = args.rate_limit_policy
        if fields["ping_timeout"] is None:
            fields["ping_timeout"] = default_ping_timeout(fields["ping_interval"])
        fields["dashboard"] = args.dashboard
        if args.trusted_proxy:
            fields["trusted_proxies"] = tuple(args.trusted_proxy)
        if args.allowed_origin:
            fields["allowed_origins"] = "*" if "*" in args.allowed_origin else args.allowed_origin
        config = attrs.evolve(DEFAULTS, **fields)
        bus = bus_of(args)
    except ValueError as exc:
        return fail(str(exc), 2)
    try:
        tls = _ssl_context(args)
    except (OSError, ssl.SSLError) as exc:
        return fail(f"cannot load the certificate: {exc}", 2)
    try:
        if args.app is None:
            app: object = default_routes(_chat(args, bus))
        else:
            app = find_app(args.app, args.app_dir)
    except AppError as exc:
        return fail(str(exc), 2)
    except ValueError as exc:  # Chat's limits
        return fail(str(exc), 2)
    return config, tls, app, bus


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; the exit status."""
    prepared = _prepare(args)
    if isinstance(prepared, int):
        return prepared
    config, tls, app, bus = prepared
    try:
        if args.workers > 1:
            return _run_workers(args, config, tls is not None, app)
        trio.run(_serve, args, config, tls, app, bus)
    except AppError as exc:
        return fail(str(exc), 2)
    except BusUnavailable as exc:  # before OSError: it is a ConnectionError
        return fail(f"{exc} (start it, fix --redis, or add --redis-optional)", 1)
    except WorkersFailed as exc:
        return fail(str(exc), 1)
    except socket.gaierror as exc:
        where = f"{args.host}:{args.port}: {args.host!r}"
        return fail(f"cannot listen on {where} is not an address or host name of this"
                    f" machine ({exc.strerror})", 2)  # fmt: skip
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = " (another server is using it: stop it, or pick another --port)"
        elif exc.errno == errno.EACCES:
            hint = " (ports below 1024 need privileges: pick a --port above 1023)"
        return fail(f"cannot listen on {args.host}:{args.port}: {reason}{hint}", 1)
    return 0


def _run_workers(args: argparse.Namespace, config: Config, tls: bool, found: object) -> int:
    """Bind the port here, run ``args.workers`` processes on it, supervise them."""
    dashboard = config.dashboard and not isinstance(found, Server)

    def started(sockets: tuple[socket.socket, ...]) -> None:
        _announce(args, sockets[0].getsockname()[1], tls, dashboard)

    target = functools.partial(_worker, args)
    run_pool(target, host=args.host, port=args.port, workers=args.workers, config=config,
             started=started)  # fmt: skip
    return 0


def _worker(args: argparse.Namespace, worker: Worker) -> None:
    """A worker process of ``serve --workers N``: the same options, served on the parent's
    sockets until the parent says stop."""
    logs.configure(args.log_level, args.log_format)
    prepared = _prepare(args)
    if isinstance(prepared, int):
        sys.exit(prepared)
    config, tls, found, bus = prepared

    async def main() -> None:
        server = _server(args, config, found)
        async with carrying(bus, server):
            await serve_worker(server, worker, ssl_context=tls)

    try:
        trio.run(main)
    except AppError as exc:
        sys.exit(fail(str(exc), 2))
    except BusUnavailable as exc:
        sys.exit(fail(f"{exc} (start it, fix --redis, or add --redis-optional)", 1))
