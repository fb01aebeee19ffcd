"""What the interop tests run: wstrio's server under test (in a thread), and the peers' programs.

wstrio's server runs in a thread of the test process (its own ``trio.run``) on 127.0.0.1,
serving the routes every server of the matrix serves (``interop_peers.py`` lists them). Peer
clients run to their end and print their records; peer servers print their port and stop when
their standard input closes.
"""

from __future__ import annotations

import functools
import json
import logging
import select
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from interop_peers import OBSERVING, PONG_TEXT, SUBPROTOCOL

import wstrio

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
GO_SOURCE = HERE / "go" / "peer.go"
BUILD = HERE / ".build"  # gitignored: the Go peer and Go's build cache
GOCODE = Path("/usr/share/gocode")  # Debian's golang-*-dev packages install their source here
PEER_TIMEOUT = 120.0  # seconds: a whole client run, or a server's first line
BOOTSTRAP = "`sh scripts/bootstrap.sh test` installs it"


# ---- wstrio's server under test ----


class Observations:
    """What ``/observe`` saw, by id, for ``/report`` (used inside the server's trio run)."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}
        self.news: dict[str, trio.Event] = {}

    def record(self, key: str, code: int, reason: str) -> None:
        self.seen[key] = {"code": code, "reason": reason}
        self.news.setdefault(key, trio.Event()).set()

    async def wait(self, key: str) -> dict[str, Any]:
        await self.news.setdefault(key, trio.Event()).wait()
        return self.seen[key]


def wstrio_routes(observations: Observations) -> wstrio.Routes:
    """The matrix's routes, as wstrio handlers (``interop_peers.py`` says what each does)."""

    async def close(session: wstrio.Session) -> None:
        await session.close(int(session.query["code"]), session.query.get("reason", ""))

    async def observe(session: wstrio.Session) -> None:
        await session.send(OBSERVING)
        while True:
            try:
                await session.receive()
            except wstrio.ConnectionClosed as closed:
                observations.record(session.query["id"], closed.code, closed.reason)
                return

    async def report(session: wstrio.Session) -> None:
        with trio.fail_after(30):
            seen = await observations.wait(session.query["id"])
        await session.send(json.dumps(seen, ensure_ascii=False))

    async def ping(session: wstrio.Session) -> None:
        if session.path == "/ping":
            await session.receive()  # the client's first message
        with trio.fail_after(30):
            await session.ping()  # returns once our ping's pong arrived
        await session.send(PONG_TEXT)
        async for _ in session:
            pass

    async def proto(session: wstrio.Session) -> None:
        await session.send(session.subprotocol or "")
        async for _ in session:
            pass

    return {
        "/": wstrio.Static("<!doctype html><title>wstrio interop</title>"),
        "/echo": wstrio.echo,
        "/close": close,
        "/observe": observe,
        "/report": report,
        "/ping": ping,
        "/ping-at-once": ping,
        "/proto": wstrio.Route(proto, subprotocols=(SUBPROTOCOL,)),
    }


class ThreadServer:
    """``wstrio.serve`` in a thread of its own; ``url`` is its ``ws://`` base."""

    def __init__(self, config: wstrio.Config) -> None:
        self.config = config
        self.port = 0
        self.errors: list[BaseException] = []
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=self._run, name="wstrio-under-test", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self._started.set()

    async def _main(self) -> None:
        routes = wstrio_routes(Observations())
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self._scope:
            async with trio.open_nursery() as nursery:
                serve = functools.partial(wstrio.serve, routes, port=0, config=self.config)
                self.port = await nursery.start(serve)
                self._started.set()

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(30) or not self.port:
            raise RuntimeError(f"wstrio's server did not start: {self.errors}")

    def stop(self) -> None:
        """Cancel the server (its sessions get 1001) and wait for the thread."""
        if self._token is not None and self._scope is not None:
            trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(30)
        assert not self._thread.is_alive(), "wstrio's server did not stop"


class Problems(logging.Handler):
    """Keeps every record at WARNING or above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# ---- the peers' programs ----


def read_line(proc: subprocess.Popen[str], deadline: float) -> str:
    """The next line ``proc`` writes on stdout, or "" at its end or past ``deadline``."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
    return proc.stdout.readline() if ready else ""


def run_client(command: list[str], log: Path) -> list[dict[str, Any]]:
    """Run a peer's client to its end (bounded) and return the records it printed."""
    with log.open("w") as stderr:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=PEER_TIMEOUT,
            cwd=HERE,
        )
    assert done.returncode == 0, f"{command} exited with {done.returncode}:\n{log.read_text()}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


class PeerServer:
    """A peer's server process: started, its port read from its first line; it stops when
    its standard input closes (killed if it does not within a few seconds)."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        self._stderr = log.open("w")
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=HERE,
        )
        line = read_line(self.proc, time.monotonic() + PEER_TIMEOUT)
        if not line:
            self.stop()
            pytest.fail(f"{command} did not start:\n{log.read_text()}")
        self.url = f"ws://127.0.0.1:{json.loads(line)['port']}"

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()
