"""The chat handler behind ``/ws/chat``: rooms from the query, JSON messages.

Protocol (JSON text frames; ``ts`` is Unix time in seconds):

* client to server: ``{"type": "message", "text": ...}`` and
  ``{"type": "ping", "id": ...}``; room and name come from the URL
  (``?room=lobby&name=ada``), never from a message.
* to a new member: ``{"type": "members", "room", "name", "members", "last_id", "ts"}``
  (``name`` is its own, perhaps assigned; ``members`` in join order, across every
  process the hub's bus reaches; ``last_id``: the newest message id in the room's
  history, or null: where a client that has seen no message starts its ``since``);
* to the others: ``{"type": "join" | "leave", "room", "name", "ts"}`` (live only: not
  kept in the history);
* to everyone, the sender included: ``{"type": "message", "room", "name", "text", "id",
  "ts"}``; ``id`` names the message in the room's history (the last ``history`` ones
  are kept);
* after a connect with ``?since=<id>`` (the last id the client saw): first every
  message after that id, then ``{"type": "recovered", "recovered": bool, "missed": n,
  "ts"}`` (``recovered`` false: the history no longer reaches back to that id, and
  ``missed`` is 0), then the ``members`` frame and live traffic;
* to the sender only: ``{"type": "pong", "id", "ts"}`` and ``{"type": "error", "text"}``
  (invalid JSON, unknown type, text empty or too long). Each error is a
  strike and each valid message forgives one; at ``max_strikes`` the
  connection closes with 1008. Names are unique in a room ("ada", "ada-2").
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from .._conn.config import check_number
from .._conn.errors import CloseConnection
from .._conn.session import Session
from .._rooms.history import Recovery
from .._rooms.hub import Hub
from .._rooms.room import Room


def _frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields, "ts": round(time.time(), 3)})


def _recovered(recovery: Recovery) -> str:
    return _frame("recovered", recovered=recovery.recovered, missed=recovery.missed)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


class Chat:
    """A chat handler over a :class:`Hub`: one room per ``?room=``, names from ``?name=``."""

    def __init__(
        self,
        hub: Hub | None = None,
        *,
        max_text: int = 1000,
        max_strikes: int = 5,
        max_name: int = 32,
        max_room: int = 64,
        history: int = 100,
        history_ttl: float | None = 3600.0,
    ) -> None:
        for name, value in (
            ("max_text", max_text),
            ("max_strikes", max_strikes),
            ("max_name", max_name),
            ("max_room", max_room),
        ):
            check_number("Chat", name, value)
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise ValueError(f"Chat history must be an int of messages >= 0, not {history!r}")
        self.hub = hub if hub is not None else Hub()
        self.max_text = max_text
        self.max_strikes = max_strikes
        self.max_name = max_name
        self.max_room = max_room
        self.history = history
        self.history_ttl = history_ttl
        self._names: dict[Session, str] = {}
        self._taken: dict[str, set[str]] = {}  # names per room, held until the leave notice
        self._guests = itertools.count(1)

    def name_of(self, session: Session) -> str:
        """The name a member chats under."""
        return self._names.get(session, "?")

    def _entry(self, session: Session) -> tuple[str, str]:
        room = session.query.get("room", "").strip() or "lobby"
        name = session.query.get("name", "").strip()
        if len(room) > self.max_room:
            raise CloseConnection(1008, f"room name longer than {self.max_room} characters")
        if len(name) > self.max_name:
            raise CloseConnection(1008, f"name longer than {self.max_name} characters")
        return room, name or f"guest-{next(self._guests)}"

    async def __call__(self, session: Session) -> None:
        room_name, wanted = self._entry(session)
        room = self.hub.room(room_name, history=self.history, history_ttl=self.history_ttl)
        taken = self._taken.setdefault(room_name, set())
        if self.hub.bus is not None:
            taken = taken | set(await room.presence())  # names are unique across processes
        name, n = wanted, 1
        while name in taken:  # names are unique within a room: "ada", "ada-2", ...
            n += 1
            name = f"{wanted}-{n}"
        since = session.query.get("since", "").strip()
        self._names[session] = name
        self._taken.setdefault(room_name, set()).add(name)
        announced = False
        try:

            async def first(recovery: Recovery | None) -> list[str]:
                """Sent before any live message: the recovery's outcome, then who is here."""
                frames = [] if recovery is None else [_recovered(recovery)]
                members = await room.presence()
                last = await room.last_id() if room.history else None
                frames.append(
                    _frame("members", room=room_name, name=name, members=members, last_id=last)
                )
                return frames

            await room.join(session, name=name, since=since or None, notice=first)
            room.broadcast(_frame("join", room=room_name, name=name), exclude=session, keep=False)
            announced = True
            await self._converse(session, room)
        finally:
            room.leave(session)
            del self._names[session]
            if announced:
                room.broadcast(_frame("leave", room=room_name, name=name), keep=False)
            names = self._taken.get(room_name, set())
            names.discard(name)
            if not names:
                self._taken.pop(room_name, None)

    async def _converse(self, session: Session, room: Room) -> None:
        strikes = 0  # +1 per invalid message, -1 per valid one: repeated abuse closes
        async for raw in session:
            error = await self._answer(session, room, raw)
            if error is None:
                strikes = max(0, strikes - 1)
                continue
            strikes += 1
            if strikes >= self.max_strikes:
                raise CloseConnection(1008, "too many invalid messages")
            await session.send(json.dumps({"type": "error", "text": error}))

    async def _answer(self, session: Session, room: Room, raw: str | bytes) -> str | None:
        """Act on one client message; the error to send back, if it was invalid."""
        try:
            data = json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            return "invalid JSON"
        if not isinstance(data, dict):
            return "a message is a JSON object"
        kind = data.get("type")
        if kind == "ping":
            ping_id = data.get("id")
            if not isinstance(ping_id, int | float | str | None) or isinstance(ping_id, bool):
                return "a ping id is a number or a string"
            await session.send(_frame("pong", id=ping_id))
            return None
        if kind != "message":
            return f"unknown message type: {str(kind)[:40]!r}"
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return "text must be a non-empty string"
        if len(text) > self.max_text:
            return f"text longer than {self.max_text} characters"
        id = room.new_id()
        name = self.name_of(session)
        room.broadcast(_frame("message", room=room.name, name=name, text=text, id=id), id=id)
        return None
