"""The examples run and do what their docstrings say."""

from __future__ import annotations

import functools
import json
import runpy
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from helpers import free_port, http_get
from websockets.trio.client import connect

import wstrio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@asynccontextmanager
async def _bounded() -> AsyncIterator[None]:
    """Fail instead of hanging if a reply never comes."""
    with trio.fail_after(10):
        yield


async def test_echo_example_echoes(nursery: trio.Nursery) -> None:
    """examples/echo.py's handler echoes text and binary over a real socket."""
    echo = runpy.run_path(str(EXAMPLES / "echo.py"))["echo"]
    port = await nursery.start(functools.partial(wstrio.serve, {"/ws/echo": echo}, port=0))
    async with connect(f"ws://127.0.0.1:{port}/ws/echo") as ws, _bounded():
        await ws.send("text")
        assert await ws.recv() == "text"
        await ws.send(b"bytes")
        assert await ws.recv() == b"bytes"


async def test_chat_example_serves_page_and_chat(nursery: trio.Nursery) -> None:
    """examples/chat.py serves the page at / and a working chat room."""
    example = runpy.run_path(str(EXAMPLES / "chat.py"))
    routes = example["routes"](wstrio.Hub())
    port = await nursery.start(functools.partial(wstrio.serve, routes, port=0))
    async with connect(f"ws://127.0.0.1:{port}/ws/chat?room=x&name=ada") as ws, _bounded():
        assert json.loads(await ws.recv())["members"] == ["ada"]
        await ws.send(json.dumps({"type": "message", "text": "hi"}))
        assert json.loads(await ws.recv())["text"] == "hi"
    head, body = await http_get(port, "/")
    assert head.startswith(b"HTTP/1.1 200") and b"text/html" in head and b"/ws/chat" in body


async def test_ticker_example_pushes_updates_of_the_symbols_asked_for(
    nursery: trio.Nursery,
) -> None:
    """examples/ticker.py sends each subscriber updates of its symbols only, in order."""
    example = runpy.run_path(str(EXAMPLES / "ticker.py"))
    ticker = example["Ticker"](wstrio.Hub(policy="drop_oldest"), interval=0.01, seed=1)
    routes = {"/ws/ticker": ticker.subscribe}
    port = await nursery.start(functools.partial(wstrio.serve, routes, port=0))
    nursery.start_soon(ticker.publish)
    async with connect(f"ws://127.0.0.1:{port}/ws/ticker?symbols=ACME,TYRELL") as ws, _bounded():
        updates = [json.loads(await ws.recv()) for _ in range(6)]
    assert {update["symbol"] for update in updates} == {"ACME", "TYRELL"}
    serials = [update["serial"] for update in updates if update["symbol"] == "ACME"]
    assert serials == sorted(serials) and all(update["price"] > 0 for update in updates)
    async with connect(f"ws://127.0.0.1:{port}/ws/ticker?symbols=NOPE") as ws:
        with trio.fail_after(5):
            await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (1008, "unknown symbols: NOPE")


async def test_authchat_refuses_bad_tokens_and_chats_by_room(
    autojump_clock: trio.abc.Clock,
) -> None:
    """examples/authchat: 401 before the upgrade for a bad token, names from the hook's state,
    rooms from the path, the page and its script from the static directory (test kit)."""
    example = runpy.run_path(str(EXAMPLES / "authchat" / "app.py"))
    hub = wstrio.Hub()
    async with wstrio.testing.open_memory_server(example["routes"](hub)) as server:
        page = await server.request("GET", "/")
        script = await server.request("GET", "/app.js")
        assert page.status == 200 and b'<script src="app.js">' in page.body
        assert script.status == 200 and b"new WebSocket" in script.body
        for bad in ("/c/lobby", "/c/lobby?token=nope", "/c/lobby?token=%C3%A9"):
            try:
                async with server.connect(bad):
                    raise AssertionError("a bad token was accepted")
            except wstrio.HandshakeRejected as exc:
                assert exc.status == 401 and exc.header("www-authenticate")
        cookie = [("Cookie", "token=bob-token")]
        async with (
            server.connect("/c/lobby?token=ann-token") as ann,
            server.connect("/c/lobby", headers=cookie) as bob,
            server.connect("/c/other", headers=[("Authorization", "Bearer bob-token")]) as far,
        ):
            assert await ann.receive_json() == {"joined": "ann"}
            assert await ann.receive_json() == {"joined": "bob"}
            assert await bob.receive_json() == {"joined": "bob"}
            assert await far.receive_json() == {"joined": "bob"}
            await ann.send("hello")
            assert await bob.receive_json() == {"from": "ann", "text": "hello"}
            assert await ann.receive_json() == {"from": "ann", "text": "hello"}
            await trio.testing.wait_all_tasks_blocked()
            assert far.statistics().inbox_used == 0  # another room heard nothing



@pytest.mark.parametrize("name", ["echo.py", "chat.py", "ticker.py"])
async def test_examples_stop_gracefully_on_sigterm(name: str) -> None:
    """Run as programs, each example closes its sessions with 1001 on SIGTERM and exits 0."""
    path = {"echo.py": "/ws/echo", "chat.py": "/ws/chat?room=r&name=a", "ticker.py": "/ws/ticker"}
    port = free_port()
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(
            [sys.executable, str(EXAMPLES / name), str(port)], stderr=subprocess.PIPE
        )
        try:
            assert proc.stderr is not None
            log = b""
            while f"listening on ws://127.0.0.1:{port}/".encode() not in log:  # start-up line
                chunk = await proc.stderr.receive_some(4096)
                assert chunk, log
                log += chunk
            async with wstrio.connect(f"ws://127.0.0.1:{port}{path[name]}") as session:
                proc.send_signal(signal.SIGTERM)
                closed = await session.wait_closed()
            assert (closed.code, closed.reason) == (1001, "going away")
            assert await proc.wait() == 0
        finally:
            proc.kill()
            await proc.wait()
