"""The chat's history over loopback: message ids, ``?since=`` recovery, and its failure."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import trio
from chatclient import next_of, recv
from helpers import start_stoppable
from websockets.trio.client import ClientConnection, connect

import wstrio
from wstrio._apps.echo import default_routes


@pytest.fixture
async def port(nursery: trio.Nursery) -> AsyncIterator[int]:
    server = wstrio.Server(default_routes(wstrio.Chat(history=3)))
    bound, stop = await start_stoppable(nursery, server)
    yield bound
    stop.cancel()


async def say(ws: ClientConnection, text: str) -> str:
    """Send ``text`` and return the id the room gave it (as its sender sees it)."""
    await ws.send(json.dumps({"type": "message", "text": text}))
    frame = await next_of(ws, "message")
    assert frame["text"] == text
    return str(frame["id"])


def url(port: int, query: str) -> str:
    return f"ws://127.0.0.1:{port}/ws/chat?room=h&{query}"


async def test_every_message_carries_a_distinct_id(port: int) -> None:
    """Each message frame has an id, the same for every member, and no two share one."""
    async with connect(url(port, "name=ada")) as ada, connect(url(port, "name=bob")) as bob:
        await next_of(ada, "members")
        await next_of(bob, "members")
        ids = [await say(ada, f"m{n}") for n in range(3)]
        seen = [(await next_of(bob, "message"))["id"] for _ in range(3)]
        assert seen == ids and len(set(ids)) == 3


async def test_since_sends_exactly_the_missed_messages_then_recovered(port: int) -> None:
    """A member back with ``since`` gets what it missed, in order, then ``recovered``,
    then its member list and live traffic; nothing it saw comes twice."""
    async with connect(url(port, "name=bob")) as bob:
        await next_of(bob, "members")
        async with connect(url(port, "name=ada")) as ada:
            await next_of(ada, "members")
            await say(bob, "seen")
            last = (await next_of(ada, "message"))["id"]
        missed = [await say(bob, text) for text in ("one", "two")]
        async with connect(url(port, f"name=ada&since={last}")) as ada:
            got = [await recv(ada) for _ in range(3)]
            assert [(f["type"], f.get("id")) for f in got[:2]] == [("message", i) for i in missed]
            assert [f["text"] for f in got[:2]] == ["one", "two"]
            assert (got[2]["type"], got[2]["recovered"], got[2]["missed"]) == ("recovered", True, 2)
            assert (await recv(ada))["type"] == "members"
            await say(bob, "live")
            assert (await next_of(ada, "message"))["text"] == "live"


async def test_since_beyond_the_history_says_not_recovered(port: int) -> None:
    """An id the history no longer holds gets ``recovered: false`` and nothing resent."""
    async with connect(url(port, "name=bob")) as bob:
        await next_of(bob, "members")
        first = await say(bob, "old")
        for n in range(3):  # the history keeps 3: "old" falls out
            await say(bob, f"new{n}")
        async with connect(url(port, f"name=ada&since={first}")) as ada:
            frame = await recv(ada)
            assert (frame["type"], frame["recovered"], frame["missed"]) == ("recovered", False, 0)
            assert (await recv(ada))["type"] == "members"


async def test_since_at_the_newest_message_recovers_nothing_missed(port: int) -> None:
    """Back with the newest id: recovered, none missed."""
    async with connect(url(port, "name=bob")) as bob:
        await next_of(bob, "members")
        newest = await say(bob, "hello")
        async with connect(url(port, f"name=ada&since={newest}")) as ada:
            frame = await recv(ada)
            assert (frame["type"], frame["recovered"], frame["missed"]) == ("recovered", True, 0)
