"""The chat handler behind ``/ws/chat``: rooms from the query, JSON messages.

Protocol (JSON text frames; ``ts`` is Unix time in seconds):

* client to server: ``{"type": "message", "text": ...}`` and
  ``{"type": "ping", "id": ...}``; room and name come from the URL
  (``?room=lobby&name=ada``), never from a message.
* to a new member: ``{"type": "members", "room", "name", "members", "ts"}``
  (``name`` is its own, perhaps assigned; ``members`` in join order);
* to the others: ``{"type": "join" | "leave", "room", "name", "ts"}``;
* to everyone, the sender included: ``{"type": "message", "room", "name", "text", "ts"}``;
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

from ._errors import CloseConnection
from ._hub import Hub, Room
from ._session import Session


def _frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields, "ts": round(time.time(), 3)})


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
    ) -> None:
        self.hub = hub if hub is not None else Hub()
        self.max_text = max_text
        self.max_strikes = max_strikes
        self.max_name = max_name
        self.max_room = max_room
        self._names: dict[Session, str] = {}
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
        room = self.hub.room(room_name)
        taken = {self.name_of(member) for member in room.members}
        name, n = wanted, 1
        while name in taken:  # names are unique within a room: "ada", "ada-2", ...
            n += 1
            name = f"{wanted}-{n}"
        room.join(session)
        self._names[session] = name
        members = [self.name_of(member) for member in room.members]
        try:
            session.send_nowait(_frame("members", room=room_name, name=name, members=members))
        except BaseException:
            room.leave(session)
            del self._names[session]
            raise
        room.broadcast(_frame("join", room=room_name, name=name), exclude=session)
        try:
            await self._converse(session, room)
        finally:
            room.leave(session)
            del self._names[session]
            room.broadcast(_frame("leave", room=room_name, name=name))

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
            data = json.loads(raw)
        except ValueError:
            return "invalid JSON"
        if not isinstance(data, dict):
            return "a message is a JSON object"
        kind = data.get("type")
        if kind == "ping":
            await session.send(_frame("pong", id=data.get("id")))
            return None
        if kind != "message":
            return f"unknown message type: {str(kind)[:40]!r}"
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return "text must be a non-empty string"
        if len(text) > self.max_text:
            return f"text longer than {self.max_text} characters"
        room.broadcast(_frame("message", room=room.name, name=self.name_of(session), text=text))
        return None
