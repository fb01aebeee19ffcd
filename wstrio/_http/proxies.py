"""Who the client is behind trusted proxies: ``Forwarded`` (RFC 7239) and ``X-Forwarded-*``.

Theory of operation: the TCP peer is the client unless it is one of
``Config.trusted_proxies``. Then the forwarding headers are read from the
right (the hop nearest to us) leftwards, skipping addresses that are trusted
proxies themselves; the first other address is the client. Only the header
``Config.forwarded_header`` names is read (``X-Forwarded-For`` by default, or
``Forwarded``): a proxy that sets one passes the other on as the client wrote
it, so believing both would let a client choose its own address. A value that is not an IP
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
        if rest:
            found = _port(rest[1:]) if rest.startswith(":") else None
            if found is None:
                return None
            port = found
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        found = _port(port_text)
        if found is None:
            return None
        port = found
    else:
        host = text
    try:
        return ipaddress.ip_address(host), port
    except ValueError:
        return None


def _port(text: str) -> int | None:
    """A port number written in 1-5 ASCII digits, 0-65535; None otherwise."""
    if not (text.isascii() and text.isdigit() and len(text) <= 5):
        return None
    port = int(text)
    return port if port <= 65535 else None


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


def _plain(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (``::ffff:10.0.0.5``, a dual-stack listener's view of an
    IPv4 peer) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Sequence[Network]) -> bool:
    address = _plain(address)
    return any(address in network for network in networks)


def client_of(
    peer: tuple[str, int] | None,
    scheme: str,
    headers: Headers,
    trusted: Sequence[str],
    header: str = "x-forwarded-for",
) -> tuple[tuple[str, int] | None, str]:
    """The client's ``(host, port)`` and scheme (``http``/``https``) for a request that came
    from ``peer`` over ``scheme``; the forwarding headers count only from trusted peers, and
    only the one ``header`` names (``"x-forwarded-for"`` with ``X-Forwarded-Proto``, or
    ``"forwarded"``): a proxy passes the other on as the client sent it."""
    if peer is None or not trusted:
        return peer, scheme
    networks = [ipaddress.ip_network(entry) for entry in trusted]
    try:
        nearest = ipaddress.ip_address(peer[0])
    except ValueError:
        return peer, scheme
    if not _trusted(nearest, networks):
        return peer, scheme
    hops = _forwarded_hops(headers) if header == "forwarded" else _x_forwarded_hops(headers)
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
