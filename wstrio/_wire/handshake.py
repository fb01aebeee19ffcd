"""The opening handshake's WebSocket rules as pure functions (RFC 6455 section 4).

The HTTP itself (reading and writing requests and responses) is h11's, done by
the HTTP front on a server and by the client; this module holds what RFC 6455
adds on top: the key and its accept value, and the header lists both sides
parse (RFC 7230 7: comma-separated, possibly over several header lines).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable

#: RFC 6455 1.3: appended to the client's key before hashing.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: RFC 7230 3.2.6: a token is one or more tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def new_key() -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes in base64 (RFC 6455 4.1)."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_value(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server answers ``key`` with (RFC 6455 4.2.2)."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()  # RFC 6455 names SHA-1
    return base64.b64encode(digest).decode("ascii")


def list_items(values: Iterable[str]) -> list[str]:
    """The items of a comma-separated header, over all its lines (RFC 7230 3.2.2, 7),
    whitespace stripped and empty items dropped."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def is_token(text: str) -> bool:
    """True if ``text`` is an RFC 7230 token (ASCII letters, digits and ``!#$%&'*+-.^_`|~``)."""
    return _TOKEN.fullmatch(text) is not None


def has_token(values: Iterable[str], token: str) -> bool:
    """True if the comma-separated header ``values`` hold ``token``, matched whole and
    case-insensitively (``Connection: keep-alive, Upgrade`` holds ``upgrade``)."""
    wanted = token.lower()
    return any(item.lower() == wanted for item in list_items(values))
