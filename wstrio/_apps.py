"""Handlers that ship with wstrio and the routes ``python -m wstrio`` serves."""

from __future__ import annotations

from ._routes import Routes
from ._session import Session


async def echo(session: Session) -> None:
    """Send every message back, text as text and binary as binary."""
    async for message in session:
        await session.send(message)


def default_routes() -> Routes:
    """The routes of ``python -m wstrio``."""
    return {"/ws/echo": echo}
