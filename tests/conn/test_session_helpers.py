"""The session's typed helpers and state on the in-memory fake (MockClock): JSON in and out,
text or bytes only, and per-session state."""

from __future__ import annotations

import pytest
import trio
from fakes import FakeTransport

import wstrio
from wstrio._conn.supervisor import Supervisor

CONFIG = wstrio.Config(ping_interval=None)


async def test_json_goes_out_compact_and_comes_back_parsed(autojump_clock: trio.abc.Clock) -> None:
    """send_json writes compact UTF-8 JSON text; receive_json parses a text message."""
    got: list[object] = []

    async def handler(session: wstrio.Session) -> None:
        got.append(await session.receive_json())
        await session.send_json({"name": "zoë", "n": [1, 2]})

    fake = FakeTransport()
    fake.peer_send('{"hello": [1, 2.5, null]}')
    await Supervisor(fake, handler, CONFIG).run()
    assert got == [{"hello": [1, 2.5, None]}]
    assert fake.received == ['{"name":"zoë","n":[1,2]}']


async def test_invalid_json_is_a_catchable_value_error_and_the_session_goes_on(
    autojump_clock: trio.abc.Clock,
) -> None:
    """InvalidJSON (a ValueError) carries the text; the next message still arrives."""
    caught: list[object] = []

    async def handler(session: wstrio.Session) -> None:
        try:
            await session.receive_json()
        except ValueError as exc:
            assert isinstance(exc, wstrio.InvalidJSON)
            caught.append(exc.text)
        caught.append(await session.receive_json())

    fake = FakeTransport()
    fake.peer_send("{not json")
    fake.peer_send("[1]")
    closed = await Supervisor(fake, handler, CONFIG).run()
    assert caught == ["{not json", [1]]
    assert closed.code == 1000


@pytest.mark.parametrize(
    ("method", "message", "expected"),
    [
        ("receive_text", b"\x00", "text"),
        ("receive_json", b"{}", "text"),
        ("receive_bytes", "x", "binary"),
    ],
)
async def test_the_wrong_message_type_is_a_type_error_naming_both(
    autojump_clock: trio.abc.Clock, method: str, message: str | bytes, expected: str
) -> None:
    """UnexpectedMessageType (a TypeError) says what was expected and keeps the message."""
    caught: list[wstrio.UnexpectedMessageType] = []

    async def handler(session: wstrio.Session) -> None:
        with pytest.raises(TypeError) as info:
            await getattr(session, method)()
        assert isinstance(info.value, wstrio.UnexpectedMessageType)
        caught.append(info.value)

    fake = FakeTransport()
    fake.peer_send(message)
    await Supervisor(fake, handler, CONFIG).run()
    (error,) = caught
    assert error.message == message and f"expected a {expected} message" in str(error)


async def test_state_is_a_dict_per_session_seeded_by_the_supervisor(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Each session has its own state dict, starting from the seed when there is one."""
    states: list[dict[str, object]] = []

    async def handler(session: wstrio.Session) -> None:
        session.state["visits"] = session.state.get("visits", 0) + 1  # type: ignore[operator]
        states.append(session.state)

    await Supervisor(FakeTransport(), handler, CONFIG, state={"visits": 5}).run()
    await Supervisor(FakeTransport(), handler, CONFIG).run()
    assert states == [{"visits": 6}, {"visits": 1}]


async def test_a_lone_surrogate_never_reaches_the_writer(autojump_clock: trio.abc.Clock) -> None:
    """JSON with an escaped lone surrogate echoes back escaped; sending one raw is ValueError."""
    refused: list[str] = []

    async def handler(session: wstrio.Session) -> None:
        await session.send_json(await session.receive_json())
        with pytest.raises(ValueError, match="lone surrogate") as raised:
            await session.send("x\ud800")
        refused.append(str(raised.value))
        with pytest.raises(ValueError, match="lone surrogate"):
            session.send_nowait("\udfff")
        refused.append("send_nowait")

    fake = FakeTransport()
    fake.peer_send('["\\ud800 \u00e9"]')
    closed = await Supervisor(fake, handler, CONFIG).run()
    assert fake.received == ['["\\ud800 \\u00e9"]']
    assert len(refused) == 2 and "lone surrogate" in refused[0]
    assert closed.code == 1000
