"""The chat route over loopback, with the ``websockets`` package's Trio client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from helpers import start_stoppable
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import ClientConnection, connect

import wstrio
from wstrio._apps.echo import default_routes
from wstrio.testing import MemoryServer, open_memory_server


@pytest.fixture
async def port(nursery: trio.Nursery) -> AsyncIterator[int]:
    server = wstrio.Server(default_routes(wstrio.Chat(max_text=20, max_strikes=3)))
    bound, stop = await start_stoppable(nursery, server)
    yield bound
    stop.cancel()


@asynccontextmanager
async def member(port: int, query: str) -> AsyncIterator[ClientConnection]:
    async with connect(f"ws://127.0.0.1:{port}/ws/chat?{query}") as ws:
        yield ws


async def recv(ws: ClientConnection) -> dict[str, Any]:
    with trio.fail_after(5):
        frame = json.loads(await ws.recv())
    assert isinstance(frame, dict)
    return frame


async def say(ws: ClientConnection, text: str) -> None:
    await ws.send(json.dumps({"type": "message", "text": text}))


async def test_join_gets_members_and_others_get_a_notice(port: int) -> None:
    """A newcomer gets the member list in join order; members already in get a join notice."""
    async with member(port, "room=r1&name=ada") as ada:
        first = await recv(ada)
        assert first["type"] == "members" and first["members"] == ["ada"]
        assert first["room"] == "r1" and first["name"] == "ada" and first["ts"] > 0
        async with member(port, "room=r1&name=bob") as bob:
            listing = await recv(bob)
            assert listing["members"] == ["ada", "bob"] and listing["name"] == "bob"
            notice = await recv(ada)
            assert (notice["type"], notice["name"], notice["room"]) == ("join", "bob", "r1")


async def test_message_fans_out_to_everyone_and_leave_is_announced(port: int) -> None:
    """A message reaches every member, the sender included; a departure reaches the rest."""
    async with member(port, "room=r2&name=ada") as ada:
        await recv(ada)
        async with member(port, "room=r2&name=bob") as bob:
            await recv(bob)
            await recv(ada)  # bob joined
            await say(ada, "hello")
            for ws in (ada, bob):
                got = await recv(ws)
                assert (got["type"], got["name"], got["text"], got["room"]) == (
                    "message",
                    "ada",
                    "hello",
                    "r2",
                )
        notice = await recv(ada)
        assert (notice["type"], notice["name"]) == ("leave", "bob")


async def test_rooms_are_separate(port: int) -> None:
    """A message in one room is not seen in another; the default room is the lobby."""
    async with member(port, "name=ada") as ada, member(port, "room=elsewhere&name=bob") as bob:
        assert (await recv(ada))["room"] == "lobby"
        await recv(bob)
        await say(bob, "psst")
        assert (await recv(bob))["text"] == "psst"
        await say(ada, "hi lobby")
        got = await recv(ada)
        assert got["text"] == "hi lobby"  # not bob's "psst", nor a join notice


async def test_invalid_json_and_oversized_text_get_errors(port: int) -> None:
    """Bad input gets an error frame back and the connection stays open."""
    async with member(port, "room=r3&name=ada") as ada:
        await recv(ada)
        await ada.send("{not json")
        assert await recv(ada) == {"type": "error", "text": "invalid JSON"}
        await say(ada, "x" * 21)
        assert await recv(ada) == {"type": "error", "text": "text longer than 20 characters"}
        await say(ada, "fine")  # forgives one strike
        assert (await recv(ada))["text"] == "fine"
        await ada.send(json.dumps({"type": "dance"}))
        assert (await recv(ada))["type"] == "error"


@pytest.mark.parametrize(
    "raw", ["[" * 100_000, '{"type": "ping", "id": NaN}', '{"type": "ping", "id": [[1]]}']
)
async def test_hostile_json_is_an_error_not_a_crash(port: int, raw: str) -> None:
    """Deep nesting, NaN and odd ping ids get an error frame; the handler does not crash."""
    async with member(port, "room=r8&name=ada") as ada:
        await recv(ada)
        await ada.send(raw)
        assert (await recv(ada))["type"] == "error"
        await say(ada, "still fine")
        assert (await recv(ada))["text"] == "still fine"


async def test_repeated_abuse_closes_with_1008(port: int) -> None:
    """max_strikes invalid messages in a row close the connection with 1008."""
    async with member(port, "room=r4&name=ada") as ada:
        await recv(ada)
        for _ in range(3):
            await ada.send("[]")
        assert (await recv(ada))["type"] == "error"
        assert (await recv(ada))["type"] == "error"
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await ada.recv()
        assert ada.close_code == 1008 and ada.close_reason == "too many invalid messages"


async def test_ping_gets_pong_with_its_id(port: int) -> None:
    """A chat-level ping is answered to the sender only, with its id."""
    async with member(port, "room=r5&name=ada") as ada:
        await recv(ada)
        await ada.send(json.dumps({"type": "ping", "id": 7}))
        pong = await recv(ada)
        assert pong["type"] == "pong" and pong["id"] == 7


async def test_names_are_unique_and_guests_get_one(port: int) -> None:
    """A taken name gets a suffix; an empty name becomes guest-N."""
    async with member(port, "room=r6&name=ada") as ada, member(port, "room=r6&name=ada") as ada2:
        assert (await recv(ada))["name"] == "ada"
        assert (await recv(ada2))["members"] == ["ada", "ada-2"]
        async with member(port, "room=r6") as guest:
            assert (await recv(guest))["name"].startswith("guest-")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("name=" + "n" * 33, "name longer than 32 characters"),
        ("room=" + "r" * 65, "room name longer than 64 characters"),
    ],
)
async def test_overlong_name_or_room_closes_with_1008(port: int, query: str, reason: str) -> None:
    """Names over 32 and room names over 64 characters are refused with 1008."""
    async with member(port, query) as ws:
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (1008, reason)


async def test_binary_frame_closes_with_1003(port: int) -> None:
    """The chat route takes text only: a binary frame closes with 1003."""
    async with member(port, "room=r7&name=ada") as ada:
        await recv(ada)
        await ada.send(b"\x00\x01")
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            while True:
                await ada.recv()
        assert ada.close_code == 1003


async def test_a_hundred_members_speaking_at_once_close_nobody() -> None:
    """A burst beyond outbox_size (everyone sends together) is backlogged, not a slow consumer."""
    members = 100
    chat = wstrio.Chat()
    config = wstrio.Config(outbox_size=16, ping_interval=None)
    routes = {"/ws/chat": wstrio.Route(chat, accepts="text")}
    go = trio.Event()
    got: list[int] = [0] * members

    async def member(server: MemoryServer, i: int, ready: trio.Event) -> None:
        async with server.connect(f"/ws/chat?room=burst&name=m{i}", config=config) as session:
            ready.set()
            await go.wait()
            await session.send(json.dumps({"type": "message", "text": f"from {i}"}))
            async for raw in session:
                if json.loads(raw)["type"] == "message":
                    got[i] += 1
                    if got[i] == members:
                        return

    async with open_memory_server(routes, config=config) as server:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for i in range(members):
                    ready = trio.Event()
                    nursery.start_soon(member, server, i, ready)
                    await ready.wait()
                go.set()
        stats = server.statistics()
    assert got == [members] * members
    assert chat.hub.statistics().slow_closes == 0 and stats.slow_consumer_closes == 0
