"""The outbox's direct path: an idle writer lets non-blocking puts write at once, and
nothing queued is ever overtaken (the in-memory fake with ``direct``, on MockClock)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from fakes import FakeTransport

import wstrio
from wstrio._conn.supervisor import Supervisor

CONFIG = wstrio.Config(ping_interval=None, close_timeout=5, write_timeout=3)


def direct_fake() -> FakeTransport:
    fake = FakeTransport()
    fake.direct = True
    return fake


async def test_send_nowait_to_an_idle_writer_is_written_before_it_returns(
    autojump_clock: trio.abc.Clock,
) -> None:
    """With the writer idle, send_nowait hands the message to the transport at once, counted."""
    seen: list[object] = []
    fake = direct_fake()

    async def handler(session: wstrio.Session) -> None:
        await trio.testing.wait_all_tasks_blocked()  # the writer waits on an empty outbox
        session.send_nowait("now")
        seen.append(list(fake.received))
        seen.append(session.statistics().messages_out)

    await Supervisor(fake, handler, CONFIG).run()
    assert seen == [["now"], 1]
    assert fake.direct_writes == 1


async def test_a_queued_message_is_never_overtaken(autojump_clock: trio.abc.Clock) -> None:
    """A message queued by send() is handed to the writer; a put in the same step queues too."""
    fake = direct_fake()

    async def handler(session: wstrio.Session) -> None:
        await trio.testing.wait_all_tasks_blocked()
        await session.send("first")  # into the channel: the idle writer is handed it
        session.send_nowait("second")  # same step, the writer has not run: must queue
        session.send_nowait("third")

    await Supervisor(fake, handler, CONFIG).run()
    assert fake.wire[:3] == ["first", "second", "third"]
    assert fake.direct_writes == 0


async def test_a_broadcast_reaches_idle_members_before_it_returns(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Room.broadcast writes to every idle member on the spot; a busy one gets it queued."""
    hub = wstrio.Hub()
    room = hub.room("r")
    fakes = [direct_fake() for _ in range(3)]
    fakes[2].direct = False  # e.g. TLS: always through its writer
    joined = trio.Event()
    done = trio.Event()
    seen: list[list[object]] = []

    async def member(session: wstrio.Session) -> None:
        room.join(session)
        if len(room) == 3:
            joined.set()
        await done.wait()

    async with trio.open_nursery() as nursery:
        for fake in fakes:
            nursery.start_soon(Supervisor(fake, member, CONFIG).run)
        await joined.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert room.broadcast("hello") == 3
        seen.extend(list(fake.received) for fake in fakes)
        await trio.testing.wait_all_tasks_blocked()
        seen.append(list(fakes[2].received))
        done.set()
    assert seen == [["hello"], ["hello"], [], ["hello"]]
    assert [fake.direct_writes for fake in fakes] == [1, 1, 0]


async def test_nothing_is_written_directly_once_the_ending_is_decided(
    autojump_clock: trio.abc.Clock,
) -> None:
    """After session.close() puts raise ConnectionClosed and write nothing."""
    fake = direct_fake()

    async def handler(session: wstrio.Session) -> None:
        await session.close(4000, "done")
        with pytest.raises(wstrio.ConnectionClosed):
            session.send_nowait("late")

    await Supervisor(fake, handler, CONFIG).run()
    assert fake.wire == [("close", 4000, "done")]
    assert fake.direct_writes == 0
