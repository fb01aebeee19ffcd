"""A token-authenticated chat: ``python examples/authchat/app.py``, then open
http://127.0.0.1:7777/?token=ann-token in one tab and ?token=bob-token in another.

* ``/`` and ``/app.js`` come from ``static/`` (a ``StaticDir``);
* ``/c/{room}`` is the chat: the handshake hook checks the token (query
  parameter ``token``, cookie ``token`` or ``Authorization: Bearer``) and
  refuses with 401 before the upgrade, or accepts with the user's name in
  ``session.state``; every text message is broadcast to the room as JSON.
"""

from __future__ import annotations

import functools
import hmac
import json
from pathlib import Path

import trio

import wstrio

#: token -> user name (a real application asks its session store or verifies a signed token).
USERS = {"ann-token": "ann", "bob-token": "bob"}
STATIC = Path(__file__).with_name("static")


def token_of(request: wstrio.Request) -> str | None:
    """The token from the query, a cookie or an Authorization header, in that order."""
    bearer = request.headers.get("authorization", "")
    header = bearer[7:] if bearer.lower().startswith("bearer ") else None
    return request.query.get("token") or request.cookies.get("token") or header


def authenticate(request: wstrio.Request) -> wstrio.Accept | wstrio.Reject:
    """Accept a known token with the user's name as state; 401 before the upgrade otherwise."""
    token = (token_of(request) or "").encode()  # bytes: compare_digest refuses non-ASCII str
    for known, name in USERS.items():
        if hmac.compare_digest(token, known.encode()):
            return wstrio.Accept(state={"name": name})
    return wstrio.Reject(
        401, headers=[("WWW-Authenticate", 'Bearer realm="chat"')], body="unknown token\n"
    )


def chat(hub: wstrio.Hub) -> wstrio.Handler:
    """The room's handler: the name comes from the hook, the room from the path."""

    async def handler(session: wstrio.Session) -> None:
        name, room = session.state["name"], hub.room(session.params["room"])
        room.join(session)
        room.broadcast(json.dumps({"joined": name}))
        async for text in session:  # text only: the route closes binary senders with 1003
            room.broadcast(json.dumps({"from": name, "text": text}))

    return handler


def routes(hub: wstrio.Hub) -> wstrio.Routes:
    return {
        "/c/{room}": wstrio.Route(chat(hub), accepts="text", on_handshake=authenticate),
        "/": wstrio.StaticDir(STATIC),
    }


async def main(port: int = 7777) -> None:
    hub = wstrio.Hub()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(wstrio.serve, routes(hub), port=port))
        print(f"open http://127.0.0.1:{port}/?token=ann-token and /?token=bob-token")


if __name__ == "__main__":
    trio.run(main)
