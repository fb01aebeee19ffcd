"""The HTTP front, curl-style: raw requests over 127.0.0.1, every status it promises."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator

import attrs
import pytest
import trio
from helpers import http_get, start_stoppable
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families
from rawhttp import KEY, body, get, header, read_all, read_response, status, upgrade
from websockets.exceptions import InvalidStatus
from websockets.trio.client import connect

import wstrio

CONFIG = wstrio.Config(handshake_timeout=1, max_header_bytes=2048, max_connections=2)


@attrs.define
class Front:
    server: wstrio.Server
    port: int

    async def exchange(self, data: bytes, *, until_close: bool = True) -> bytes:
        """Send raw bytes, read the answer (to EOF, or one response head + body)."""
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        async with stream:
            await stream.send_all(data)
            return await read_all(stream) if until_close else await read_response(stream)


async def hold(session: wstrio.Session) -> None:
    async for message in session:
        await session.send(message)


@pytest.fixture
async def front(nursery: trio.Nursery) -> AsyncIterator[Front]:
    routes = {
        "/ws/echo": wstrio.Route(hold, subprotocols=("chat.v2", "chat.v1")),
        "/": wstrio.Static("<h1>hello</h1>"),
    }
    server = wstrio.Server(routes, config=CONFIG)
    port = await nursery.start(functools.partial(server.run, port=0))
    yield Front(server, port)


async def test_healthz_reports_status_connections_uptime(front: Front) -> None:
    """GET /healthz: 200 and JSON with status, open connections and uptime."""
    response = await front.exchange(get("/healthz"))
    assert status(response) == 200
    assert header(response, "content-type") == "application/json"
    data = json.loads(body(response))
    assert data["status"] == "ok" and data["open_connections"] == 0 and data["uptime"] >= 0


async def test_metrics_in_prometheus_format(front: Front) -> None:
    """GET /metrics: counters in Prometheus text format, updated by traffic."""
    async with connect(f"ws://127.0.0.1:{front.port}/ws/echo") as ws:
        await ws.send("abc")
        assert await ws.recv() == "abc"
    await front.server.wait_idle()
    response = await front.exchange(get("/metrics"))
    assert status(response) == 200
    assert (header(response, "content-type") or "").startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body(response).decode())
        for s in family.samples
    }
    assert samples[("wstrio_open_connections", ())] == 0
    assert samples[("wstrio_connections_total", ())] == 1
    assert samples[("wstrio_messages_received_total", ())] == 1
    assert samples[("wstrio_bytes_sent_total", ())] == 3
    assert samples[("wstrio_closes_total", (("code", "1000"),))] == 1
    assert samples[("wstrio_message_size_bytes_bucket", (("le", "64.0"),))] == 1  # "abc"
    assert samples[("wstrio_message_size_bytes_sum", ())] == 3
    assert samples[("wstrio_handshake_seconds_count", ())] == 1
    assert ("process_cpu_seconds_total", ()) in samples  # process metrics come for free


async def test_an_application_adds_its_own_metrics_beside_wstrios() -> None:
    """A Counter registered in server.registry shows on /metrics next to wstrio's."""
    server = wstrio.Server({"/ws/echo": hold})
    orders = Counter("shop_orders", "Orders taken.", registry=server.registry)
    orders.inc(3)
    async with trio.open_nursery() as nursery:
        port, stop = await start_stoppable(nursery, server)
        _, text = await http_get(port, "/metrics")
        stop.cancel()
    assert b"shop_orders_total 3.0" in text and b"wstrio_open_connections 0.0" in text


