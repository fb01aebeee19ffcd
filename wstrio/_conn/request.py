"""What a client asked for, as a value: :class:`Request`, with its query and cookies parsed.

The HTTP front builds one per WebSocket handshake (and per plain HTTP request)
and hands the same value to the route's handshake hook and, through
``session.request``, to the handler. Parsing uses the standard library
(``urllib.parse`` for the query, ``http.cookies`` for cookies).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from http.cookies import CookieError, SimpleCookie
from types import MappingProxyType
from urllib.parse import parse_qsl

import attrs

from .headers import Headers


class QueryParams(Mapping[str, str]):
    """A query string's parameters, read-only: ``q["a"]`` is the first value of ``a``,
    ``q.get_all("a")`` every value in order (repeated keys are kept)."""

    __slots__ = ("_items",)

    def __init__(self, items: tuple[tuple[str, str], ...] = ()) -> None:
        self._items = items

    @classmethod
    def parse(cls, query: str) -> QueryParams:
        """Parse ``a=1&b=2&a=3`` (percent-decoded, ``+`` as space, blank values kept)."""
        return cls(tuple(parse_qsl(query, keep_blank_values=True)))

    def __getitem__(self, key: str) -> str:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for name, _ in self._items))

    def __len__(self) -> int:
        return len(dict.fromkeys(name for name, _ in self._items))

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key``, in order; [] if absent."""
        return [value for name, value in self._items if name == key]

    @property
    def items_list(self) -> tuple[tuple[str, str], ...]:
        """Every ``(name, value)`` pair, in order, repeats included."""
        return self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, QueryParams):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self) == dict(other)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"QueryParams({list(self._items)!r})"


def parse_cookies(headers: Headers) -> Mapping[str, str]:
    """Cookie name → value from every ``Cookie`` header (RFC 6265 5.4); a malformed header
    contributes what the standard library's parser could read before it gave up."""
    cookies: dict[str, str] = {}
    for line in headers.get_all("cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(line)
        except CookieError:
            continue
        for name, morsel in jar.items():
            cookies.setdefault(name, morsel.value)
    return MappingProxyType(cookies)


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Request:
    """An HTTP request as wstrio read it: the WebSocket handshake, or a plain request.

    ``path`` is percent-decoded per segment only where a route pattern took a
    parameter (``params``); the path itself is as sent. ``remote`` is the
    client's ``(host, port)``: the TCP peer, or what a trusted proxy said
    (``Config.trusted_proxies``). ``subprotocols`` are the offered ones, in
    order; ``origin`` is the ``Origin`` header, if any.
    """

    method: str = "GET"
    path: str = "/"
    query: QueryParams = attrs.field(factory=QueryParams)
    headers: Headers = attrs.field(factory=Headers)
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    remote: tuple[str, int] | None = None
    scheme: str = "http"  # "https" under TLS, or what a trusted proxy said
    subprotocols: tuple[str, ...] = ()

    @property
    def cookies(self) -> Mapping[str, str]:
        """Cookie name → value, parsed from the ``Cookie`` headers by ``http.cookies``."""
        return parse_cookies(self.headers)

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header (browsers send it; RFC 6454), or None."""
        return self.headers.get("origin")
