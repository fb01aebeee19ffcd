"""The protections' Config fields, and the per-session message rate limit (a token bucket).

The rate tests run the real server over in-memory streams on Trio's ``MockClock``
without autojump: time moves only when a test jumps it, so the bucket is exact.
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

import wstrio
from wstrio import Ending
from wstrio._conn.ratelimit import TokenBucket, bucket_for, burst_of

QUIET = wstrio.Config(ping_interval=None)


def test_protection_defaults() -> None:
    """Per-address and rate limits are off; frames get 30 s; TCP keepalive after 60 s."""
    config = wstrio.Config()
    assert config.max_connections_per_ip is None
    assert (config.max_messages_per_second, config.message_burst) == (None, None)
    assert config.rate_limit_policy == "close"
    assert (config.frame_timeout, config.tcp_keepalive) == (30.0, 60.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_connections_per_ip", 0), ("max_connections_per_ip", 1.5),
        ("max_connections_per_ip", True), ("max_connections_per_ip", "10"),
        ("max_messages_per_second", 0), ("max_messages_per_second", -1),
        ("max_messages_per_second", math.nan), ("max_messages_per_second", math.inf),
        ("message_burst", 0), ("message_burst", 2.5),
        ("rate_limit_policy", "block"), ("rate_limit_policy", None),
        ("frame_timeout", 0), ("frame_timeout", -1), ("frame_timeout", math.nan),
        ("frame_timeout", "30"),
        ("tcp_keepalive", 0), ("tcp_keepalive", math.inf), ("tcp_keepalive", 40000),
        ("tcp_keepalive", False),
    ],
)  # fmt: skip
def test_nonsense_protection_values_are_refused(field: str, value: object) -> None:
    """Zero, negative, NaN, infinite and wrongly typed values are refused, naming the field."""
    with pytest.raises(ValueError, match=f"Config.{field}"):
        wstrio.Config(**{field: value})  # type: ignore[arg-type]


def test_protections_can_be_turned_off_or_set() -> None:
    """None turns each limit off; sensible values are kept as given."""
    off = wstrio.Config(frame_timeout=None, tcp_keepalive=None)
    assert off.frame_timeout is None and off.tcp_keepalive is None
    on = wstrio.Config(max_connections_per_ip=3, max_messages_per_second=0.5, message_burst=2,
                       rate_limit_policy="drop", frame_timeout=0.25, tcp_keepalive=1)  # fmt: skip
    assert (on.max_connections_per_ip, on.message_burst, on.rate_limit_policy) == (3, 2, "drop")


def test_burst_defaults_to_one_second_of_messages() -> None:
    """message_burst=None: ceil(rate), at least one; an explicit burst wins."""
    assert burst_of(wstrio.Config(max_messages_per_second=10)) == 10
    assert burst_of(wstrio.Config(max_messages_per_second=2.5)) == 3
    assert burst_of(wstrio.Config(max_messages_per_second=0.1)) == 1
    assert burst_of(wstrio.Config(max_messages_per_second=10, message_burst=50)) == 50
    assert bucket_for(wstrio.Config(), 0.0) is None


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    """A full bucket passes ``size`` messages at once, then one per 1/rate seconds."""
    bucket = TokenBucket(rate=2.0, size=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(100.4)  # 0.8 of a token
    assert bucket.take(100.5)  # a whole one
    assert not bucket.take(100.5)
    assert [bucket.take(200.0) for _ in range(4)] == [True, True, True, False]  # capped at 3


def test_token_bucket_over_a_long_run_keeps_the_rate() -> None:
    """Offered 10 messages a second for 100 s at a rate of 4 with a burst of 5: 405 pass."""
    bucket = TokenBucket(rate=4.0, size=5, now=0.0)
    passed = sum(bucket.take(n / 10) for n in range(1000))
    assert passed == 5 + 4 * 100 - 1  # the burst, then 4 a second (the last 0.1 s: none)


def echo_into(sessions: list[wstrio.Session]) -> wstrio.Route:
    async def echo(session: wstrio.Session) -> None:
        sessions.append(session)
        async for message in session:
            await session.send(message)

    return wstrio.Route(echo)


async def test_rate_limit_close_sends_1008(mock_clock: trio.testing.MockClock) -> None:
    """Past the burst, with no time passing, the next message closes with 1008 "rate limit";
    the messages before it were delivered, it was not; it is counted everywhere."""
    sessions: list[wstrio.Session] = []
    config = wstrio.Config(ping_interval=None, max_messages_per_second=1, message_burst=3)
    routes = {"/e": echo_into(sessions)}
    async with wstrio.testing.open_memory_server(routes, config=config) as server:
        async with server.connect("/e", config=QUIET) as client:
            for text in ("1", "2", "3"):
                await client.send(text)
                assert await client.receive() == text
            await client.send("4")
            with pytest.raises(wstrio.ConnectionClosed) as info:
                await client.receive()
            assert (info.value.code, info.value.reason) == (1008, "rate limit")
        await server.wait_idle()
        (session,) = sessions
        assert session.closed is not None and session.closed.ending is Ending.RATE_LIMITED
        stats = session.statistics()
        assert (stats.messages_in, stats.rate_limited) == (3, 1)
        totals = server.statistics()
        assert (totals.rate_limited, totals.rate_limit_closes) == (1, 1)
        assert totals.closes_by_code == {1008: 1} and totals.messages_in == 3


async def test_rate_limit_drop_drops_and_refills(mock_clock: trio.testing.MockClock) -> None:
    """Under "drop", a message past the rate is dropped and counted, the session goes on,
    and the bucket refills with time: one token per 1/rate seconds."""
    sessions: list[wstrio.Session] = []
    config = wstrio.Config(ping_interval=None, max_messages_per_second=2, message_burst=2,
                           rate_limit_policy="drop")  # fmt: skip
    routes = {"/e": echo_into(sessions)}
    async with wstrio.testing.open_memory_server(routes, config=config) as server:
        async with server.connect("/e", config=QUIET) as client:
            for text in ("a", "b", "c", "d"):
                await client.send(text)
            assert [await client.receive(), await client.receive()] == ["a", "b"]
            await trio.testing.wait_all_tasks_blocked()  # "c" and "d" were read and dropped
            (session,) = sessions
            assert session.statistics().rate_limited == 2
            mock_clock.jump(0.5)  # one token
            await client.send("e")
            await client.send("f")  # none left
            assert await client.receive() == "e"
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(10)  # full again: 2
            await client.send("g")
            assert await client.receive() == "g"
            assert session.closed is None
            assert (session.statistics().rate_limited, session.statistics().messages_in) == (3, 4)
        await server.wait_idle()
        totals = server.statistics()
        assert (totals.rate_limited, totals.rate_limit_closes) == (3, 0)
        assert totals.closes_by_code == {1000: 1}


async def test_rate_limit_spares_pings(mock_clock: trio.testing.MockClock) -> None:
    """Pings take no token: a client pinging a rate-limited session is answered and kept."""
    config = wstrio.Config(ping_interval=None, max_messages_per_second=1, message_burst=1)
    async with wstrio.testing.open_memory_server({"/e": wstrio.echo}, config=config) as server:
        async with server.connect("/e", config=QUIET) as client:
            for _ in range(5):
                await client.ping()
            await client.send("one")
            assert await client.receive() == "one"
            assert client.closed is None
