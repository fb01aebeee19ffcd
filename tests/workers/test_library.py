"""``wstrio.serve_workers``: the library's entry point, run as a program's main loop."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from websockets.trio.client import connect
from workerpool import healthz, worker_pids

import wstrio

PROGRAM = """\
import logging

import wstrio


def cache_state():
    return "cache: cold"


def make_server():
    server = wstrio.Server({"/ws/echo": wstrio.echo})
    server.add_health_check(cache_state)
    return server


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    wstrio.serve_workers(make_server, workers=2, port=0)
"""


async def test_serve_workers_runs_a_factory_in_two_workers(tmp_path: Path) -> None:
    """A program's factory runs in two workers (its health check too); SIGTERM: exit 0."""
    (tmp_path / "program.py").write_text(PROGRAM)
    proc = await trio.lowlevel.open_process(
        [sys.executable, "program.py"], cwd=tmp_path, stderr=subprocess.PIPE
    )
    log = bytearray()
    listening = trio.Event()

    async def drain() -> None:  # workers log every session: keep the pipe flowing
        assert proc.stderr is not None
        while chunk := await proc.stderr.receive_some():
            log.extend(chunk)
            if b"with 2 workers" in log:
                listening.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            with trio.fail_after(30):
                await listening.wait()
            found = re.search(rb"ws://127\.0\.0\.1:(\d+)/ with 2 workers", log)
            assert found, log
            port = int(found.group(1))
            assert set(await worker_pids(port)) == {1, 2}
            health = await healthz(port)
            assert health["status"] == "degraded" and health["reasons"] == ["cache: cold"]
            async with connect(f"ws://127.0.0.1:{port}/ws/echo") as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(20):
                assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert b"all workers stopped" in log


def test_serve_workers_refuses_bad_arguments_at_once() -> None:
    """Fewer than one worker is a ValueError; an app the workers cannot import (a lambda)
    a TypeError, before anything is bound or started."""
    with pytest.raises(ValueError, match="workers must be an int of at least 1"):
        wstrio.serve_workers(dict, workers=0)
    with pytest.raises(TypeError, match="must be picklable"):
        wstrio.serve_workers(lambda: {"/": wstrio.echo}, workers=2)
