"""What a session sees of the connection that runs it: :class:`Control`, a protocol the
supervisor implements (the session never names the supervisor)."""

from __future__ import annotations

from typing import Protocol

import trio

from .closecodes import Closed


class Control(Protocol):
    """What a session may ask of the connection that runs it (the supervisor)."""

    closed: Closed | None
    wire_closed: trio.Event

    async def ping(self) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...
