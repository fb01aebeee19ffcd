"""Rooms across processes through a real Redis: two hubs, each with its own bus and server
(two processes' worth of state in one Trio run), and real clients over loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
from chatclient import next_of, recv, say
from helpers import start_stoppable
from rawhttp import body, get, read_all, status
from websockets.trio.client import connect

import wstrio
from wstrio._apps.echo import default_routes
from wstrio.testing import RedisServer


@attrs.frozen
class Node:
    port: int
    bus: wstrio.RedisBus
    hub: wstrio.Hub
    stop: trio.CancelScope  # cancels its server and its bus at once (a killed process)


@asynccontextmanager
async def node(redis: RedisServer, *, history: int = 50, **bus: Any) -> AsyncIterator[Node]:
    """A hub with a RedisBus and a chat server on a free port."""
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()
        the_bus = wstrio.RedisBus(redis.url, **bus)
        hub = wstrio.Hub(bus=the_bus)

        async def run_bus(task_status: trio.TaskStatus[None]) -> None:
            with scope:
                await the_bus.run(task_status=task_status)

        await nursery.start(run_bus)
        server = wstrio.Server(default_routes(wstrio.Chat(hub, history=history)))
        the_bus.install(server)
        port, server_scope = await start_stoppable(nursery, server)
        yield Node(port, the_bus, hub, scope)
        scope.cancel()
        server_scope.cancel()


async def fetch(port: int, path: str) -> tuple[int, bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(get(path))
        response = await read_all(stream)
    return status(response), body(response)


def chat(node: Node, query: str) -> Any:
    return connect(f"ws://127.0.0.1:{node.port}/ws/chat?room=x&{query}")


@pytest.mark.parametrize("history", [50, 0])
async def test_messages_cross_processes_in_order(redis: RedisServer, history: int) -> None:
    """A member on A gets every message sent on B, in B's order, with B's ids (with and
    without history); the sender gets its own messages too."""
    async with node(redis, history=history) as a, node(redis, history=history) as b:
        async with chat(a, "name=ada") as ada, chat(b, "name=bob") as bob:
            await next_of(ada, "members")
            await next_of(bob, "members")
            for n in range(30):
                await say(bob, f"m{n}")
            mine = [await next_of(bob, "message") for _ in range(30)]
            theirs = [await next_of(ada, "message") for _ in range(30)]
            assert [f["text"] for f in theirs] == [f"m{n}" for n in range(30)]
            assert [f["id"] for f in theirs] == [f["id"] for f in mine]
        assert a.hub.statistics().received == 31  # 30 messages and bob's join notice
        assert b.bus.statistics().published >= 30


async def test_presence_spans_processes_and_a_killed_process_leaves_it(
    redis: RedisServer,
) -> None:
    """``room.presence()`` lists members of both processes in join order; the members of
    a process that dies without a word drop out within ``presence_ttl``."""
    async with node(redis, presence_ttl=0.6, check_interval=0.1) as a:
        async with node(redis, presence_ttl=0.6, check_interval=0.1) as b:
            async with chat(a, "name=ada") as ada, chat(b, "name=bob") as bob:
                await next_of(ada, "members")
                await next_of(bob, "members")
                room = a.hub.room("x")
                with trio.fail_after(3):  # B's entry is on its way to Redis
                    while await room.presence() != ["ada", "bob"]:  # noqa: ASYNC110 - polls Redis
                        await trio.sleep(0.01)
                b.stop.cancel()  # B's bus stops mid-flight: no goodbye reaches Redis
                with trio.fail_after(3):
                    while await room.presence() != ["ada"]:  # noqa: ASYNC110 - polls Redis
                        await trio.sleep(0.05)


async def test_recovery_on_the_other_process_sends_exactly_what_was_missed(
    redis: RedisServer,
) -> None:
    """A member that saw a message on A and comes back on B with its id gets exactly the
    messages sent meanwhile, in order, then ``recovered``."""
    async with node(redis) as a, node(redis) as b:
        async with chat(b, "name=bob") as bob:
            await next_of(bob, "members")
            async with chat(a, "name=ada") as ada:
                await next_of(ada, "members")
                await say(bob, "seen")
                last = (await next_of(ada, "message"))["id"]
            for text in ("one", "two", "three"):
                await say(bob, text)
            sent = [await next_of(bob, "message") for _ in range(4)][1:]
            async with chat(b, f"name=ada&since={last}") as ada:
                got = [await recv(ada) for _ in range(4)]
                assert [f.get("id") for f in got[:3]] == [f["id"] for f in sent]
                assert [f.get("text") for f in got[:3]] == ["one", "two", "three"]
                assert (got[3]["type"], got[3]["recovered"], got[3]["missed"]) == (
                    "recovered",
                    True,
                    3,
                )


async def test_redis_restart_keeps_local_delivery_and_resubscribes(
    redis: RedisServer,
) -> None:
    """With Redis gone, local members still get local messages and health says degraded;
    once it is back, messages cross again within a bound, and no exception escapes."""
    async with node(redis, check_interval=0.05) as a, node(redis, check_interval=0.05) as b:
        async with chat(a, "name=ada") as ada, chat(a, "name=cy") as cy, chat(b, "name=bob") as bob:
            for ws in (ada, cy, bob):
                await next_of(ws, "members")
            redis.stop()
            with trio.fail_after(5):
                while a.bus.connected:  # noqa: ASYNC110 - polls the bus
                    await trio.sleep(0.01)
            code, health = await fetch(a.port, "/healthz")
            answer = json.loads(health)
            assert code == 200 and answer["status"] == "degraded"
            assert any("Redis" in reason for reason in answer["reasons"])
            await say(ada, "while down")
            assert (await next_of(cy, "message"))["text"] == "while down"
            redis.start()
            restarted = trio.current_time()
            with trio.fail_after(10):
                while True:  # until a message from B reaches A again
                    await say(bob, "ping")
                    with trio.move_on_after(0.2):
                        while (await next_of(ada, "message"))["text"] != "ping":
                            pass
                        break
            bound = trio.current_time() - restarted
            assert a.bus.connected and a.bus.health() is None and bound < 10
            assert json.loads((await fetch(a.port, "/healthz"))[1])["status"] == "ok"
            metrics = (await fetch(a.port, "/metrics"))[1].decode()
            assert "wstrio_bus_connected 1.0" in metrics
            outages = a.bus.statistics().outages
            assert outages >= 1 and f"wstrio_bus_outages_total {float(outages)}" in metrics


async def test_a_long_outage_drops_the_oldest_commands_and_counts_them(
    redis: RedisServer,
) -> None:
    """Past ``buffer`` queued commands the oldest are dropped and counted; nothing raises."""
    async with node(redis, buffer=5, check_interval=0.05) as a:
        async with chat(a, "name=ada") as ada:
            await next_of(ada, "members")
            redis.stop()
            with trio.fail_after(5):
                while a.bus.connected:  # noqa: ASYNC110 - polls the bus
                    await trio.sleep(0.01)
            for n in range(20):
                await say(ada, f"m{n}")
            assert [(await next_of(ada, "message"))["text"] for _ in range(20)] == [
                f"m{n}" for n in range(20)
            ]
            stats = a.bus.statistics()
            assert stats.dropped >= 15 and stats.buffered <= 5


async def test_unreachable_redis_fails_fast_unless_optional(redis: RedisServer) -> None:
    """At start, an unreachable Redis is a one-line BusUnavailable; ``optional`` starts
    degraded instead."""
    redis.stop()
    bus = wstrio.RedisBus(redis.url, connect_timeout=1)
    wstrio.Hub(bus=bus)
    with trio.fail_after(5), pytest.raises(wstrio.BusUnavailable, match="cannot reach Redis"):
        await bus.run()
    optional = wstrio.RedisBus(redis.url, connect_timeout=1, optional=True)
    wstrio.Hub(bus=optional)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(5):
            await nursery.start(optional.run)
        assert not optional.connected and "Redis" in (optional.health() or "")
        nursery.cancel_scope.cancel()
