"""The upgrade checks as pure functions: origins (RFC 6454) and header lists (RFC 7230)."""

from __future__ import annotations

import pytest

import wstrio
from wstrio._http.parse import RequestHead
from wstrio._http.upgrade import origin_allowed, origin_tuple
from wstrio._wire.handshake import accept_value, has_token, list_items


def head(origin: str, host: str = "chat.example") -> RequestHead:
    return RequestHead("GET", "/ws", (("host", host), ("origin", origin)))


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://Chat.Example", ("https", "chat.example", 443)),
        ("https://chat.example:443/", ("https", "chat.example", 443)),
        ("http://chat.example", ("http", "chat.example", 80)),
        ("http://[::1]:8080", ("http", "::1", 8080)),
        ("null", None),
        ("https://chat.example/path", None),
        ("https://chat.example:99999", None),
    ],
)
def test_origin_is_scheme_host_and_port_with_defaults(origin: str, expected: object) -> None:
    """An origin is (scheme, host, port), case-folded, the scheme's default port filled in."""
    assert origin_tuple(origin) == expected


@pytest.mark.parametrize(
    ("allowed", "origin", "host", "ok"),
    [
        (None, "https://chat.example", "chat.example", True),  # same origin, default port
        (None, "http://chat.example", "chat.example:80", True),
        (None, "http://chat.example:8080", "chat.example", False),
        (None, "http://evil.example", "chat.example", False),
        (("https://chat.example:443",), "https://chat.example", "x", True),
        (("https://chat.example",), "https://CHAT.example:443/", "x", True),
        (("https://chat.example",), "http://chat.example", "x", False),
        (("https://chat.example",), "https://chat.example.evil", "x", False),
        ("*", "null", "x", True),
    ],
)
def test_origins_compare_per_rfc_6454(
    allowed: object, origin: str, host: str, ok: bool
) -> None:
    """Default ports count as written: https://a equals https://a:443; schemes must match."""
    config = wstrio.Config(allowed_origins=allowed)  # type: ignore[arg-type]
    assert origin_allowed(head(origin, host), config) is ok


def test_header_lists_span_lines_and_tokens_match_whole() -> None:
    """``a, b`` over several lines is one list; ``upgrade`` is not found in ``upgrade-please``."""
    assert list_items(["keep-alive,  Upgrade", "", " x "]) == ["keep-alive", "Upgrade", "x"]
    assert has_token(["keep-alive", "UPGRADE"], "upgrade")
    assert not has_token(["upgrade-please, x-upgrade"], "upgrade")


def test_accept_value_is_the_rfc_example() -> None:
    """RFC 6455 1.3: the sample key's accept value."""
    assert accept_value("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
