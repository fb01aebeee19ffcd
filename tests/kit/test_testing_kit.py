"""wstrio.testing tests itself: a real server and client over memory streams, on MockClock."""

from __future__ import annotations

import time

import pytest
import trio
import trio.testing

import wstrio
from wstrio import Ending
from wstrio.testing import open_memory_server

SERVER = wstrio.Config(
    ping_interval=30, ping_timeout=30, close_timeout=10, write_timeout=10, max_message_size=1000
)
QUIET = wstrio.Config(ping_interval=None)


class Recorder:
    """Routes whose handlers remember their sessions."""

    def __init__(self) -> None:
        self.sessions: list[wstrio.Session] = []
        self.started = trio.Event()  # a handler has begun (the client may have its 101 before)

    def _begin(self, session: wstrio.Session) -> None:
        self.sessions.append(session)
        self.started.set()

    async def echo(self, session: wstrio.Session) -> None:
        self._begin(session)
        async for message in session:
            await session.send(message)

    async def flood(self, session: wstrio.Session) -> None:
        self._begin(session)
        while True:
            await session.send("y" * 1000)

    def routes(self) -> wstrio.Server:
        return {"/echo": self.echo, "/flood": self.flood}  # type: ignore[return-value]

    async def ended(self) -> wstrio.Closed:
        with trio.fail_after(600):  # virtual seconds under autojump_clock
            await self.started.wait()
            return await self.sessions[-1].wait_closed()


async def test_echo_over_memory_streams() -> None:
    """A client session from server.connect talks to the real server stack."""
    app = Recorder()
    async with open_memory_server(app.routes()) as server:
        async with server.connect("/echo?x=1", config=QUIET) as client:
            await client.send("hello")
            assert await client.receive() == "hello"
            await client.send(b"\x00")
            assert await client.receive() == b"\x00"
        assert client.closed is not None and client.closed.code == 1000
        assert app.sessions[0].query == {"x": "1"} and app.sessions[0].remote is None
        assert (await app.ended()).code == 1000
        assert server.statistics().connections_total == 1


async def test_30_second_heartbeat_timeout_runs_in_under_a_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A peer that stops answering pings is closed with 1011 after 30 + 30 virtual seconds."""
    app = Recorder()
    wall = time.perf_counter()
    async with open_memory_server(app.routes(), config=SERVER) as server:
        async with server.connect("/echo", config=QUIET) as client:
            started = trio.current_time()
            server.faults(client).stop_reading()
            closed = await app.ended()
            elapsed = trio.current_time() - started
    assert closed.ending is Ending.KEEPALIVE_TIMEOUT and closed.code == 1011
    assert 60 <= elapsed < 61 + SERVER.close_timeout
    assert time.perf_counter() - wall < 1.0


async def test_vanishing_client_is_1006_on_the_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A client that vanishes without a close frame ends its server session with 1006."""
    app = Recorder()
    async with open_memory_server(app.routes(), config=SERVER) as server:
        async with server.connect("/echo", config=QUIET) as client:
            await client.send("x")
            assert await client.receive() == "x"
            server.faults(client).vanish()
            closed = await app.ended()
    assert (closed.ending, closed.code) == (Ending.PEER_VANISHED, 1006)


async def test_malformed_frame_gets_1002() -> None:
    """A frame with a reserved opcode closes the connection with 1002, both sides agreeing."""
    app = Recorder()
    async with open_memory_server(app.routes(), config=SERVER) as server:
        async with server.connect("/echo", config=QUIET) as client:
            await server.faults(client).send_malformed_frame()
            with trio.fail_after(5), pytest.raises(wstrio.ConnectionClosed) as caught:
                await client.receive()
            assert caught.value.code == 1002
    assert (await app.ended()).ending is Ending.PROTOCOL_ERROR


async def test_oversized_message_gets_1009() -> None:
    """A message over the server's max_message_size closes with 1009."""
    app = Recorder()
    async with open_memory_server(app.routes(), config=SERVER) as server:
        async with server.connect("/echo", config=QUIET) as client:
            await server.faults(client).send_message_of_size(1001)
            with trio.fail_after(5), pytest.raises(wstrio.ConnectionClosed) as caught:
                await client.receive()
            assert caught.value.code == 1009
    assert (await app.ended()).ending is Ending.MESSAGE_TOO_BIG


async def test_client_that_stops_reading_trips_write_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Bounded memory buffers push back: a flood to a non-reader ends in a write timeout."""
    app = Recorder()
    config = wstrio.Config(ping_interval=None, write_timeout=10, close_timeout=5)
    async with open_memory_server(app.routes(), config=config, buffer=4096) as server:
        async with server.connect("/flood", config=QUIET) as client:
            server.faults(client).stop_reading()
            closed = await app.ended()
    assert (closed.ending, closed.code, closed.aborted) == (Ending.WRITE_TIMEOUT, 1006, False)


async def test_session_ping_measures_a_round_trip(autojump_clock: trio.testing.MockClock) -> None:
    """session.ping() returns the round trip, sets latency, and fails once closed."""
    app = Recorder()
    async with open_memory_server(app.routes(), config=SERVER) as server:
        async with server.connect("/echo", config=QUIET) as client:
            rtt = await client.ping()
            assert rtt >= 0 and client.latency == rtt
        with pytest.raises(wstrio.ConnectionClosed):
            await client.ping()
