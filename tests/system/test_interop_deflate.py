"""permessage-deflate with another implementation, both ways: the ``websockets`` package's
client against wstrio's server, and wstrio's client against its server, over 127.0.0.1."""

from __future__ import annotations

import functools

import pytest
import trio
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import serve as ws_serve

import wstrio

PAYLOADS = ["héllo " * 5000, b"\x00\x01" * 40000, "short"]


async def test_websockets_client_negotiates_and_echoes_through_wstrio(
    nursery: trio.Nursery,
) -> None:
    """The websockets client's default offer is accepted; big and small messages round-trip."""
    port = await nursery.start(functools.partial(wstrio.serve, {"/ws/echo": wstrio.echo}, port=0))
    async with ws_connect(f"ws://127.0.0.1:{port}/ws/echo") as ws:
        agreed = ws.response.headers["Sec-WebSocket-Extensions"]
        assert agreed.startswith("permessage-deflate")
        for payload in PAYLOADS:
            await ws.send(payload)
            assert await ws.recv() == payload


async def echo(ws: object) -> None:
    async for message in ws:  # type: ignore[attr-defined]
        await ws.send(message)  # type: ignore[attr-defined]


@pytest.mark.parametrize("takeover", [True, False])
async def test_wstrio_client_negotiates_and_echoes_through_websockets(
    nursery: trio.Nursery, takeover: bool
) -> None:
    """wstrio's offer is accepted by the websockets server, with or without context takeover."""
    server = await nursery.start(functools.partial(ws_serve, echo, 0, host="127.0.0.1"))
    port = server.listeners[0].socket.getsockname()[1]
    config = wstrio.Config(compression_context_takeover=takeover)
    async with wstrio.connect(f"ws://127.0.0.1:{port}/", config=config) as session:
        assert (session.headers.get("sec-websocket-extensions") or "").startswith(
            "permessage-deflate"
        )
        for payload in PAYLOADS:
            await session.send(payload)
            assert await session.receive() == payload
