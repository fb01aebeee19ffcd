"""``serve --redis`` as real processes: two servers standing in for two hosts, and
``--workers 2`` on one port, sharing the chat's rooms, member lists and history."""

from __future__ import annotations

import os
import signal
from typing import Any

import trio
from chatclient import next_of, recv, say
from conftest import StartPool
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import ClientConnection, connect
from workerpool import worker_pids

from wstrio.testing import RedisServer


def chat(port: int, query: str) -> Any:
    return connect(f"ws://127.0.0.1:{port}/ws/chat?room=x&{query}")


async def test_two_servers_share_rooms_presence_and_history(
    start_pool: StartPool, redis: RedisServer
) -> None:
    """Two ``serve --redis`` processes: a message on one reaches the other; the member list
    spans both; back on the other server with ``since``, a member gets exactly what it
    missed, then ``recovered``."""
    a = await start_pool("--redis", redis.url)
    b = await start_pool("--redis", redis.url)
    async with chat(a.port, "name=ada") as ada:
        await next_of(ada, "members")  # ada is in before bob: the list is in join order
        async with chat(b.port, "name=bob") as bob:
            await next_of(bob, "members")
            await chat_across(ada, bob)
            last = (await next_of(ada, "message"))["id"]
    async with chat(a.port, "name=bob") as bob:
        await next_of(bob, "members")
        for text in ("one", "two"):
            await say(bob, text)
            assert (await next_of(bob, "message"))["text"] == text  # back through Redis
        async with chat(b.port, f"name=ada&since={last}") as ada:
            got = [await recv(ada) for _ in range(3)]
            assert [f.get("text") for f in got[:2]] == ["one", "two"]
            assert (got[2]["type"], got[2]["recovered"], got[2]["missed"]) == ("recovered", True, 2)


async def chat_across(ada: ClientConnection, bob: ClientConnection) -> None:
    """ada (on A) and bob (on B) hear each other; a newcomer on B lists both."""
    await say(ada, "hi")
    assert (await next_of(bob, "message"))["text"] == "hi"  # ada's presence went first
    async with chat(_port_of(bob), "name=cy") as cy:
        assert (await next_of(cy, "members"))["members"] == ["ada", "bob", "cy"]
    await say(bob, "seen")
    assert (await next_of(ada, "message"))["text"] == "hi"


def _port_of(ws: ClientConnection) -> int:
    return int(ws.remote_address[1])


async def test_a_killed_worker_comes_back_and_its_members_recover(
    start_pool: StartPool, redis: RedisServer
) -> None:
    """``--workers 2 --redis``: kill -9 of one worker drops only its members; the others
    keep chatting across both; the parent restarts it; a dropped member comes back with
    ``since`` and gets what it missed."""
    pool = await start_pool("--workers", "2", "--redis", redis.url)
    pids = await worker_pids(pool.port)
    victim = pids[1]
    async with trio.open_nursery() as nursery:
        members: list[ClientConnection] = []
        for n in range(8):  # the kernel hashes each connection to one worker or the other
            members.append(await nursery.start(_member, pool.port, f"m{n}"))
        await say(members[0], "before")
        last = [(await next_of(ws, "message"))["id"] for ws in members]
        os.kill(victim, signal.SIGKILL)
        dropped: list[int] = []

        async def watch(n: int) -> None:
            with trio.move_on_after(2):  # the killed worker's members see EOF at once
                await members[n].wait_closed()
                dropped.append(n)

        async with trio.open_nursery() as watching:
            for n in range(len(members)):
                watching.start_soon(watch, n)
        alive = [n for n in range(len(members)) if n not in dropped]
        assert alive and dropped, (alive, dropped)
        speaker = members[alive[0]]
        await say(speaker, "while one is down")
        for n in alive:  # every survivor, on either worker, gets it
            while (await next_of(members[n], "message"))["text"] != "while one is down":
                pass
        with trio.fail_after(15):  # the parent restarts the killed worker
            while victim in (await worker_pids(pool.port)).values():  # noqa: ASYNC110
                await trio.sleep(0.05)
        back = dropped[0]
        async with chat(pool.port, f"name=back&since={last[back]}") as ws:
            texts = []
            while (frame := await recv(ws))["type"] != "recovered":
                texts.append(frame["text"])
            assert frame["recovered"] is True and "while one is down" in texts
            assert texts.count("while one is down") == 1
        nursery.cancel_scope.cancel()


async def _member(port: int, name: str, task_status: trio.TaskStatus[ClientConnection]) -> None:
    try:
        async with chat(port, f"name={name}") as ws:
            await next_of(ws, "members")
            task_status.started(ws)
            await trio.sleep_forever()
    except ConnectionClosed:
        pass
