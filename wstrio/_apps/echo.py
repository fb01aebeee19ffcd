"""Handlers that ship with wstrio and the routes ``python -m wstrio`` serves."""

from __future__ import annotations

from importlib import resources

from .._conn.session import Session
from .._http.routes import Route, Routes, Static
from .._rooms.hub import Hub
from .chat import Chat


async def echo(session: Session) -> None:
    """Send every message back, text as text and binary as binary."""
    async for message in session:
        await session.send(message)


def page() -> Static:
    """The browser page: an echo panel and a chat panel, for ``/``."""
    return Static(resources.files("wstrio").joinpath("static/index.html").read_bytes())


def default_routes(chat: Chat | None = None) -> Routes:
    """The routes of ``python -m wstrio``: the page, echo and chat."""
    return {
        "/": page(),
        "/ws/echo": echo,
        "/ws/chat": Route(chat if chat is not None else Chat(Hub()), accepts="text"),
    }
