"""Where a client connects and how: URLs, options, and opening the byte stream."""

from __future__ import annotations

import errno as errnos
import os
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
    """A one-line ConnectError naming the URL once, what failed, and the likely fix; trio's
    "all attempts failed" hides the errno in its cause."""
    found: BaseException = exc
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError) or getattr(cause, "errno", None) is not None:
            found = cause
            break
        inner = cause.__cause__ or cause.__context__
        if isinstance(inner, BaseExceptionGroup):
            inner = next(iter(leaves(inner)), None)
        cause = inner
    if isinstance(found, ssl.SSLError):
        return ConnectError(f"TLS with {target.url} failed: {_tls_hint(found)}")
    errno = getattr(found, "errno", None)
    if isinstance(errno, int):
        detail = os.strerror(errno).lower()
        hint = _ERRNO_HINTS.get(errno, "")
        return ConnectError(errno, f"cannot connect to {target.url}: {detail}{hint}")
    detail = str(found) or type(found).__name__
    return ConnectError(f"cannot connect to {target.url}: {detail}")


_ERRNO_HINTS = {
    errnos.ECONNREFUSED: " (is the server running, on this port?)",
    errnos.ETIMEDOUT: " (a firewall, or the wrong address?)",
    errnos.EHOSTUNREACH: " (is the address right, and the network up?)",
}


def _tls_hint(exc: ssl.SSLError) -> str:
    reason = (exc.reason or "").upper()
    if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
        return "the server does not speak TLS on this port (try ws:// instead of wss://)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or "certificate verify failed"
        return (
            f"the server's certificate is not trusted: {detail} (give ssl_context= a context"
            " that trusts its CA, or --cafile on the command line)"
        )
    return str(exc.reason or exc).lower().replace("_", " ")


def timeout_error(target: Target, config: Config) -> HandshakeTimeout:
    return HandshakeTimeout(
        f"connecting to {target.url} took longer than {config.handshake_timeout} s"
    )
