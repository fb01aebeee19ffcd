"""Who the client is behind trusted proxies: ``Forwarded`` (RFC 7239) and ``X-Forwarded-*``.

Theory of operation: the TCP peer is the client unless it is one of
``Config.trusted_proxies``. Then the forwarding headers are read from the
right (the hop nearest to us) leftwards, skipping addresses that are trusted
proxies themselves; the first other address is the client. ``Forwarded`` wins
over ``X-Forwarded-For`` when both are present. A value that is not an IP
address (``unknown``, an obfuscated ``_hidden`` name, garbage) ends the walk at
the last address that was good. Headers from a peer that is not trusted are
ignored whatever they say: anyone can send them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import attrs

from .._conn.headers import Headers
from .._wire.handshake import list_items

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class Hop:
    """One forwarding element: the address it was for, its port, and the scheme it used."""

    address: Address
    port: int = 0
    proto: str | None = None


def _address(text: str) -> tuple[Address, int] | None:
    """``1.2.3.4``, ``1.2.3.4:80``, ``[::1]``, ``[::1]:80`` or ``::1`` → address and port."""
    text = text.strip().strip('"')
    port = 0
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        elif rest:
            return None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            return None
        port = int(port_text)
    else:
        host = text
    try:
        return ipaddress.ip_address(host), port
    except ValueError:
        return None


def _forwarded_hops(headers: Headers) -> list[Hop | None]:
    """Every ``Forwarded`` element in order; None for one whose ``for`` is not an address."""
    hops: list[Hop | None] = []
    for element in list_items(headers.get_all("forwarded")):
        pairs = {}
        for part in element.split(";"):
            key, _, value = part.partition("=")
            pairs[key.strip().lower()] = value.strip().strip('"')
        found = _address(pairs.get("for", ""))
        proto = pairs.get("proto", "").lower() or None
        hops.append(None if found is None else Hop(found[0], found[1], proto))
    return hops


def _x_forwarded_hops(headers: Headers) -> list[Hop | None]:
    protos = [p.strip().lower() for p in list_items(headers.get_all("x-forwarded-proto"))]
    proto = protos[-1] if protos else None
    hops: list[Hop | None] = []
    for item in list_items(headers.get_all("x-forwarded-for")):
        found = _address(item)
        hops.append(None if found is None else Hop(found[0], found[1], proto))
    return hops


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def client_of(
    peer: tuple[str, int] | None, scheme: str, headers: Headers, trusted: Sequence[str]
) -> tuple[tuple[str, int] | None, str]:
    """The client's ``(host, port)`` and scheme (``http``/``https``) for a request that came
    from ``peer`` over ``scheme``; the forwarding headers count only from trusted peers."""
    if peer is None or not trusted:
        return peer, scheme
    networks = [ipaddress.ip_network(entry) for entry in trusted]
    try:
        nearest = ipaddress.ip_address(peer[0])
    except ValueError:
        return peer, scheme
    if not _trusted(nearest, networks):
        return peer, scheme
    hops = _forwarded_hops(headers) if "forwarded" in headers else _x_forwarded_hops(headers)
    client: tuple[str, int] = peer
    for hop in reversed(hops):
        if hop is None:
            break
        client = (str(hop.address), hop.port)
        if hop.proto in ("http", "https", "ws", "wss"):
            scheme = "https" if hop.proto in ("https", "wss") else "http"
        if not _trusted(hop.address, networks):
            break
    return client, scheme
