"""Helpers of the worker tests: a pool's process, /healthz, which workers answer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import attrs
import trio
from helpers import http_get

HERE = Path(__file__).resolve().parent
#: The test application: /ws/pid says which process serves the session.
APP = ("--app-dir", str(HERE), "workerapp:routes")


@attrs.define
class Pool:
    """A running ``serve --workers`` parent process."""

    proc: trio.Process
    port: int
    log: Path

    def log_text(self) -> str:
        return _text(self.log)

    async def stop(self, signum: int) -> int:
        """Send ``signum``; the exit status (bounded)."""
        self.proc.send_signal(signum)
        with trio.fail_after(20):
            return await self.proc.wait()


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


async def open_pool(log: Path, *options: str) -> Pool:
    """Start ``serve --port 0 OPTIONS``; return once it printed its URL (all workers serve)."""
    command = [sys.executable, "-m", "wstrio", "serve", "--port", "0", *options]
    with log.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL
        )
    assert proc.stdout is not None
    line = b""
    with trio.fail_after(30):
        while not line.endswith(b"\n"):
            chunk = await proc.stdout.receive_some(1)
            if not chunk:
                proc.kill()
                raise AssertionError(f"exited early: {_text(log)}")
            line += chunk
    found = re.search(r"127\.0\.0\.1:(\d+)/", line.decode())
    assert found, line
    return Pool(proc, int(found.group(1)), log)


async def healthz(port: int) -> dict[str, object]:
    head, body = await http_get(port, "/healthz")
    assert head.startswith(b"HTTP/1.1 200"), head
    data: dict[str, object] = json.loads(body)
    return data


async def worker_pids(port: int, wanted: int = 2) -> dict[int, int]:
    """Worker number -> pid, asking /healthz until ``wanted`` numbers have answered (each
    request is a new connection, which the kernel hashes to one worker or another)."""
    seen: dict[int, int] = {}
    with trio.fail_after(10):
        while len(seen) < wanted:
            health = await healthz(port)
            seen[int(health["worker"])] = int(health["pid"])  # type: ignore[call-overload]
    return seen
