"""Rooms across two processes, as a Hypothesis state machine against an exact model.

Two hubs share a fake broker that behaves like Redis as the bus uses it: each process
publishes in order; the broker appends a kept room's message to the room's stream and
fans it out to every process subscribed to the room; each process reads its fan-out
per room in order, but rooms interleave freely, and a process may lose a message
(a dropped pub/sub connection). History reads may be slow, so live messages arrive
while a member recovers. Checked step by step: no member gets a message twice; in a
kept room every member sees the broker's one order; in a plain room each sender's
order; a recovery resends exactly what the stream held after ``since``; and, once
everything is delivered, a member of a process that lost nothing has no gap.
"""

from __future__ import annotations

import types
from collections import deque
from collections.abc import Coroutine, Generator
from typing import Any

import attrs
import trio
from fakes import FakeTransport
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import wstrio
from wstrio._conn.outbox import unwrap
from wstrio._conn.supervisor import Supervisor
from wstrio._rooms.bus import Envelope, Receiver
from wstrio._rooms.history import Entry, Recovery

KEPT, PLAIN = "h", "n"
HISTORY = 4
CONFIG = wstrio.Config(outbox_size=10_000, ping_interval=None)


async def _never_run(session: wstrio.Session) -> None:  # pragma: no cover - never started
    pass


@types.coroutine
def _suspend() -> Generator[None, None, None]:
    """Yield once to whoever drives the coroutine (the test, not Trio)."""
    yield


class Broker:
    def __init__(self) -> None:
        self.outgoing: list[deque[Envelope]] = [deque(), deque()]  # per process, in order
        self.incoming: list[dict[str, deque[Envelope]]] = [{}, {}]  # per process, per room
        self.subscribed: list[set[str]] = [set(), set()]
        self.stream: list[Entry] = []  # the kept room's history, trimmed
        self.order: list[str] = []  # every kept message, in the broker's order

    def step(self, process: int) -> None:
        envelope = self.outgoing[process].popleft()
        if envelope.history:
            position = (len(self.order) + 1, 0)
            entry = Entry(str(envelope.id), envelope.message, position)
            self.stream = [*self.stream, entry][-HISTORY:]
            self.order.append(str(envelope.message))
            envelope = attrs.evolve(envelope, position=position, history=1)
        for other in (0, 1):
            if envelope.room in self.subscribed[other]:
                self.incoming[other].setdefault(envelope.room, deque()).append(envelope)


class FakeBus:
    def __init__(self, broker: Broker, process: int) -> None:
        self.broker = broker
        self.process = process
        self.hub: Receiver | None = None

    @property
    def connected(self) -> bool:
        return True

    def attach(self, hub: Receiver) -> str:
        self.hub = hub
        return f"p{self.process}"

    def publish(self, envelope: Envelope) -> None:
        self.broker.outgoing[self.process].append(envelope)

    def subscribe(self, room: str) -> None:
        self.broker.subscribed[self.process].add(room)

    def unsubscribe(self, room: str) -> None:
        self.broker.subscribed[self.process].discard(room)
        self.broker.incoming[self.process].pop(room, None)

    def present(self, room: str, key: str, name: str | None) -> None:
        pass

    async def presence(self, room: str) -> list[str]:
        return []

    async def history(self, room: str) -> list[Entry]:
        await _suspend()  # the read is in flight: live messages keep arriving meanwhile
        return list(self.broker.stream)  # what the stream holds when the read is answered


class Member:
    def __init__(self, process: int, room: str, since: str | None) -> None:
        self.supervisor = Supervisor(FakeTransport(), _never_run, CONFIG)
        self.process = process
        self.room = room
        self.since = since
        self.got: list[str] = []
        self.recovering: Coroutine[Any, Any, Recovery] | None = None
        self.snapshot: list[Entry] = []
        self.recovery: Recovery | None = None
        self.left = False


class BusMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.broker = Broker()
        self.hubs = [wstrio.Hub(bus=FakeBus(self.broker, p)) for p in (0, 1)]
        for hub in self.hubs:
            hub.room(KEPT, history=HISTORY)
        self.members: list[Member] = []
        self.serial = 0
        self.lossy = [False, False]
        self.ids: dict[str, str] = {}  # message -> its id
        self.origin: dict[str, str] = {}  # message -> the process that sent it

    def _room(self, member: Member) -> wstrio.Room:
        return self.hubs[member.process].room(member.room)

    @precondition(lambda self: sum(not m.left for m in self.members) < 6)
    @rule(process=st.integers(0, 1), room=st.sampled_from([KEPT, PLAIN]), data=st.data())
    def join(self, process: int, room: str, data: st.DataObject) -> None:
        seen = [
            [got for got in m.got if got.startswith("m")][-1]
            for m in self.members
            if m.room == room and m.left and any(got.startswith("m") for got in m.got)
        ]
        since = data.draw(st.sampled_from([None, *seen]))
        member = Member(process, room, self._id_of(since) if since else None)
        self.members.append(member)
        session = member.supervisor.session
        if member.since is None:
            self._room(member).join(session)
            return
        member.snapshot = []
        member.recovering = self._room(member).join(  # type: ignore[assignment]
            session, since=member.since, notice=lambda r: f"R{r.recovered}:{r.missed}"
        )
        assert member.recovering is not None
        self._step_recovery(member)  # the history read is now in flight (a kept room)

    def _id_of(self, message: str) -> str:
        return self.ids[message]

    @precondition(lambda self: any(m.recovering for m in self.members))
    @rule(data=st.data())
    def recovery_answers(self, data: st.DataObject) -> None:
        member = data.draw(st.sampled_from([m for m in self.members if m.recovering]))
        member.snapshot = list(self.broker.stream)
        self._step_recovery(member)
        self._drain(member)

    def _step_recovery(self, member: Member) -> None:
        assert member.recovering is not None
        try:
            member.recovering.send(None)
        except StopIteration as done:
            member.recovery = done.value
            member.recovering = None

    @rule(data=st.data(), room=st.sampled_from([KEPT, PLAIN]), process=st.integers(0, 1))
    def broadcast(self, data: st.DataObject, room: str, process: int) -> None:
        self.serial += 1
        message = f"m{self.serial}"
        target = self.hubs[process].room(room)
        id = target.new_id()
        self.ids[message] = id
        self.origin[message] = f"p{process}"
        target.broadcast(message, id=id)

    @precondition(lambda self: any(self.broker.outgoing))
    @rule(process=st.integers(0, 1))
    def broker_step(self, process: int) -> None:
        if self.broker.outgoing[process]:
            self.broker.step(process)

    @precondition(lambda self: any(any(q for q in r.values()) for r in self.broker.incoming))
    @rule(process=st.integers(0, 1), room=st.sampled_from([KEPT, PLAIN]), lose=st.booleans())
    def fan_out(self, process: int, room: str, lose: bool) -> None:
        queue = self.broker.incoming[process].get(room)
        if not queue:
            return
        envelope = queue.popleft()
        if lose:
            self.lossy[process] = True
            return
        self.hubs[process].receive(envelope)

    @precondition(lambda self: any(not m.left and not m.recovering for m in self.members))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        member = data.draw(
            st.sampled_from([m for m in self.members if not m.left and not m.recovering])
        )
        self._drain(member)
        self._room(member).leave(member.supervisor.session)
        member.left = True

    def _drain(self, member: Member) -> None:
        receive = member.supervisor.outbox.receive
        while True:
            try:
                member.got.append(str(unwrap(receive.receive_nowait())))  # type: ignore[arg-type]
            except trio.WouldBlock:
                return

    @invariant()
    def each_message_once_in_order(self) -> None:
        for member in self.members:
            if not member.left:
                self._drain(member)
            messages = [m for m in member.got if m.startswith("m")]
            assert len(messages) == len(set(messages)), member.got
            if member.room == KEPT:
                positions = [self.broker.order.index(m) for m in messages if m in self.broker.order]
                assert len(positions) == len(messages) and positions == sorted(positions)
            else:  # each sender's own order
                for origin in ("p0", "p1"):
                    serials = [int(m[1:]) for m in messages if self.origin[m] == origin]
                    assert serials == sorted(serials)

    @invariant()
    def recovery_is_exact(self) -> None:
        for member in self.members:
            if member.recovery is None:
                continue
            if member.room != KEPT:
                assert member.recovery == Recovery(False, 0)
                continue
            ids = [entry.id for entry in member.snapshot]
            found = member.since in ids
            assert member.recovery.recovered is found
            after = member.snapshot[ids.index(member.since) + 1 :] if found else []
            assert member.recovery.missed == len(after)
            resent = [str(entry.message) for entry in after]
            notice = member.got.index(f"R{found}:{len(after)}")
            assert member.got[:notice] == resent

    def teardown(self) -> None:
        """Deliver everything; members of processes that lost nothing have no gap."""
        for member in self.members:
            if member.recovering:
                member.snapshot = list(self.broker.stream)
                self._step_recovery(member)
        while any(self.broker.outgoing):
            for process in (0, 1):
                if self.broker.outgoing[process]:
                    self.broker.step(process)
        for process in (0, 1):
            for queue in self.broker.incoming[process].values():
                while queue:
                    self.hubs[process].receive(queue.popleft())
        self.each_message_once_in_order()
        for member in self.members:
            if member.left or member.room != KEPT or self.lossy[member.process]:
                continue
            messages = [m for m in member.got if m.startswith("m")]
            if not messages:
                continue
            start = self.broker.order.index(messages[0])
            assert messages == self.broker.order[start:], "a gap"


def test_rooms_across_two_processes_keep_order_and_recover_exactly() -> None:
    """Order per member, no duplicate, exact recovery, no gap without loss (Hypothesis)."""
    run_state_machine_as_test(
        BusMachine, settings=settings(max_examples=150, stateful_step_count=40, deadline=None)
    )
