"""Sessions per client address, for ``Config.max_connections_per_ip``.

Theory of operation: the address is the one the trusted-proxy rules give
(``Request.remote``: the TCP peer, or the client a trusted proxy names). An
IPv4 address counts on its own (an IPv4-mapped IPv6 address as the IPv4 one);
an IPv6 address counts with its /64, since one host is routinely given a whole
/64 and could otherwise open as many sessions as it has addresses. A
connection without an address (an in-memory stream) is not counted. An upgrade
holds its address's count from the moment it passes the check until its
session has ended.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator

#: IPv6 addresses count per network of this prefix length.
IPV6_PREFIX = 64


def address_key(remote: tuple[str, int] | None) -> str | None:
    """What ``remote``'s connections count under: the IPv4 address, the IPv6 /64, or None."""
    if remote is None:
        return None
    host = remote[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP address (a test's stream): counted under its name
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


class AddressCounts:
    """Open sessions and upgrades under way per address key."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        """Addresses with a session or an upgrade now."""
        return len(self._counts)

    def count(self, key: str | None) -> int:
        """Sessions and upgrades of ``key`` now (0 for None)."""
        return 0 if key is None else self._counts.get(key, 0)

    def busiest(self) -> int:
        """The count of the address with the most sessions and upgrades now."""
        return max(self._counts.values(), default=0)

    @contextlib.contextmanager
    def holding(self, key: str | None) -> Iterator[None]:
        """Count one for ``key`` during the block (nothing for None)."""
        if key is None:
            yield
            return
        self._counts[key] = self._counts.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._counts[key] - 1
            if left:
                self._counts[key] = left
            else:
                del self._counts[key]
