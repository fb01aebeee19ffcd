"""wstrio.reconnecting on MockClock over the test kit's memory streams: exact delays, decisions."""

from __future__ import annotations

import itertools
import random

import pytest
import trio
import trio.testing

import wstrio
from wstrio._client.dial import Target
from wstrio.testing import MemoryServer, open_memory_server

QUIET = wstrio.Config(ping_interval=None)
RETRY = [1001, 1006, 1011, 1012, 1013, 1014, 4500, 4999]
STOP = [1000, 1002, 1003, 1007, 1008, 1009, 1010, 3000, 4000, 4499]


class Flaky:
    """A server whose n-th session is closed with a scripted code; later ones stay open."""

    def __init__(self, codes: list[tuple[int, str]]) -> None:
        self.codes = codes
        self.opened: list[float] = []

    async def handler(self, session: wstrio.Session) -> None:
        self.opened.append(trio.current_time())
        n = len(self.opened) - 1
        if n < len(self.codes):
            code, reason = self.codes[n]
            if code != 1006:  # 1006 is played by the test: the client's stream vanishes
                raise wstrio.CloseConnection(code, reason)
        async for _ in session:
            pass


async def count_sessions(
    server: MemoryServer, limit: int = 2, *, vanish: bool = False, **options: object
) -> int:
    """Iterate reconnecting() until it stops or yields ``limit`` sessions."""
    ends = []

    async def opener(target: Target) -> trio.abc.Stream:
        ends.append(await server.open_stream(target))
        return ends[-1]

    seen = 0
    with trio.fail_after(300):  # virtual seconds
        async for session in wstrio.reconnecting(
            "ws://wstrio.test/flaky", opener=opener, config=QUIET, **options  # type: ignore[arg-type]
        ):
            seen += 1
            if seen == limit:
                break
            if vanish:
                ends[-1].vanish()
            async for _ in session:  # ends quietly whatever the code
                pass
    return seen


async def test_delays_follow_full_jitter_for_a_fixed_seed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Failed attempts are spaced uniform(0, min(cap, base * 2**n)) apart, n = 0, 1, 2..."""
    attempts: list[float] = []

    async def refuse(target: Target) -> trio.abc.Stream:
        attempts.append(trio.current_time())
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(wstrio.ConnectError, match="connection refused"):
        async for _ in wstrio.reconnecting(
            "ws://wstrio.test/", opener=refuse, backoff_base=0.5, backoff_cap=4.0,
            max_attempts=7, rng=random.Random(42),
        ):
            raise AssertionError("no session can open")
    expected = random.Random(42)
    delays = [expected.uniform(0, min(4.0, 0.5 * 2**n)) for n in range(6)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(attempts) == 7
    assert gaps == pytest.approx(delays, abs=1e-9)
    assert delays[5] <= 4.0  # capped


@pytest.mark.parametrize("code", RETRY)
async def test_codes_that_reconnect(code: int, autojump_clock: trio.testing.MockClock) -> None:
    """After a close with a retryable code, a new session is yielded."""
    flaky = Flaky([(code, "")])
    async with open_memory_server({"/flaky": flaky.handler}) as server:
        seen = await count_sessions(server, rng=random.Random(1), vanish=code == 1006)
    assert seen == 2 and len(flaky.opened) == 2


@pytest.mark.parametrize("code", STOP)
async def test_codes_that_end_the_loop(code: int, autojump_clock: trio.testing.MockClock) -> None:
    """After a close with a final code, the loop ends without reconnecting."""
    flaky = Flaky([(code, "")])
    async with open_memory_server({"/flaky": flaky.handler}) as server:
        seen = await count_sessions(server, rng=random.Random(1))
    assert seen == 1 and len(flaky.opened) == 1


async def test_1013_retry_after_hint_is_honoured(autojump_clock: trio.testing.MockClock) -> None:
    """A 1013 close with "retry-after=7" makes the next attempt wait exactly 7 seconds."""
    flaky = Flaky([(1013, "busy, retry-after=7")])
    async with open_memory_server({"/flaky": flaky.handler}) as server:
        assert await count_sessions(server, rng=random.Random(1)) == 2
    assert flaky.opened[1] - flaky.opened[0] == pytest.approx(7.0, abs=1e-6)


async def test_503_retry_after_header_is_honoured(autojump_clock: trio.testing.MockClock) -> None:
    """A handshake refused with 503 and Retry-After: 1 is retried one second later."""
    flaky = Flaky([])
    config = wstrio.Config(max_connections=1)
    async with open_memory_server({"/flaky": flaky.handler}, config=config) as server:
        async with server.connect("/flaky", config=QUIET) as holder:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(count_sessions, server, 1)
                await trio.sleep(0.5)  # virtual: the loop's first attempt was refused
                refused_at = trio.current_time()
                await holder.close()
        assert len(flaky.opened) == 2
        assert flaky.opened[1] - refused_at == pytest.approx(0.5, abs=1e-6)


async def test_refused_handshake_with_404_is_raised_at_once() -> None:
    """A 404 is not worth retrying: reconnecting raises HandshakeRejected."""
    async with open_memory_server({"/flaky": Flaky([]).handler}) as server:
        with pytest.raises(wstrio.HandshakeRejected) as caught:
            async for _ in wstrio.reconnecting("ws://wstrio.test/nope", opener=server.open_stream):
                raise AssertionError("no session can open")
    assert caught.value.status_code == 404
