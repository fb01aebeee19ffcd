"""The examples run and do what their docstrings say."""

from __future__ import annotations

import functools
import runpy
from pathlib import Path

import trio
from websockets.trio.client import connect

import wstrio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


async def test_echo_example_echoes(nursery: trio.Nursery) -> None:
    """examples/echo.py's handler echoes text and binary over a real socket."""
    echo = runpy.run_path(str(EXAMPLES / "echo.py"))["echo"]
    port = await nursery.start(functools.partial(wstrio.serve, {"/ws/echo": echo}, port=0))
    async with connect(f"ws://127.0.0.1:{port}/ws/echo") as ws:
        await ws.send("text")
        assert await ws.recv() == "text"
        await ws.send(b"bytes")
        assert await ws.recv() == b"bytes"
