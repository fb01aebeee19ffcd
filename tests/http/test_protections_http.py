"""``max_connections_per_ip`` over 127.0.0.1: 503 with Retry-After past it, the address as the
trusted-proxy rules decide it (IPv6 per /64), and the counts in statistics and /metrics."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
from helpers import http_get
from prometheus_client.parser import text_string_to_metric_families
from rawhttp import body, header, read_response, status, upgrade
from websockets.trio.client import ClientConnection, connect

import wstrio
from wstrio._http.addresses import AddressCounts, address_key


async def echo(session: wstrio.Session) -> None:
    async for message in session:
        await session.send(message)


async def refuse(request: wstrio.Request) -> wstrio.Reject:
    return wstrio.Reject(403, body="no")


async def start(nursery: trio.Nursery, **fields: object) -> tuple[wstrio.Server, int]:
    config = wstrio.Config(**fields)  # type: ignore[arg-type]
    routes = {"/e": echo, "/no": wstrio.Route(echo, on_handshake=refuse)}
    server = wstrio.Server(routes, config=config)
    port = await nursery.start(functools.partial(server.run, port=0))
    return server, port


@asynccontextmanager
async def sessions(port: int, *forwarded: str) -> AsyncIterator[list[ClientConnection]]:
    """One open session per ``forwarded`` (its X-Forwarded-For; "" for none)."""
    async with AsyncExitStack() as stack:
        opened = []
        for address in forwarded:
            headers = {"X-Forwarded-For": address} if address else {}
            ws = await stack.enter_async_context(
                connect(f"ws://127.0.0.1:{port}/e", additional_headers=headers)
            )
            await ws.send("hi")
            assert await ws.recv() == "hi"
            opened.append(ws)
        yield opened


async def try_upgrade(port: int, *extra: str, path: str = "/e") -> bytes:
    """A raw upgrade request; the response head and body (the connection is then dropped)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(upgrade(path, *extra))
        return await read_response(stream)


async def test_past_the_limit_an_upgrade_gets_503_with_retry_after(nursery: trio.Nursery) -> None:
    """Two sessions from 127.0.0.1 fill max_connections_per_ip=2: the third upgrade gets 503
    with Retry-After: 5; when one ends there is room again. Counted in statistics."""
    server, port = await start(nursery, max_connections_per_ip=2, max_connections=100)
    async with sessions(port, "", "") as (first, _):
        response = await try_upgrade(port)
        assert status(response) == 503 and header(response, "retry-after") == "5"
        assert b"too many connections from this address" in body(response)
        stats = server.statistics()
        assert (stats.per_ip_refusals, stats.busiest_address, stats.open_connections) == (1, 2, 2)
        await first.aclose()  # returns once the server has closed TCP: its count is gone
        assert server.statistics().busiest_address == 1
        async with sessions(port, ""):
            assert server.statistics().busiest_address == 2
    await server.wait_idle()
    assert server.statistics().busiest_address == 0


async def test_trusted_proxies_decide_the_address(nursery: trio.Nursery) -> None:
    """From a trusted proxy, each X-Forwarded-For client has its own count; the same headers
    from an untrusted peer are ignored and everyone counts as that peer."""
    _, trusting = await start(nursery, max_connections_per_ip=1, trusted_proxies=("127.0.0.1",))
    async with sessions(trusting, "203.0.113.7", "203.0.113.8", "2001:db8::1"):
        again = await try_upgrade(trusting, "X-Forwarded-For: 203.0.113.7")
        assert status(again) == 503
        same_64 = await try_upgrade(trusting, "X-Forwarded-For: 2001:db8::ffff:1")
        assert status(same_64) == 503  # an IPv6 address counts with its /64
        other_64 = await try_upgrade(trusting, "X-Forwarded-For: 2001:db8:0:1::1")
        assert status(other_64) == 101
    _, untrusting = await start(nursery, max_connections_per_ip=1)
    async with sessions(untrusting, "203.0.113.7"):
        response = await try_upgrade(untrusting, "X-Forwarded-For: 198.51.100.1")
        assert status(response) == 503  # both are 127.0.0.1 here


async def test_a_refused_handshake_frees_its_count(nursery: trio.Nursery) -> None:
    """An upgrade the route's hook rejects counts only while it is decided."""
    server, port = await start(nursery, max_connections_per_ip=1)
    for _ in range(3):
        assert status(await try_upgrade(port, path="/no")) == 403
    await server.wait_idle()
    assert server.statistics().busiest_address == 0
    async with sessions(port, ""):
        pass


async def test_limit_off_by_default_still_measures(nursery: trio.Nursery) -> None:
    """With no limit, five sessions from one address are all accepted; /metrics shows the
    busiest address's count and no refusal."""
    server, port = await start(nursery)
    async with sessions(port, "", "", "", "", ""):
        _, text = await http_get(port, "/metrics")
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }
    assert samples["wstrio_busiest_address_connections"] == 5
    assert samples["wstrio_per_ip_refusals_total"] == 0
    assert samples["wstrio_rate_limited_total"] == 0
    assert samples["wstrio_frame_timeouts_total"] == 0
    assert server.statistics().per_ip_refusals == 0


async def test_refusals_are_in_metrics(nursery: trio.Nursery) -> None:
    """wstrio_per_ip_refusals_total counts the 503s past max_connections_per_ip."""
    _, port = await start(nursery, max_connections_per_ip=1)
    async with sessions(port, ""):
        for _ in range(2):
            assert status(await try_upgrade(port)) == 503
        _, text = await http_get(port, "/metrics")
    assert b"wstrio_per_ip_refusals_total 2.0" in text


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        (None, None),
        (("192.0.2.1", 5000), "192.0.2.1"),
        (("::ffff:192.0.2.1", 5000), "192.0.2.1"),
        (("2001:db8::1", 1), "2001:db8::/64"),
        (("2001:db8::ffff:ffff", 1), "2001:db8::/64"),
        (("2001:db8:0:1::1", 1), "2001:db8:0:1::/64"),
        (("not-an-ip", 1), "not-an-ip"),
    ],
)
def test_address_keys(remote: tuple[str, int] | None, key: str | None) -> None:
    """IPv4 on its own (IPv4-mapped as IPv4), IPv6 per /64, no address: not counted."""
    assert address_key(remote) == key


def test_address_counts_hold_and_release() -> None:
    """A count lasts for its block; keys with none left are forgotten; None is not counted."""
    counts = AddressCounts()
    with counts.holding("a"), counts.holding("a"), counts.holding("b"), counts.holding(None):
        assert (counts.count("a"), counts.count("b"), counts.count(None)) == (2, 1, 0)
        assert (counts.busiest(), len(counts)) == (2, 2)
    assert (counts.busiest(), len(counts)) == (0, 0)
