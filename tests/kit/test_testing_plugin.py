"""The pytest plugin's fixtures, as a user's test module would use them."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import wstrio
from wstrio.testing import MemoryServer


async def shout(session: wstrio.Session) -> None:
    async for message in session:
        await session.send(str(message).upper())


@pytest.fixture
def wstrio_routes() -> dict[str, object]:
    return {"/shout": shout}


@pytest.fixture
def wstrio_config() -> wstrio.Config:
    return wstrio.Config(ping_interval=30, ping_timeout=30)


async def test_fixture_server_answers(wstrio_server: MemoryServer) -> None:
    """wstrio_server serves the module's wstrio_routes."""
    async with wstrio_server.connect("/shout") as client:
        await client.send("hi")
        assert await client.receive() == "HI"


async def test_fixture_server_on_autojump_clock(
    wstrio_server: MemoryServer, autojump_clock: trio.testing.MockClock
) -> None:
    """With autojump_clock, heartbeats run in virtual time: 31 s pass in no wall time."""
    config = wstrio.Config(ping_interval=10, ping_timeout=5)
    async with wstrio_server.connect("/shout", config=config) as client:
        assert client.latency is None
        await trio.sleep(31)  # virtual: three client pings and the server's first one answered
        assert client.latency is not None
        assert wstrio_server.statistics().open_connections == 1
        await client.send("still here")
        assert await client.receive() == "STILL HERE"
