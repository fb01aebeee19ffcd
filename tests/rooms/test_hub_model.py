"""The hub as plain state: a Hypothesis state machine against an exact model.

Sessions are real (a Supervisor over the in-memory FakeTransport) but never
run: the test itself plays each session's writer by draining its outbox, so a
session the test does not drain is a member that stopped reading.
"""

from __future__ import annotations

import trio
from fakes import FakeTransport
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import wstrio
from wstrio import Ending
from wstrio._conn.outbox import unwrap
from wstrio._conn.supervisor import Supervisor

OUTBOX = 3
BACKLOG = 6  # bytes: two or three messages ("m7", "m42") beyond the outbox
CONFIG = wstrio.Config(outbox_size=OUTBOX, broadcast_backlog=BACKLOG, ping_interval=None)


def backlog_bytes(queue: list[str]) -> int:
    return sum(len(message) for message in queue[OUTBOX:])


ROOMS = ("a", "b")


async def _never_run(session: wstrio.Session) -> None:  # pragma: no cover - never started
    pass


class HubMachine(RuleBasedStateMachine):
    """Join, leave, broadcast, drain (a member reading) and end, checked step by step."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[Supervisor] = []
        self.hub = wstrio.Hub()
        self.members: dict[str, list[int]] = {name: [] for name in ROOMS}
        self.queued: list[list[str]] = []  # the model of each outbox
        self.delivered: list[list[str]] = []  # what each member's "writer" took
        self.expected: list[list[str]] = []  # what the model says each must get
        self.closed: list[bool] = []
        self.counts = {"deliveries": 0, "drops": 0, "slow_closes": 0, "broadcasts": 0}
        self.serial = 0

    @initialize(
        policy=st.sampled_from(["close", "drop_newest", "drop_oldest"]), n=st.integers(1, 4)
    )
    def make_hub(self, policy: wstrio.SlowConsumerPolicy, n: int) -> None:
        """A hub with ``n`` sessions, all in room "a" to start with."""
        self.hub = wstrio.Hub(policy=policy)
        self.policy = policy
        self.rooms = {name: self.hub.room(name) for name in ROOMS}
        for i in range(n):
            self.new_session()
            self.rooms["a"].join(self.sessions[i].session)
            self.members["a"].append(i)

    @precondition(lambda self: len(self.sessions) < 6)
    @rule()
    def new_session(self) -> None:
        self.sessions.append(Supervisor(FakeTransport(), _never_run, CONFIG))
        for model in (self.queued, self.delivered, self.expected):
            model.append([])
        self.closed.append(False)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), room=st.sampled_from(ROOMS))
    def join(self, data: st.DataObject, room: str) -> None:
        i = data.draw(st.integers(0, len(self.sessions) - 1))
        session = self.sessions[i].session
        if self.closed[i]:
            try:
                self.rooms[room].join(session)
            except wstrio.ConnectionClosed:
                return
            raise AssertionError("a closed session joined a room")
        self.rooms[room].join(session)
        if i not in self.members[room]:
            self.members[room].append(i)

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), room=st.sampled_from(ROOMS))
    def leave(self, data: st.DataObject, room: str) -> None:
        i = data.draw(st.integers(0, len(self.sessions) - 1))
        self.rooms[room].leave(self.sessions[i].session)
        if i in self.members[room]:
            self.members[room].remove(i)

    @rule(room=st.sampled_from(ROOMS), data=st.data())
    def broadcast(self, room: str, data: st.DataObject) -> None:
        members = self.members[room]
        excluded = data.draw(st.sets(st.sampled_from(members))) if members else set()
        self.serial += 1
        message = f"m{self.serial}"
        exclude = [self.sessions[i].session for i in excluded]
        got = self.rooms[room].broadcast(message, exclude=exclude or None)
        delivered = 0
        for i in list(members):
            if i in excluded:
                continue
            queue = self.queued[i]
            fits = backlog_bytes(queue) + len(message) <= BACKLOG
            if len(queue) < OUTBOX or fits:
                queue.append(message)
                delivered += 1
            elif self.policy == "close":
                self._end(i)
                self.counts["slow_closes"] += 1
            elif self.policy == "drop_newest":
                self.counts["drops"] += 1
            else:  # drop_oldest: spend the oldest backlog first, else the outbox's head
                while len(queue) > OUTBOX and backlog_bytes(queue) + len(message) > BACKLOG:
                    queue.pop(OUTBOX)
                    self.counts["drops"] += 1
                if backlog_bytes(queue) + len(message) > BACKLOG:
                    queue.pop(0)
                    self.counts["drops"] += 1
                queue.append(message)
                delivered += 1
        assert got == delivered
        self.counts["deliveries"] += delivered
        self.counts["broadcasts"] += 1

    @precondition(lambda self: self.sessions)
    @rule(data=st.data(), n=st.integers(1, OUTBOX))
    def drain(self, data: st.DataObject, n: int) -> None:
        """The member's writer takes up to n messages from its outbox."""
        i = data.draw(st.integers(0, len(self.sessions) - 1))
        if self.closed[i]:
            return
        outbox = self.sessions[i].outbox.receive
        for _ in range(n):
            try:
                message = outbox.receive_nowait()
            except trio.WouldBlock:
                break
            self.sessions[i].outbox.top_up()  # as the writer does after each message it takes
            self.delivered[i].append(unwrap(message))  # type: ignore[arg-type]
            self.expected[i].append(self.queued[i].pop(0))

    @precondition(lambda self: self.sessions)
    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        """The session ends for any reason (here: the peer vanished)."""
        i = data.draw(st.integers(0, len(self.sessions) - 1))
        self.sessions[i].decide(Ending.PEER_VANISHED)
        self._end(i)

    def _end(self, i: int) -> None:
        self.closed[i] = True
        self.queued[i].clear()  # not flushed: a drain after the end takes nothing
        for members in self.members.values():
            if i in members:
                members.remove(i)

    @invariant()
    def membership_matches(self) -> None:
        for name, room in self.rooms.items():
            assert room.members == tuple(self.sessions[i].session for i in self.members[name])
        for i, supervisor in enumerate(self.sessions):
            mine = {self.rooms[name] for name in ROOMS if i in self.members[name]}
            assert supervisor.session.rooms == mine
            assert not (self.closed[i] and mine), "a closed session is still in a room"

    @invariant()
    def delivered_once_in_order(self) -> None:
        for got, want in zip(self.delivered, self.expected, strict=True):
            assert got == want
            serials = [int(m[1:]) for m in got]
            assert serials == sorted(set(serials))

    @invariant()
    def backlog_matches(self) -> None:
        for i, supervisor in enumerate(self.sessions):
            if not self.closed[i]:
                stats = supervisor.session.statistics()
                assert stats.outbox_used == min(OUTBOX, len(self.queued[i]))
                assert stats.backlog_bytes == backlog_bytes(self.queued[i]) <= BACKLOG

    @invariant()
    def counts_add_up(self) -> None:
        stats = self.hub.statistics()
        assert stats.deliveries == self.counts["deliveries"]
        assert stats.drops == self.counts["drops"]
        assert stats.slow_closes == self.counts["slow_closes"]
        assert stats.broadcasts == self.counts["broadcasts"]
        assert stats.members == sum(len(m) for m in self.members.values())
        drops = sum(s.session.statistics().drops for s in self.sessions)
        assert drops == self.counts["drops"]
        for i, supervisor in enumerate(self.sessions):
            closed = supervisor.session.closed
            assert (closed is not None) == self.closed[i]
            if closed is not None and closed.ending is Ending.SLOW_CONSUMER:
                assert (closed.code, closed.reason) == (1008, "slow consumer")


def test_hub_matches_its_model() -> None:
    """Each delivery arrives once and in order; left members get nothing; counts add up."""

    async def main() -> None:
        # Sessions need a running trio (deadlines, channels); the machine itself is sync.
        run_state_machine_as_test(
            HubMachine, settings=settings(max_examples=150, stateful_step_count=40, deadline=None)
        )

    trio.run(main)
