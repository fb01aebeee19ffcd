"""The interop matrix (issue 15): implementations nobody here wrote, over 127.0.0.1.

Clients → wstrio's server: headless Chromium (Debian's, driven by Playwright), Node's ``ws``,
gorilla/websocket (Go), the ``websockets`` package (asyncio and trio) and trio-websocket each
run the six checks of ``interop_peers.py`` against one wstrio server. wstrio's client →
servers: wstrio's client runs the same checks against each of those libraries' servers.
Each test fills one row of the matrix and fails if any of its cells failed; the last test checks
that docs/reference/interop.md shows the matrix this run saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import matrix
import pytest
import trio
from chromium import CHROMIUM, CHROMIUM_ARGS
from interop_peers import MAX_MESSAGE, Conn, Message, PeerClosed, run_checks
from interop_support import HERE, NODE_DIR, PeerServer, ThreadServer, run_client
from playwright.sync_api import sync_playwright

import wstrio

PEERS_PY = str(HERE / "interop_peers.py")
PYTHON_IMPL = {
    "websockets (asyncio)": "websockets-asyncio",
    "websockets (trio)": "websockets-trio",
    "trio-websocket": "trio-websocket",
}
CLIENT_CONFIG = wstrio.Config(max_message_size=MAX_MESSAGE, ping_interval=None)
#: wstrio's client settings for the servers in matrix.CLIENT_SETTINGS.
SERVER_CLIENT_CONFIG = {"gorilla": wstrio.Config(
    max_message_size=MAX_MESSAGE, ping_interval=None, compression_window_bits=15
)}  # fmt: skip


def prefix_for(peer: str) -> str:
    """A fresh prefix for a run's ``/observe`` ids."""
    return peer.replace(" ", "-").strip("()") + "-" + uuid.uuid4().hex[:8]


def debian_version(package: str) -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True
    )
    return done.stdout.strip() or "?"


def ws_version() -> str:
    return str(json.loads((NODE_DIR / "node_modules/ws/package.json").read_text())["version"])


# ---- clients → wstrio's server ----


def chromium_records(server: ThreadServer, prefix: str, results: matrix.Results) -> list[Any]:
    """The checks of ``node/checks.js`` in a page wstrio served, with the browser's WebSocket."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (bootstrap.sh test does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            results.versions["Chromium"] = browser.version
            page = browser.new_page()
            page.goto(server.url.replace("ws://", "http://") + "/")
            page.add_script_tag(path=str(NODE_DIR / "checks.js"))
            records: list[Any] = page.evaluate(
                "([base, prefix]) => runChecks(WebSocket, base, prefix)", [server.url, prefix]
            )
        finally:
            browser.close()
    return records


def client_records(
    peer: str, server: ThreadServer, request: pytest.FixtureRequest, tmp_path: Path
) -> list[Any]:
    """Run ``peer``'s client against wstrio's server; its records."""
    prefix, results = prefix_for(peer), request.getfixturevalue("results")
    if peer == "Chromium":
        return chromium_records(server, prefix, results)
    if peer == "Node ws":
        node = request.getfixturevalue("node_peer")
        results.versions["Node ws"] = ws_version()
        command = ["node", str(node / "client.js"), server.url, prefix]
    elif peer == "gorilla":
        results.versions["gorilla"] = debian_version("golang-github-gorilla-websocket-dev")
        command = [str(request.getfixturevalue("go_peer")), "client", server.url, prefix]
    else:
        command = [sys.executable, PEERS_PY, "client", PYTHON_IMPL[peer], server.url, prefix]
    return run_client(command, tmp_path / "client.log")


@pytest.mark.parametrize("peer", matrix.CLIENT_PEERS)
def test_client_against_wstrio_server(
    peer: str,
    wstrio_server: ThreadServer,
    results: matrix.Results,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """Every check passes, or the peer cannot take part for a reason the matrix documents."""
    records = client_records(peer, wstrio_server, request, tmp_path)
    cells = matrix.evaluate("server", peer, records)
    results.add("server", peer, cells)
    failed = {column: cell.note for column, cell in cells.items() if cell.status == "fail"}
    assert failed == {}, json.dumps(records, ensure_ascii=False, indent=1)


# ---- wstrio's client → servers ----


class WstrioConn:
    """A session of wstrio's client, as the checks use a connection."""

    def __init__(self, session: wstrio.Session) -> None:
        self._session = session
        self.subprotocol = session.subprotocol
        self.extensions = session.headers.get("sec-websocket-extensions") or ""

    async def send(self, message: Message) -> None:
        await self._session.send(message)

    async def recv(self) -> Message:
        try:
            return await self._session.receive()
        except wstrio.ConnectionClosed as closed:
            raise PeerClosed(closed.code, closed.reason) from None

    async def ping(self, data: bytes) -> bool:
        await self._session.ping()  # wstrio picks its own payload; returns on its pong
        return True

    async def close(self, code: int, reason: str) -> None:
        await self._session.close(code, reason)


