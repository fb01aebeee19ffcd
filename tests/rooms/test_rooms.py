"""Rooms over loopback: one client that never reads cannot stall 100 that do.

The live clients are the ``websockets`` package's Trio client; the stalled one
is a wsproto peer (tests/rawpeer.py) with a tiny receive buffer that does the
handshake and then stops reading. A broadcast is paced in lockstep: the
sender sends message i and waits until all live clients have it.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable

import pytest
import trio
from helpers import http_get, start_stoppable
from rawpeer import RawPeer
from websockets.trio.client import connect
from wsproto.events import CloseConnection, TextMessage

import wstrio
from wstrio import Ending

LIVE = 100
ROUNDS = 60
SIZE = 2048
CONFIG = wstrio.Config(
    outbox_size=8,
    broadcast_backlog=4 * SIZE,
    socket_send_buffer=8192,
    write_timeout=60,  # a stall-coupled hub would wait this long: far above any bound below
    close_timeout=60,
    ping_interval=None,
    max_message_size=SIZE * 2,
)


class Stage:
    """The room's server side and the events the test paces itself by."""

    def __init__(self, policy: wstrio.SlowConsumerPolicy) -> None:
        self.hub = wstrio.Hub(policy=policy)
        self.room = self.hub.room("r")
        self.all_joined = trio.Event()
        self.members: list[wstrio.Session] = []
        self.got = [0] * ROUNDS
        self.round_done = [trio.Event() for _ in range(ROUNDS)]
        self.port = 0
        self.finished = trio.Event()  # live clients stay connected until the checks ran

    async def member(self, session: wstrio.Session) -> None:
        self.room.join(session)
        self.members.append(session)
        if len(self.members) == LIVE + 1:
            self.all_joined.set()
        async for _ in session:
            pass

    async def sender(self, session: wstrio.Session) -> None:
        async for message in session:
            self.room.broadcast(message)

    def routes(self) -> dict[str, Callable[[wstrio.Session], object]]:
        return {"/member": self.member, "/sender": self.sender}


async def _live_client(port: int, stage: Stage, received: list[str], ready: trio.Event) -> None:
    async with connect(f"ws://127.0.0.1:{port}/member", max_size=SIZE * 2) as ws:
        ready.set()
        for i in range(ROUNDS):
            message = await ws.recv()
            received.append(str(message))
            stage.got[i] += 1
            if stage.got[i] == LIVE:
                stage.round_done[i].set()
        await stage.finished.wait()


def _payload(i: int) -> str:
    return f"{i:06d}".ljust(SIZE, ".")


Check = Callable[[Stage, RawPeer, wstrio.ServerStatistics], Awaitable[None]]


async def _run_room(policy: wstrio.SlowConsumerPolicy, check: Check) -> list[float]:
    """Broadcast ROUNDS messages in lockstep, then ``check`` before the server stops."""
    stage = Stage(policy)
    server = wstrio.Server(stage.routes(), config=CONFIG)
    received: list[list[str]] = [[] for _ in range(LIVE)]
    latencies: list[float] = []
    async with trio.open_nursery() as nursery:
        port, stop = await start_stoppable(nursery, server)
        stage.port = port
        stalled = await RawPeer.connect(port, "/member", receive_buffer=4096)
        for i in range(LIVE):
            ready = trio.Event()
            nursery.start_soon(_live_client, port, stage, received[i], ready)
            await ready.wait()
        with trio.fail_after(20):
            await stage.all_joined.wait()
            async with connect(f"ws://127.0.0.1:{port}/sender", max_size=SIZE * 2) as sender:
                for i in range(ROUNDS):
                    started = trio.current_time()
                    await sender.send(_payload(i))
                    await stage.round_done[i].wait()
                    latencies.append(trio.current_time() - started)
        for i in range(LIVE):
            assert received[i] == [_payload(n) for n in range(ROUNDS)], f"live client {i}"
        await check(stage, stalled, server.statistics())
        await stalled.vanish()
        stage.finished.set()
        stop.cancel()
    return latencies


async def _read_rest(peer: RawPeer, count: int | None) -> tuple[list[str], tuple[int, str] | None]:
    """What the stalled peer finds once it reads: messages, then its close frame (None: EOF)."""
    messages: list[str] = []
    part = ""
    with trio.fail_after(20):
        while count is None or len(messages) < count:
            event = await peer.next_event()
            if event is None:
                return messages, None
            if isinstance(event, CloseConnection):
                return messages, (event.code, event.reason)
            if isinstance(event, TextMessage):  # wsproto hands over frames piece by piece
                part += event.data
                if event.message_finished:
                    messages.append(part)
                    part = ""
    return messages, None


def _report(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50, p99 = statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]
    top = ordered[-1]
    return f"round latency p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {top * 1e3:.2f} ms"


async def test_stalled_member_is_closed_with_1008_and_the_room_goes_on() -> None:
    """Under "close", a member that never reads gets 1008; 100 live ones get every broadcast."""

    async def check(stage: Stage, stalled: RawPeer, stats: wstrio.ServerStatistics) -> None:
        slow = stage.members[0]
        assert slow.closed is not None and slow.closed.ending is Ending.SLOW_CONSUMER
        assert (slow.closed.code, slow.closed.reason) == (1008, "slow consumer")
        assert stage.hub.statistics().slow_closes == 1 and stage.hub.statistics().drops == 0
        assert stats.slow_consumer_closes == 1 and stats.closes_by_code[1008] == 1
        _, metrics = await http_get(stage.port, "/metrics")
        assert b"wstrio_slow_consumer_closes_total 1.0\n" in metrics
        assert stage.room.members == tuple(stage.members[1:])  # the live ones, all still in
        assert all(member.closed is None for member in stage.members[1:])
        messages, close = await _read_rest(stalled, None)
        assert messages == [_payload(n) for n in range(len(messages))]  # a prefix, in order
        if slow.closed.aborted:
            assert close is None  # the writer was stuck mid-frame: TCP abort, no close frame
        else:
            assert close == (1008, "slow consumer")

    latencies = await _run_room("close", check)
    print(_report(latencies))
    assert max(latencies) < CONFIG.write_timeout / 10


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
async def test_stalled_member_has_its_drops_counted(policy: wstrio.SlowConsumerPolicy) -> None:
    """Under a drop policy the stalled member stays; it gets sent minus dropped, in order."""

    async def check(stage: Stage, stalled: RawPeer, stats: wstrio.ServerStatistics) -> None:
        slow = stage.members[0]
        drops = slow.statistics().drops
        assert drops > 0 and slow.closed is None and slow in stage.room
        assert stage.hub.statistics().drops == drops  # nobody else lost anything
        assert stats.slow_consumer_drops == drops
        _, metrics = await http_get(stage.port, "/metrics")
        assert f"wstrio_slow_consumer_drops_total {float(drops)}\n".encode() in metrics
        assert all(member.statistics().drops == 0 for member in stage.members[1:])
        messages, _ = await _read_rest(stalled, ROUNDS - drops)
        serials = [int(message[:6]) for message in messages]
        assert len(messages) == ROUNDS - drops and serials == sorted(set(serials))
        if policy == "drop_newest":
            assert serials == list(range(ROUNDS - drops))  # the oldest were kept
        else:
            assert serials[-1] == ROUNDS - 1  # the newest always got in

    latencies = await _run_room(policy, check)
    print(policy, _report(latencies))
    assert max(latencies) < CONFIG.write_timeout / 10
