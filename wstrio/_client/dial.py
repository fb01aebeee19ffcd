"""Where a client connects and how: URLs, options, and opening the byte stream."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import attrs
import trio

from .._conn.config import Config
from .._conn.errors import ConnectError, HandshakeTimeout, leaves

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]


@attrs.frozen
class Target:
    """Where a ``ws://`` or ``wss://`` URL points."""

    url: str
    secure: bool
    host: str
    port: int
    resource: str  # path and query, sent in the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.secure else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """Split a WebSocket URL; ValueError for anything but ``ws://`` and ``wss://``."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"a WebSocket URL is ws://host[:port]/path or wss://...: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, secure, parts.hostname, port, resource)


Opener = Callable[[Target], Awaitable[trio.abc.Stream]]


@attrs.frozen
class Options:
    """Everything ``connect`` needs besides the URL."""

    config: Config = attrs.field(factory=Config)
    subprotocols: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    ssl_context: ssl.SSLContext | None = None
    opener: Opener | None = None
    quiet: bool = False  # ``async for`` ends quietly whatever the close code (reconnecting)


def make_options(
    config: Config,
    subprotocols: Iterable[str],
    headers: HeadersLike | None,
    ssl_context: ssl.SSLContext | None,
    opener: Opener | None,
    *,
    quiet: bool = False,
) -> Options:
    """The options of one ``connect`` or ``reconnecting`` call, headers as string pairs."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    strings = tuple((str(k), str(v)) for k, v in pairs)
    return Options(config, tuple(subprotocols), strings, ssl_context, opener, quiet)


async def open_stream(target: Target, ssl_context: ssl.SSLContext | None) -> trio.abc.Stream:
    """TCP to the target, with TLS on top for ``wss://``."""
    stream: trio.abc.Stream = await trio.open_tcp_stream(target.host, target.port)
    if target.secure:
        context = ssl_context if ssl_context is not None else ssl.create_default_context()
        tls = trio.SSLStream(stream, context, server_hostname=target.host)
        try:
            await tls.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        stream = tls
    return stream


def unreachable_error(target: Target, exc: BaseException) -> ConnectError:
    """A one-line ConnectError; trio's "all attempts failed" hides the errno in its cause."""
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "errno", None) is None:
        inner = cause.__cause__
        if isinstance(inner, BaseExceptionGroup):
            inner = next(iter(leaves(inner)), None)
        cause = inner
    found = cause if cause is not None else exc
    errno = getattr(found, "errno", None)
    detail = getattr(found, "strerror", None) or str(found) or type(found).__name__
    message = f"cannot connect to {target.url}: {detail}"
    return ConnectError(message) if errno is None else ConnectError(errno, message)


def timeout_error(target: Target, config: Config) -> HandshakeTimeout:
    return HandshakeTimeout(
        f"connecting to {target.url} took longer than {config.handshake_timeout} s"
    )
