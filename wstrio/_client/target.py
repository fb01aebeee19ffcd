"""Where a ``ws://`` or ``wss://`` URL points: :class:`Target`."""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs


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
    try:
        given = parts.port
    except ValueError:
        raise ValueError(f"the port in {url!r} is not a number from 1 to 65535") from None
    if given == 0:
        raise ValueError(f"the port in {url!r} is not a number from 1 to 65535")
    port = given or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, secure, parts.hostname, port, resource)