class FirstReadTogether(trio.abc.Stream):
    """A TCP stream whose first read returns the server's response head together with the
    start of the frame the server sent right after it, as a read on a busy machine may: what
    a server that speaks first looks like to wstrio's client, every time."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._first = True

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._first:
            return bytes(await self._stream.receive_some(max_bytes))
        self._first = False
        data = b""
        while (end := data.find(b"\r\n\r\n")) < 0 or len(data) < end + 6:
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()


async def open_first_read_together(target: Any) -> trio.abc.Stream:
    return FirstReadTogether(await trio.open_tcp_stream(target.host, target.port))


class WstrioClient:
    """``wstrio.connect`` with ``config``; to a server that speaks first, through
    :class:`FirstReadTogether`."""

    def __init__(self, config: wstrio.Config) -> None:
        self.config = config

    @asynccontextmanager
    async def connect(
        self, url: str, subprotocols: tuple[str, ...] = (), *, speaks_first: bool = False
    ) -> AsyncIterator[Conn]:
        opener = open_first_read_together if speaks_first else None
        async with wstrio.connect(
            url, config=self.config, subprotocols=subprotocols, opener=opener
        ) as session:
            yield WstrioConn(session)

    @asynccontextmanager
    async def deadline(self, seconds: float) -> AsyncIterator[object]:
        with trio.fail_after(seconds):
            yield None


async def default_offer(url: str) -> str:
    """How wstrio's client with the default compression settings fares at ``url``."""
    try:
        async with wstrio.connect(url + "/echo", config=CLIENT_CONFIG) as session:
            await session.send("hello")
            await session.receive()
    except wstrio.ConnectError as exc:
        return f"ConnectError ({str(exc).split(': ', 1)[1]})"
    return "connected"


def server_command(peer: str, request: pytest.FixtureRequest) -> list[str]:
    """The command line of ``peer``'s server; records its version."""
    results = request.getfixturevalue("results")
    if peer == "Node ws":
        results.versions["Node ws"] = ws_version()
        return ["node", str(request.getfixturevalue("node_peer") / "server.js")]
    if peer == "gorilla":
        results.versions["gorilla"] = debian_version("golang-github-gorilla-websocket-dev")
        return [str(request.getfixturevalue("go_peer")), "server"]
    return [sys.executable, PEERS_PY, "server", PYTHON_IMPL[peer]]


@pytest.mark.parametrize("peer", matrix.SERVER_PEERS)
def test_wstrio_client_against_server(
    peer: str, results: matrix.Results, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Every check passes, or the peer cannot take part for a reason the matrix documents."""
    server = PeerServer(server_command(peer, request), tmp_path / "server.log")
    try:
        config = SERVER_CLIENT_CONFIG.get(peer, CLIENT_CONFIG)
        records = trio.run(run_checks, WstrioClient(config), server.url, prefix_for(peer))
        offer = trio.run(default_offer, server.url) if peer in matrix.CLIENT_SETTINGS else ""
    finally:
        server.stop()
    cells = matrix.evaluate("client", peer, records, default_offer=offer)
    results.add("client", peer, cells)
    failed = {column: cell.note for column, cell in cells.items() if cell.status == "fail"}
    assert failed == {}, json.dumps(records, ensure_ascii=False, indent=1)


# ---- the page ----


def test_docs_show_the_matrix_this_run_saw(
    results: matrix.Results, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """docs/reference/interop.md holds the matrix rendered from this run's cells (with
    WSTRIO_INTEROP_WRITE=1 it is rewritten instead, when no cell failed)."""
    if not results.complete():
        pytest.skip("the matrix is complete only when every test of this module ran")
    table = matrix.render(results)
    seen = tmp_path_factory.mktemp("interop") / "matrix.md"
    seen.write_text(table)
    if os.environ.get(matrix.WRITE_ENV) == "1":
        assert results.failures() == [], "a matrix with failures is not written"
        matrix.write_docs(table)
    assert matrix.docs_block() == table, (
        f"{matrix.DOCS} does not show the matrix this run saw ({seen}); if the change is "
        "expected: python -m tests.interop.matrix --write"
    )
