"""The chat route's client side in tests: read JSON frames, skip notices, say something."""

from __future__ import annotations

import json
from typing import Any

import trio
from websockets.trio.client import ClientConnection


async def recv(ws: ClientConnection) -> dict[str, Any]:
    """The next frame, as a JSON object (5 s at most)."""
    with trio.fail_after(5):
        frame = json.loads(await ws.recv())
    assert isinstance(frame, dict)
    return frame


async def next_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next frame of type ``kind``, past join and leave notices."""
    while True:
        frame = await recv(ws)
        if frame["type"] == kind:
            return frame
        assert frame["type"] in ("join", "leave"), frame


async def say(ws: ClientConnection, text: str) -> None:
    """Send a chat message."""
    await ws.send(json.dumps({"type": "message", "text": text}))