async def test_static_route_and_head(front: Front) -> None:
    """Static content is served; HEAD gives the same headers and no body."""
    response = await front.exchange(get("/"))
    assert status(response) == 200 and body(response) == b"<h1>hello</h1>"
    head = await front.exchange(get("/", method="HEAD"))
    assert status(head) == 200 and body(head) == b""
    assert header(head, "content-length") == str(len(b"<h1>hello</h1>"))


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (get("/ws/echo"), 426),
        (get("/nowhere"), 404),
        (get("/healthz", method="POST"), 405),
        (get("/", method="DELETE"), 405),
        (upgrade("/nowhere"), 404),
        (upgrade().replace(b"GET", b"PUT"), 405),
        (upgrade().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"), 426),
        (upgrade().replace(KEY.encode(), b"short"), 400),
        (b"\x16\x03\x01 this is not http\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n", 431),
    ],
    ids=["plain-get-on-ws-route", "unknown", "post-healthz", "delete-static", "upgrade-unknown",
         "upgrade-put", "bad-version", "bad-key", "garbage", "oversized-head"],
)
async def test_status_codes(front: Front, request_bytes: bytes, expected: int) -> None:
    """Each kind of request gets its documented status."""
    response = await front.exchange(request_bytes, until_close=False)
    assert status(response) == expected
    if expected == 426:
        assert header(response, "upgrade") == "websocket"
    if expected == 405:
        assert header(response, "allow")


@pytest.mark.parametrize("request_bytes", [b"\x00garbage\r\n\r\n", b"GET / HTTP/1.1\r\nX: " +
                                           b"a" * 4096])
async def test_bad_input_closes_the_connection(front: Front, request_bytes: bytes) -> None:
    """Garbage (400) and oversized heads (431) close the TCP connection."""
    response = await front.exchange(request_bytes)  # reads to EOF: fails if left open
    assert status(response) in (400, 431)


async def test_keep_alive_serves_several_requests(front: Front) -> None:
    """Plain HTTP keep-alive: two requests on one connection, two answers."""
    stream = await trio.open_tcp_stream("127.0.0.1", front.port)
    async with stream:
        for _ in range(2):
            await stream.send_all(get("/healthz", close=False))
            assert status(await read_response(stream)) == 200


async def test_slow_client_is_dropped_after_handshake_timeout(front: Front) -> None:
    """A request head that never completes is dropped after handshake_timeout."""
    stream = await trio.open_tcp_stream("127.0.0.1", front.port)
    async with stream:
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert await read_all(stream) == b""  # EOF, no answer
    await front.server.wait_idle()


@pytest.mark.parametrize(
    ("origin", "allowed", "ok"),
    [
        (None, None, True),
        ("http://127.0.0.1:{port}", None, True),
        ("http://evil.example", None, False),
        ("http://evil.example", "*", True),
        ("https://app.example", ("https://app.example",), True),
        ("https://other.example", ("https://app.example",), False),
    ],
)
async def test_origin_policy(
    nursery: trio.Nursery, origin: str | None, allowed: object, ok: bool
) -> None:
    """Same origin by default; a list or "*" when configured; refused origins get 403."""
    config = wstrio.Config(allowed_origins=allowed)  # type: ignore[arg-type]
    server = wstrio.Server({"/ws/echo": hold}, config=config)
    port = await nursery.start(functools.partial(server.run, port=0))
    headers = {"Origin": origin.format(port=port)} if origin else {}
    url = f"ws://127.0.0.1:{port}/ws/echo"
    if ok:
        async with connect(url, additional_headers=headers) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
    else:
        with pytest.raises(InvalidStatus) as info:
            async with connect(url, additional_headers=headers):
                pass
        assert info.value.response.status_code == 403


async def test_max_connections_gives_503_with_retry_after(front: Front) -> None:
    """Beyond max_connections, handshakes get 503 with Retry-After."""
    url = f"ws://127.0.0.1:{front.port}/ws/echo"
    async with connect(url), connect(url):
        response = await front.exchange(upgrade(), until_close=False)
        assert status(response) == 503 and header(response, "retry-after") == "1"
    await front.server.wait_idle()
    async with connect(url) as ws:  # capacity is back
        await ws.send("y")
        assert await ws.recv() == "y"


async def test_subprotocol_is_negotiated(front: Front) -> None:
    """The first subprotocol the client offers that the route speaks is chosen."""
    url = f"ws://127.0.0.1:{front.port}/ws/echo"
    async with connect(url, subprotocols=["x.v9", "chat.v1", "chat.v2"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat.v1"
    async with connect(url, subprotocols=["x.v9"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol is None
