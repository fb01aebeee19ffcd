"""Routes: which handler serves which path, checked when the server is built.

Theory of operation: a routes mapping turns into a :class:`RouteTable` once,
in ``Server(...)``: each key is compiled as a :class:`Pattern`, each value is
checked for its shape (a handler must be an ``async def`` taking one argument,
a hook one argument, an HTTP handler two), and two patterns that can match
the same path are refused, naming both. At run time :meth:`RouteTable.match`
finds the one route for a path, with its parameters. A :class:`StaticDir` is
the exception to "at most one": it is tried last, after every other route, so
it never shadows one; among directories the longest mount wins.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeAlias

import attrs

from .._conn.config import Config
from .._conn.request import Request
from .._conn.session import Handler
from .answers import Accept, Reject, Response
from .patterns import Pattern, overlap, split_path
from .staticdir import StaticDir

MessageKind = Literal["any", "text", "binary"]
HookResult: TypeAlias = Accept | Reject | None
#: A handshake hook: ``hook(request)``, plain or ``async def``.
Hook: TypeAlias = Callable[[Request], HookResult | Awaitable[HookResult]]
#: A plain HTTP handler: ``fn(request, body)``, plain or ``async def``.
HttpHandler: TypeAlias = Callable[[Request, bytes], Response | Awaitable[Response]]


def is_async_callable(fn: object) -> bool:
    """An ``async def`` function, method or ``functools.partial`` of one, or an object whose
    ``__call__`` is one."""
    if inspect.iscoroutinefunction(fn):
        return True
    if inspect.isroutine(fn) or not callable(fn):
        return False
    return inspect.iscoroutinefunction(type(fn).__call__)


def takes(fn: object, count: int) -> bool:
    """Whether ``fn`` can be called with ``count`` positional arguments (True if Python
    cannot tell, as for some built-ins)."""
    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def _check_callable(value: object, what: str, count: int, need_async: bool) -> None:
    if not callable(value):
        raise TypeError(f"{what} must be callable, not {type(value).__name__}")
    if need_async and not is_async_callable(value):
        raise TypeError(f"{what} must be an async def (a plain def would fail every connection)")
    if not takes(value, count):
        plural = "argument" if count == 1 else "arguments"
        raise TypeError(f"{what} must take {count} positional {plural}")


def _check_handler(instance: Route, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_callable(value, "a WebSocket handler", 1, need_async=True)


def _check_hook(instance: Route, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_callable(value, "on_handshake", 1, need_async=False)


@attrs.frozen
class Route:
    """A WebSocket endpoint: its handler, the message kind it takes, its subprotocols.

    A route declared ``accepts="text"`` (or ``"binary"``) closes with 1003 when
    the peer sends the other kind. ``subprotocols`` lists what the route speaks,
    in order of preference of the client's offer. ``on_handshake(request)``
    (plain or ``async def``) runs before the 101 and returns None (accept), an
    :class:`Accept` or a :class:`Reject`. TypeError at once for a handler that is
    not an ``async def`` taking one argument, or a hook that does not take one.
    """

    handler: Handler = attrs.field(validator=_check_handler)
    accepts: MessageKind = attrs.field(
        default="any", validator=attrs.validators.in_(("any", "text", "binary"))
    )
    subprotocols: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    #: permessage-deflate on this route: ``"deflate"``, None (off), or ``"config"`` (follow
    #: ``Config.compression``).
    compression: Literal["deflate", "config"] | None = attrs.field(
        default="config", validator=attrs.validators.in_(("deflate", "config", None))
    )
    on_handshake: Hook | None = attrs.field(default=None, validator=_check_hook)

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


def _methods(methods: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    names = (methods,) if isinstance(methods, str) else tuple(methods)
    upper = tuple(dict.fromkeys(name.upper() for name in names))
    if not upper or not all(name.isascii() and name.isalpha() for name in upper):
        raise ValueError(f"methods must be HTTP method names: {methods!r}")
    return (*upper, "HEAD") if "GET" in upper and "HEAD" not in upper else upper


def _check_http_handler(
    instance: HttpRoute, attribute: attrs.Attribute[Any], value: object
) -> None:
    _check_callable(value, "an HttpRoute handler", 2, need_async=False)


@attrs.frozen
class HttpRoute:
    """A plain HTTP endpoint: ``handler(request, body)`` (plain or ``async def``) returns a
    :class:`Response`. Other methods get 405 with ``Allow``; a body over
    ``Config.max_body_size`` gets 413. GET allows HEAD (the body is not sent)."""

    handler: HttpHandler = attrs.field(validator=_check_http_handler)
    methods: tuple[str, ...] = attrs.field(default=("GET",), converter=_methods)


def _to_bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


@attrs.frozen
class Static:
    """Plain HTTP content served at a path (GET and HEAD), e.g. a browser page."""

    body: bytes = attrs.field(converter=_to_bytes)
    content_type: str = "text/html; charset=utf-8"


Target: TypeAlias = Route | HttpRoute | Static | StaticDir
#: What ``serve`` takes: path pattern → handler, Route, HttpRoute, Static or StaticDir.
Routes: TypeAlias = Mapping[str, Handler | Target]

#: Paths the server answers itself.
BUILTIN_PATHS = frozenset({"/healthz", "/metrics"})


@attrs.frozen
class Match:
    """The route for a request path: its target and the path parameters it took."""

    target: Target
    params: Mapping[str, str]
    pattern: str


@attrs.frozen
class RouteTable:
    """Routes by pattern; :meth:`match` finds the one for a path."""

    literal: Mapping[str, Target]
    patterns: tuple[tuple[Pattern, Target], ...]
    dirs: tuple[tuple[Pattern, StaticDir], ...]  # longest mount first

    def match(self, path: str) -> Match | None:
        """The route for ``path`` (as sent, percent-encoded), or None."""
        target = self.literal.get(path)
        if target is not None:
            return Match(target, {}, path)
        segments = split_path(path)
        if segments is None:
            return None
        for pattern, target in self.patterns:
            params = pattern.match(segments)
            if params is not None:
                return Match(target, params, pattern.text)
        for pattern, directory in self.dirs:
            params = pattern.match(segments)
            if params is not None:
                return Match(directory, params, pattern.text)
        return None

    def other_slash(self, path: str) -> str | None:
        """``path`` with its trailing slash added or removed, if that matches a route
        (a plain GET then gets a 308 redirect there, an upgrade a 404 that names it)."""
        other = path[:-1] if path.endswith("/") and path != "/" else path + "/"
        return other if self.match(other) is not None else None


def _target(path: str, value: object) -> Target:
    if isinstance(value, Route | HttpRoute | Static | StaticDir):
        return value
    if callable(value):
        try:
            return Route(value)
        except TypeError as exc:
            raise TypeError(f"route {path!r}: {exc}") from None
    raise TypeError(
        f"route {path!r} must map to an async handler, Route, HttpRoute, Static or StaticDir,"
        f" not {value!r}"
    )


def resolve_routes(routes: Routes) -> RouteTable:
    """Compile and check every route; TypeError or ValueError naming the route at fault."""
    patterns: list[tuple[Pattern, Target]] = []
    dirs: list[tuple[Pattern, StaticDir]] = []
    builtins = [(b, split_path(b) or []) for b in sorted(BUILTIN_PATHS)]
    for path, value in routes.items():
        target = _target(path, value)
        try:
            pattern = Pattern.compile(path)
        except ValueError as exc:
            raise ValueError(f"route {path!r}: {exc}") from None
        for builtin, segments in builtins:
            if pattern.match(segments) is not None:
                raise ValueError(f"route {path!r} would match {builtin}, served by wstrio itself")
        if isinstance(target, StaticDir):
            if not pattern.is_literal:
                raise ValueError(f"route {path!r}: a StaticDir is mounted at a plain path")
            mount = path.rstrip("/")
            dirs.append((Pattern.compile(f"{mount}/{{file:path}}"), target))
            dirs.append((Pattern.compile(f"{mount}/"), target))
            continue
        for seen, _ in patterns:
            if overlap(seen, pattern):
                raise ValueError(
                    f"routes {seen.text!r} and {path!r} can match the same path: make them"
                    " distinct (a literal segment, or a different number of segments)"
                )
        patterns.append((pattern, target))
    dirs.sort(key=lambda entry: -len(entry[0].segments))
    literal = {p.text: t for p, t in patterns if p.is_literal}
    return RouteTable(literal, tuple(patterns), tuple(dirs))
