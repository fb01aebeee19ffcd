"""Where a client connects and how: URLs, options, and opening the byte stream."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping

import attrs
import trio

from .._conn.config import Config
from .._conn.errors import ConnectError, HandshakeTimeout, leaves
from .proxy import choose_proxy, open_tunnel, parse_proxy
from .target import Target, parse_url

__all__ = ["HeadersLike", "Opener", "Options", "Target", "make_options", "open_stream", "parse_url"]

HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]


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
    proxy: str | bool | None = True  # a URL, None, or True: from the environment


def make_options(
    config: Config,
    subprotocols: Iterable[str],
    headers: HeadersLike | None,
    ssl_context: ssl.SSLContext | None,
    opener: Opener | None,
    *,
    quiet: bool = False,
    proxy: str | bool | None = True,
) -> Options:
    """The options of one ``connect`` or ``reconnecting`` call, headers as string pairs;
    ValueError for a malformed proxy URL (checked here, before any connection)."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    strings = tuple((str(k), str(v)) for k, v in pairs)
    if isinstance(proxy, str):
        parse_proxy(proxy)
    elif proxy is not None and proxy is not True:
        raise ValueError(f"proxy is a URL, None (no proxy) or True (the environment's): {proxy!r}")
    return Options(config, tuple(subprotocols), strings, ssl_context, opener, quiet, proxy)


async def open_stream(
    target: Target, ssl_context: ssl.SSLContext | None, proxy: str | bool | None = None
) -> trio.abc.Stream:
    """TCP to the target (through ``proxy``: see ``proxy.py``), with TLS on top for
    ``wss://``."""
    via = choose_proxy(target, proxy)  # type: ignore[arg-type]
    stream: trio.abc.Stream
    if via is None:
        stream = await trio.open_tcp_stream(target.host, target.port)
    else:
        stream = await open_tunnel(via, target)
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
