"""Reaching a WebSocket server through a proxy: HTTP ``CONNECT`` or SOCKS5.

Theory of operation: which proxy, if any, is decided per connection from the
``proxy`` argument: a URL, None (no proxy), or True (the default: the
environment, as curl and the ``websockets`` package read it: ``https_proxy``
for ``wss://``, ``http_proxy`` for ``ws://``, then ``all_proxy``, unless
``no_proxy`` names the host). An ``http://`` proxy is asked for a tunnel with
``CONNECT host:port`` (RFC 9110 9.3.6), read with h11, with ``Basic``
credentials from the URL's user info; a ``socks5://`` (``socks5h://``: names
resolved by the proxy) or ``socks4://`` proxy is spoken to by the
``python-socks`` package, an optional extra (``pip install wstrio[socks]``). TLS
for ``wss://`` then runs inside the tunnel, with the server's name. A proxy
that refuses, or cannot be reached, is a :class:`ConnectError` that names it
(without its password).
"""

from __future__ import annotations

import base64
import urllib.request
from typing import Literal
from urllib.parse import unquote, urlsplit

import attrs
import h11
import trio

from .._conn.errors import ConnectError
from .target import Target

ProxyArg = str | Literal[True] | None
_SOCKS = ("socks5", "socks5h", "socks4", "socks4a")


@attrs.frozen
class Proxy:
    """A proxy to tunnel through: ``scheme`` (``http``, ``socks5``...), host, port, creds."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @property
    def shown(self) -> str:
        """The proxy's URL for messages: no password."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"

    @property
    def url(self) -> str:
        return urllib.parse.urlunsplit((self.scheme, self._netloc(), "", "", ""))

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.username is None:
            return f"{host}:{self.port}"
        quote = urllib.parse.quote
        secret = "" if self.password is None else ":" + quote(self.password, safe="")
        return f"{quote(self.username, safe='')}{secret}@{host}:{self.port}"


def _redacted(url: str) -> str:
    """``url`` without the password in its user info, for messages."""
    scheme, sep, rest = url.rpartition("://")
    auth, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}{sep}{auth.partition(':')[0]}:***@{host}"


def parse_proxy(url: str) -> Proxy:
    """``http://[user:password@]host[:port]``, ``socks5://...``; ValueError otherwise (the
    message never shows the password)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    shown = repr(_redacted(url))
    scheme = parts.scheme.lower()
    if scheme not in ("http", *_SOCKS):
        raise ValueError(f"proxy must be http://, socks5://, socks5h:// or socks4://: {shown}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"proxy port out of range: {shown}") from None
    if not parts.hostname:
        raise ValueError(f"proxy has no host: {shown}")
    default = 8080 if scheme == "http" else 1080
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(scheme, parts.hostname, port or default, user, password)


def choose_proxy(target: Target, proxy: ProxyArg) -> Proxy | None:
    """The proxy for ``target``: the one given, none, or the environment's (``proxy=True``)."""
    if proxy is None:
        return None
    if proxy is not True:
        return parse_proxy(proxy)
    found = urllib.request.getproxies_environment()
    no_proxy = found.get("no")
    if no_proxy and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
        f"{target.host}:{target.port}", {"no": no_proxy}
    ):
        return None
    name = "https" if target.secure else "http"
    url = found.get(name) or found.get("all")
    if not url:
        return None
    try:
        return parse_proxy(url)
    except ValueError as exc:
        variable = f"{name}_proxy" if found.get(name) else "all_proxy"
        raise ConnectError(f"the proxy that {variable} names is not usable: {exc}") from None


async def open_tunnel(proxy: Proxy, target: Target) -> trio.abc.Stream:
    """A byte stream to ``target`` through ``proxy``; ConnectError naming the proxy."""
    if proxy.scheme in _SOCKS:
        return await _socks(proxy, target)
    try:
        stream = await trio.open_tcp_stream(proxy.host, proxy.port)
    except OSError as exc:
        raise ConnectError(
            exc.errno, f"cannot reach the proxy {proxy.shown}: {exc.strerror or exc}"
        ) from None
    try:
        await _connect_request(stream, proxy, target)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def _connect_request(stream: trio.abc.Stream, proxy: Proxy, target: Target) -> None:
    host = f"[{target.host}]" if ":" in target.host else target.host
    authority = f"{host}:{target.port}"
    headers = [("Host", authority)]
    if proxy.username is not None:
        pair = f"{proxy.username}:{proxy.password or ''}".encode()
        headers.append(("Proxy-Authorization", "Basic " + base64.b64encode(pair).decode()))
    conn = h11.Connection(h11.CLIENT)
    await stream.send_all(
        conn.send(h11.Request(method="CONNECT", target=authority, headers=headers)) or b""
    )
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise ConnectError(
                f"the proxy {proxy.shown} answered CONNECT with garbage: {exc}"
            ) from None
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data:
                raise ConnectError(f"the proxy {proxy.shown} closed the connection during CONNECT")
            conn.receive_data(bytes(data))
            continue
        if isinstance(event, h11.Response):
            if 200 <= event.status_code < 300:
                return
            reason = event.reason.decode("latin-1", "replace")
            hint = (
                " (check the user and password in the proxy URL)"
                if event.status_code == 407
                else ""
            )
            raise ConnectError(
                f"the proxy {proxy.shown} refused to connect to {authority}:"
                f" {event.status_code} {reason}{hint}"
            )
        if isinstance(event, h11.ConnectionClosed):
            raise ConnectError(f"the proxy {proxy.shown} closed the connection during CONNECT")


async def _socks(proxy: Proxy, target: Target) -> trio.abc.Stream:
    try:
        from python_socks import ProxyError, ProxyTimeoutError
        from python_socks.async_.trio import Proxy as SocksProxy
    except ImportError:
        raise ConnectError(
            f"a {proxy.scheme}:// proxy needs the python-socks package: pip install 'wstrio[socks]'"
        ) from None
    rdns = proxy.scheme in ("socks5h", "socks4a")
    scheme = {"socks5h": "socks5", "socks4a": "socks4"}.get(proxy.scheme, proxy.scheme)
    socks = SocksProxy.from_url(attrs.evolve(proxy, scheme=scheme).url, rdns=rdns)
    try:
        sock = await socks.connect(target.host, target.port)
    except (ProxyError, ProxyTimeoutError) as exc:
        raise ConnectError(
            f"the proxy {proxy.shown} refused to connect to {target.host}:{target.port}: {exc}"
        ) from None
    except OSError as exc:
        raise ConnectError(
            exc.errno, f"cannot reach the proxy {proxy.shown}: {exc.strerror or exc}"
        ) from None
    return trio.SocketStream(sock)
