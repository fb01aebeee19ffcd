"""The close-code table, row by row, against the in-memory fake on MockClock."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from fakes import FakeTransport
from helpers import count_tasks

import wstrio
from wstrio import Closed, Ending
from wstrio._conn.supervisor import Supervisor

CONFIG = wstrio.Config(ping_interval=20, ping_timeout=10, close_timeout=5, write_timeout=3)
Handler = Callable[[wstrio.Session], Awaitable[object]]


async def run(
    handler: Handler,
    fake: FakeTransport | None = None,
    config: wstrio.Config = CONFIG,
    accepts: type[str] | type[bytes] | None = None,
) -> tuple[Closed, FakeTransport]:
    fake = fake or FakeTransport()
    before = count_tasks()
    closed = await Supervisor(fake, handler, config, accepts=accepts).run()
    assert count_tasks() == before, "a task outlived its supervisor"
    return closed, fake


async def wait_forever(session: wstrio.Session) -> None:
    async for _ in session:
        pass


async def test_handler_returns_closes_1000_after_flushing(autojump_clock: trio.abc.Clock) -> None:
    """A handler that returns gets 1000, after every message it sent is flushed."""

    async def handler(session: wstrio.Session) -> None:
        await session.send("one")
        session.send_nowait(b"two")

    closed, fake = await run(handler)
    assert closed == Closed(Ending.HANDLER_RETURNED, 1000, "")
    assert fake.wire == ["one", b"two", ("close", 1000, "")]


async def test_session_close_sends_its_code_and_returns(autojump_clock: trio.abc.Clock) -> None:
    """session.close(code, reason) sends that code and returns to the handler."""
    after_close = []

    async def handler(session: wstrio.Session) -> None:
        await session.send("bye")
        await session.close(4000, "done here")
        after_close.append(session.closed)
        with pytest.raises(wstrio.ConnectionClosed) as info:
            await session.send("too late")
        assert (info.value.code, info.value.reason) == (4000, "done here")

    closed, fake = await run(handler)
    assert closed == Closed(Ending.HANDLER_CLOSED, 4000, "done here")
    assert after_close == [closed]
    assert fake.wire == ["bye", ("close", 4000, "done here")]


async def test_raising_close_connection_sends_its_code(autojump_clock: trio.abc.Clock) -> None:
    """Raising CloseConnection(code, reason) closes with that code and reason."""

    async def handler(session: wstrio.Session) -> None:
        raise wstrio.CloseConnection(4001, "go")

    closed, fake = await run(handler)
    assert closed == Closed(Ending.HANDLER_CLOSED, 4001, "go")
    assert fake.close_frames == [(4001, "go")]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
async def test_codes_not_sendable_are_refused(code: int) -> None:
    """Codes that may not go on the wire are refused with ValueError."""
    with pytest.raises(ValueError, match=str(code)):
        wstrio.CloseConnection(code)

    async def handler(session: wstrio.Session) -> None:
        with pytest.raises(ValueError):
            await session.close(code)

    closed, _ = await run(handler)
    assert closed.code == 1000


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1008, 1011, 1012, 1014, 3000, 4999])
def test_sendable_codes_are_accepted(code: int) -> None:
    """Defined protocol codes and the 3000-4999 ranges may be sent."""
    assert wstrio.CloseConnection(code, "ok").code == code


def test_reason_longer_than_123_bytes_is_refused() -> None:
    """A close reason must fit a control frame: 123 bytes of UTF-8."""
    wstrio.CloseConnection(1000, "é" * 61)
    with pytest.raises(ValueError, match="123"):
        wstrio.CloseConnection(1000, "é" * 62)


@pytest.mark.parametrize("code", [1000, 1001, 1005])
async def test_peer_close_ends_async_for_quietly(autojump_clock: trio.abc.Clock, code: int) -> None:
    """A peer's 1000/1001 (or codeless) close ends `async for` after queued messages."""
    seen: list[object] = []

    async def handler(session: wstrio.Session) -> None:
        async for message in session:
            seen.append(message)
        seen.append("loop ended")

    fake = FakeTransport()
    fake.peer_send("a")
    fake.peer_send(b"b")
    fake.peer_close(code, "bye")
    closed, fake = await run(handler, fake)
    assert seen == ["a", b"b", "loop ended"]
    assert closed == Closed(Ending.PEER_CLOSED, code, "bye")
    assert fake.close_frames == [(code, "bye")]  # the echo, and nothing more


