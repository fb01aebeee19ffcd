"""Routes: which handler serves which path, and what it accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from .._conn.config import Config
from .._conn.session import Handler

MessageKind = Literal["any", "text", "binary"]


@attrs.frozen
class Route:
    """A WebSocket endpoint: its handler, the message kind it takes, its subprotocols.

    A route declared ``accepts="text"`` (or ``"binary"``) closes with 1003 when
    the peer sends the other kind. ``subprotocols`` lists what the route speaks,
    in order of preference of the client's offer.
    """

    handler: Handler
    accepts: MessageKind = attrs.field(
        default="any", validator=attrs.validators.in_(("any", "text", "binary"))
    )
    subprotocols: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    #: permessage-deflate on this route: ``"deflate"``, None (off), or ``"config"`` (follow
    #: ``Config.compression``).
    compression: Literal["deflate", "config"] | None = attrs.field(
        default="config", validator=attrs.validators.in_(("deflate", "config", None))
    )

    def compresses(self, config: Config) -> bool:
        """Whether this route accepts permessage-deflate under ``config``."""
        wanted = config.compression if self.compression == "config" else self.compression
        return wanted == "deflate"

    @property
    def accepted_type(self) -> type[str] | type[bytes] | None:
        return {"any": None, "text": str, "binary": bytes}[self.accepts]

    def choose_subprotocol(self, offered: tuple[str, ...]) -> str | None:
        """The first subprotocol the client offers that this route speaks."""
        for name in offered:
            if name in self.subprotocols:
                return name
        return None


def _to_bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


@attrs.frozen
class Static:
    """Plain HTTP content served at a path (GET and HEAD), e.g. a browser page."""

    body: bytes = attrs.field(converter=_to_bytes)
    content_type: str = "text/html; charset=utf-8"


Routes = Mapping[str, Handler | Route | Static]

#: Paths the server answers itself.
BUILTIN_PATHS = frozenset({"/healthz", "/metrics"})


@attrs.frozen
class RouteTable:
    """Routes resolved by path: WebSocket endpoints and static content."""

    sockets: Mapping[str, Route]
    statics: Mapping[str, Static]

    def knows(self, path: str) -> bool:
        """True if something (an endpoint, content, or wstrio itself) answers at ``path``."""
        return path in self.sockets or path in self.statics or path in BUILTIN_PATHS


def resolve_routes(routes: Routes) -> RouteTable:
    """Split routes into WebSocket routes and static content; refuse malformed ones."""
    sockets: dict[str, Route] = {}
    statics: dict[str, Static] = {}
    for path, target in routes.items():
        if not isinstance(path, str) or not path.startswith("/") or "?" in path:
            raise ValueError(f"route path must start with '/' and have no query: {path!r}")
        if path in BUILTIN_PATHS:
            raise ValueError(f"{path} is served by wstrio itself")
        if isinstance(target, Static):
            statics[path] = target
        elif isinstance(target, Route):
            sockets[path] = target
        elif callable(target):
            sockets[path] = Route(target)
        else:
            raise TypeError(f"route {path!r} must map to a handler, Route or Static: {target!r}")
    return RouteTable(sockets, statics)
