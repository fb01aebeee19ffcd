"""The application the worker tests serve: ``/ws/pid`` says which process serves it."""

from __future__ import annotations

import os

import wstrio


async def pid(session: wstrio.Session) -> None:
    """Send this process's pid, then echo."""
    await session.send(str(os.getpid()))
    async for message in session:
        await session.send(message)


routes = {"/ws/pid": pid, "/ws/echo": wstrio.echo}


def broken() -> object:
    """A factory that fails in every worker."""
    raise RuntimeError("this application cannot start")