async def test_peer_close_with_other_code_raises_connection_closed(
    autojump_clock: trio.abc.Clock,
) -> None:
    """receive() raises ConnectionClosed carrying the peer's code and reason."""
    caught: list[wstrio.ConnectionClosed] = []

    async def handler(session: wstrio.Session) -> None:
        try:
            await session.receive()
        except wstrio.ConnectionClosed as exc:
            caught.append(exc)
            raise

    fake = FakeTransport()
    fake.peer_close(4002, "app says no")
    closed, fake = await run(handler, fake)
    assert [(e.code, e.reason) for e in caught] == [(4002, "app says no")]
    assert closed == Closed(Ending.PEER_CLOSED, 4002, "app says no")
    assert fake.close_frames == [(4002, "app says no")]


async def test_peer_vanishing_sends_nothing_and_records_1006(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A peer that drops TCP without a close frame: nothing sent, outcome 1006."""
    fake = FakeTransport()
    fake.peer_send("last words")
    fake.peer_vanish()
    closed, fake = await run(wait_forever, fake)
    assert closed == Closed(Ending.PEER_VANISHED, 1006, "")
    assert fake.close_frames == []


async def test_handler_error_closes_1011_and_logs_traceback(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler that raises gets 1011 with a generic reason; the traceback is logged."""

    async def handler(session: wstrio.Session) -> None:
        await session.send("partial")
        raise RuntimeError("secret detail")

    with caplog.at_level(logging.ERROR, logger="wstrio"):
        closed, fake = await run(handler)
    assert closed == Closed(Ending.HANDLER_ERROR, 1011, "internal error")
    assert fake.wire == ["partial", ("close", 1011, "internal error")]
    assert "secret detail" in caplog.text and "Traceback" in caplog.text


async def test_no_pong_closes_1011_keepalive_timeout(autojump_clock: trio.abc.Clock) -> None:
    """No pong within ping_timeout: 1011 "keepalive timeout", in virtual time."""
    fake = FakeTransport()
    fake.answers_pings = False
    start, wall = trio.current_time(), time.perf_counter()
    closed, fake = await run(wait_forever, fake)
    assert closed == Closed(Ending.KEEPALIVE_TIMEOUT, 1011, "keepalive timeout")
    assert fake.close_frames == [(1011, "keepalive timeout")]
    assert trio.current_time() - start == pytest.approx(20 + 10)
    assert time.perf_counter() - wall < 1.0


async def test_heartbeat_records_latency(autojump_clock: trio.abc.Clock) -> None:
    """Each pong's round trip becomes the session's latency."""
    latencies: list[float | None] = []

    async def handler(session: wstrio.Session) -> None:
        latencies.append(session.latency)
        await trio.sleep(45)
        latencies.append(session.latency)

    closed, fake = await run(handler, FakeTransport(pong_delay=0.25))
    assert latencies == [None, pytest.approx(0.25)]
    assert fake.pings == 2
    assert closed.code == 1000


async def test_write_timeout_aborts_and_records_1006(autojump_clock: trio.abc.Clock) -> None:
    """A peer that stops reading: the send times out, TCP is aborted, outcome 1006."""

    async def handler(session: wstrio.Session) -> None:
        await session.send("never read")
        await wait_forever(session)

    fake = FakeTransport()
    fake.stop_reading()
    start = trio.current_time()
    closed, fake = await run(handler, fake)
    assert closed == Closed(Ending.WRITE_TIMEOUT, 1006, "write timeout")
    assert fake.aborted and fake.close_frames == []
    assert trio.current_time() - start == pytest.approx(CONFIG.write_timeout)


async def test_message_too_big_closes_1009(autojump_clock: trio.abc.Clock) -> None:
    """An incoming message over max_message_size closes with 1009."""
    fake = FakeTransport(max_message_size=10)
    fake.peer_send("x" * 11)
    closed, fake = await run(wait_forever, fake)
    assert closed == Closed(Ending.MESSAGE_TOO_BIG, 1009, "message too big")
    assert fake.close_frames == [(1009, "message too big")]


@pytest.mark.parametrize(("accepts", "wrong"), [(str, b"binary"), (bytes, "text")])
async def test_wrong_message_type_closes_1003(
    autojump_clock: trio.abc.Clock, accepts: type[str] | type[bytes], wrong: str | bytes
) -> None:
    """A text-only (binary-only) handler that gets the other type closes with 1003."""
    fake = FakeTransport()
    fake.peer_send(accepts())
    fake.peer_send(wrong)
    closed, fake = await run(wait_forever, fake, accepts=accepts)
    assert closed == Closed(Ending.UNSUPPORTED_DATA, 1003, "unsupported data")
    assert fake.close_frames == [(1003, "unsupported data")]


async def test_going_away_closes_1001(autojump_clock: trio.abc.Clock) -> None:
    """go_away() (server shutting down) sends 1001; `async for` ends quietly."""
    fake = FakeTransport()
    supervisor = Supervisor(fake, wait_forever, CONFIG)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.run)
        await trio.sleep(1)
        supervisor.go_away()
    assert supervisor.closed == Closed(Ending.GOING_AWAY, 1001, "going away")
    assert fake.close_frames == [(1001, "going away")]


