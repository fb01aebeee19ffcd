"""Routes: which handler serves which path, and what it accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from ._supervisor import Handler

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

    @property
    def accepted_type(self) -> type[str] | type[bytes] | None:
        return {"any": None, "text": str, "binary": bytes}[self.accepts]

    def choose_subprotocol(self, offered: tuple[str, ...]) -> str | None:
        """The first subprotocol the client offers that this route speaks."""
        for name in offered:
            if name in self.subprotocols:
                return name
        return None


Routes = Mapping[str, Handler | Route]


def resolve_routes(routes: Routes) -> dict[str, Route]:
    """Normalise a mapping of path to handler or Route; refuse malformed paths."""
    resolved: dict[str, Route] = {}
    for path, target in routes.items():
        if not isinstance(path, str) or not path.startswith("/") or "?" in path:
            raise ValueError(f"route path must start with '/' and have no query: {path!r}")
        if isinstance(target, Route):
            resolved[path] = target
        elif callable(target):
            resolved[path] = Route(target)
        else:
            raise TypeError(f"route {path!r} must map to a handler or a Route, not {target!r}")
    return resolved
