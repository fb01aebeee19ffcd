"""Hypothesis: any mix of handler and peer actions ends with one close, one outcome, no leak."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from fakes import FakeTransport
from helpers import count_tasks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wstrio
from wstrio import CLOSE_TABLE, Ending
from wstrio._conn.supervisor import Supervisor

CONFIG = wstrio.Config(
    ping_interval=3, ping_timeout=2, close_timeout=2, write_timeout=1, shutdown_timeout=2,
    inbox_size=2, outbox_size=2,
)

messages = st.one_of(st.text(max_size=8), st.binary(max_size=8), st.just("x" * 40))
codes = st.sampled_from([1000, 1001, 1008, 3000, 4000, 4999])
pause = st.tuples(st.just("sleep"), st.sampled_from([0, 0.5, 1.5, 4]))

handler_action = st.one_of(
    st.tuples(st.just("send"), messages),
    st.tuples(st.just("send_nowait"), messages),
    st.tuples(st.just("receive")),
    pause,
    st.tuples(st.just("close"), codes),
    st.tuples(st.just("raise_close"), codes),
    st.tuples(st.just("raise")),
)
peer_action = st.one_of(
    st.tuples(st.just("send"), messages),
    st.tuples(st.just("close"), codes),
    st.tuples(st.just("vanish")),
    st.tuples(st.just("stop_reading")),
    st.tuples(st.just("stop_ponging")),
    st.tuples(st.just("ignore_close")),
    st.tuples(st.just("go_away")),
    pause,
)


async def scenario(handler_script: list[Any], peer_script: list[Any]) -> None:
    fake = FakeTransport(max_message_size=32)
    accepted: list[object] = []
    raised: list[str] = []

    async def handler(session: wstrio.Session) -> None:
        for action, *args in handler_script:
            try:
                if action == "send":
                    await session.send(args[0])
                    accepted.append(args[0])
                elif action == "send_nowait":
                    try:
                        session.send_nowait(args[0])
                        accepted.append(args[0])
                    except wstrio.OutboxFull:
                        pass
                elif action == "receive":
                    await session.receive()
                elif action == "sleep":
                    await trio.sleep(args[0])
                elif action == "close":
                    await session.close(args[0])
                elif action == "raise_close":
                    raise wstrio.CloseConnection(args[0])
                elif action == "raise":
                    raised.append("raise")
                    raise RuntimeError("scripted")
            except wstrio.ConnectionClosed:
                return

    supervisor = Supervisor(fake, handler, CONFIG)

    async def peer() -> None:
        for action, *args in peer_script:
            if action == "send":
                fake.peer_send(args[0])
            elif action == "close":
                fake.peer_close(args[0])
            elif action == "vanish":
                fake.peer_vanish()
            elif action == "stop_reading":
                fake.stop_reading()
            elif action == "stop_ponging":
                fake.answers_pings = False
            elif action == "ignore_close":
                fake.answers_close = False
            elif action == "go_away":
                supervisor.go_away()
            elif action == "sleep":
                await trio.sleep(args[0])
        await trio.sleep(10)
        supervisor.go_away()  # a connection nobody ends would rightly run forever

    before = count_tasks()
    with trio.fail_after(600):  # virtual seconds: a hang shows up as TooSlowError
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer)
            closed = await supervisor.run()
            nursery.cancel_scope.cancel()
    assert count_tasks() == before, "a task outlived its supervisor"

    # exactly one outcome, the same everywhere
    assert closed == supervisor.closed == supervisor.session.closed
    assert supervisor.wire_closed.is_set()
    # at most one close frame; exactly one unless nothing could or should be sent
    assert len(fake.close_frames) <= 1
    silent = closed.ending in (Ending.PEER_VANISHED, Ending.WRITE_TIMEOUT) or closed.aborted
    if not silent:
        assert fake.close_frames == [(closed.code, closed.reason)]
    if closed.ending in (Ending.PEER_VANISHED, Ending.WRITE_TIMEOUT):
        assert fake.close_frames == []
    # no surprise exception ever reached the handler as an error
    if closed.ending is Ending.HANDLER_ERROR:
        assert raised
    # what the handler handed over is delivered, in order, while the peer reads
    if CLOSE_TABLE[closed.ending].drain and fake.reading:
        assert fake.received == accepted
        assert not closed.aborted or not fake.answers_close
    else:
        assert fake.received == accepted[: len(fake.received)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    handler_script=st.lists(handler_action, max_size=8),
    peer_script=st.lists(peer_action, max_size=8),
)
def test_any_script_ends_with_one_close_one_outcome_no_leak(
    handler_script: list[Any], peer_script: list[Any]
) -> None:
    """Any sequence of sends, receives, closes and peer actions ends cleanly, once."""
    trio.run(
        scenario, handler_script, peer_script,
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