async def test_cancelled_supervisor_still_sends_1001(autojump_clock: trio.abc.Clock) -> None:
    """Cancelling a supervisor from outside closes with 1001, shielded, then re-raises."""
    fake = FakeTransport()
    supervisor = Supervisor(fake, wait_forever, CONFIG)
    with trio.move_on_after(1) as scope:
        await supervisor.run()
    assert scope.cancelled_caught
    assert supervisor.closed == Closed(Ending.GOING_AWAY, 1001, "going away")
    assert fake.close_frames == [(1001, "going away")]


async def test_silent_peer_is_aborted_after_close_timeout(autojump_clock: trio.abc.Clock) -> None:
    """A peer that never answers our close frame is aborted after close_timeout."""

    async def handler(session: wstrio.Session) -> None:
        return

    fake = FakeTransport()
    fake.answers_close = False
    start = trio.current_time()
    closed, fake = await run(handler, fake)
    assert closed == Closed(Ending.HANDLER_RETURNED, 1000, "", aborted=True)
    assert fake.close_frames == [(1000, "")] and fake.aborted
    assert trio.current_time() - start == pytest.approx(CONFIG.close_timeout)


async def test_handler_that_ignores_peer_close_is_cancelled_after_grace(
    autojump_clock: trio.abc.Clock,
) -> None:
    """After the peer closed, a handler busy elsewhere is cancelled after close_timeout."""

    async def handler(session: wstrio.Session) -> None:
        await trio.sleep_forever()

    fake = FakeTransport()
    fake.peer_close(1000)
    start = trio.current_time()
    closed, _ = await run(handler, fake)
    assert closed.ending is Ending.PEER_CLOSED
    assert trio.current_time() - start == pytest.approx(CONFIG.close_timeout)


async def test_send_nowait_raises_outbox_full(autojump_clock: trio.abc.Clock) -> None:
    """send_nowait raises OutboxFull once outbox_size messages wait."""
    config = wstrio.Config(outbox_size=2, write_timeout=1, ping_interval=None)
    raised = []

    async def handler(session: wstrio.Session) -> None:
        session.send_nowait("1")
        await trio.sleep(0.1)  # the writer takes "1" and blocks on the wire
        session.send_nowait("2")
        session.send_nowait("3")
        assert session.statistics().outbox_used == 2
        with pytest.raises(wstrio.OutboxFull):
            session.send_nowait("4")
        raised.append(True)

    fake = FakeTransport()
    fake.stop_reading()
    closed, _ = await run(handler, fake, config)
    assert raised == [True]
    assert closed.ending is Ending.HANDLER_RETURNED and closed.aborted


async def test_statistics_count_messages_and_utf8_bytes(autojump_clock: trio.abc.Clock) -> None:
    """statistics() counts messages and payload bytes both ways (UTF-8 for text)."""
    stats: list[wstrio.SessionStatistics] = []

    async def handler(session: wstrio.Session) -> None:
        for _ in range(3):
            await session.send(await session.receive())
        await trio.sleep(1)  # virtual: the writer flushes meanwhile
        stats.append(session.statistics())

    fake = FakeTransport()
    for message in ("héllo", b"\x00" * 10, "abc"):
        fake.peer_send(message)
    await run(handler, fake)
    (s,) = stats
    assert (s.messages_in, s.bytes_in) == (3, 6 + 10 + 3)
    assert (s.messages_out, s.bytes_out) == (3, 6 + 10 + 3)
    assert (s.inbox_size, s.outbox_size) == (CONFIG.inbox_size, CONFIG.outbox_size)


async def test_session_exposes_handshake_info(autojump_clock: trio.abc.Clock) -> None:
    """path, query, headers, remote and subprotocol come from the handshake."""
    from wstrio._conn.headers import Headers
    from wstrio._conn.transport import ConnectionInfo

    info = ConnectionInfo(
        path="/ws/chat", query="room=lobby&name=ann&room=x",
        headers=Headers((("Origin", "http://a"), ("X-Two", "1"), ("x-two", "2"))),
        remote=("127.0.0.1", 5555), subprotocol="chat.v1",
    )
    seen = []

    async def handler(session: wstrio.Session) -> None:
        seen.append((session.path, dict(session.query), session.headers.get("origin"),
                     session.headers.get_all("X-TWO"), session.remote, session.subprotocol))

    await run(handler, FakeTransport(info=info))
    assert seen == [("/ws/chat", {"room": "lobby", "name": "ann"}, "http://a", ["1", "2"],
                     ("127.0.0.1", 5555), "chat.v1")]


async def test_going_away_before_run_still_closes_1001(autojump_clock: trio.abc.Clock) -> None:
    """A supervisor told to go away before it runs still sends 1001, once."""
    fake = FakeTransport()
    supervisor = Supervisor(fake, wait_forever, CONFIG)
    supervisor.go_away()
    closed = await supervisor.run()
    assert closed == Closed(Ending.GOING_AWAY, 1001, "going away")
    assert fake.close_frames == [(1001, "going away")]


async def test_stale_write_deadline_does_not_abort_a_reading_peer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A write deadline that expires while the writer is idle costs nothing."""
    config = wstrio.Config(ping_interval=None, close_timeout=5, write_timeout=3)

    async def handler(session: wstrio.Session) -> None:
        await session.send("one")
        await trio.sleep(2.9)
        session.send_nowait("two")  # wakes the writer...
        autojump_clock.jump(0.2)  # ...in the same pass as the old deadline expires
        await trio.sleep(1)
        await session.send("three")

    closed, fake = await run(handler, config=config)
    assert closed == Closed(Ending.HANDLER_RETURNED, 1000, "")
    assert fake.wire == ["one", "two", "three", ("close", 1000, "")]


async def test_close_connection_from_a_child_task_is_honoured(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """CloseConnection raised in the handler's own nursery still closes with its code."""

    async def handler(session: wstrio.Session) -> None:
        async def child() -> None:
            raise wstrio.CloseConnection(4000, "bye")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)
            await trio.sleep_forever()

    closed, fake = await run(handler)
    assert closed == Closed(Ending.HANDLER_CLOSED, 4000, "bye")
    assert fake.close_frames == [(4000, "bye")]
    assert "raised" not in caplog.text


async def test_peer_close_seen_by_a_child_task_is_not_an_error(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """ConnectionClosed in a group, after cleanup sends in a grace cancel, is no error."""

    async def handler(session: wstrio.Session) -> None:
        async def reader() -> None:
            try:
                while True:
                    await session.receive()
            finally:
                await session.send("bye")  # raises ConnectionClosed: the peer is gone

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.sleep_forever()

    fake = FakeTransport()
    fake.peer_close(1000)
    closed, _ = await run(handler, fake)
    assert closed == Closed(Ending.PEER_CLOSED, 1000, "")
    assert "raised" not in caplog.text


async def test_keyboard_interrupt_in_a_handler_is_passed_on(
    autojump_clock: trio.abc.Clock,
) -> None:
    """KeyboardInterrupt from a handler is not swallowed nor wrapped; 1011 is still sent."""

    async def handler(session: wstrio.Session) -> None:
        raise KeyboardInterrupt

    fake = FakeTransport()
    with pytest.raises(KeyboardInterrupt):
        await Supervisor(fake, handler, CONFIG).run()
    assert fake.close_frames == [(1011, "internal error")]
