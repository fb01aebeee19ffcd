"""``serve --log-format json``: one JSON object per line; each connection's records carry its
number, peer and path, and the close line its code, reason, ending and duration."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import trio

import wstrio


async def test_json_logs_carry_the_connection_fields() -> None:
    """The listen line names the URL; open and close lines share the connection's fields."""
    command = [sys.executable, "-m", "wstrio", "serve", "--port", "0", "--log-format", "json"]
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(command, stderr=subprocess.PIPE)
        try:
            assert proc.stderr is not None
            log = b""
            while b"listening on" not in log:
                chunk = await proc.stderr.receive_some(4096)
                assert chunk, log
                log += chunk
            url = re.search(rb"ws://127\.0\.0\.1:\d+/", log)
            assert url
            async with wstrio.connect(url.group(0).decode() + "ws/echo") as session:
                await session.send("hi")
                assert await session.receive() == "hi"
            proc.send_signal(signal.SIGINT)
            assert await proc.wait() == 0
            while chunk := await proc.stderr.receive_some(4096):
                log += chunk
        finally:
            proc.kill()
            await proc.wait()
    records = [json.loads(line) for line in log.decode().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    (listening,) = [r for r in records if r["message"].startswith("listening on")]
    assert listening["url"].startswith("ws://127.0.0.1:") and listening["logger"] == "wstrio.server"
    opened = next(r for r in records if r["message"].startswith("open /ws/echo"))
    closed = next(r for r in records if r["message"].startswith("close /ws/echo"))
    assert opened["connection"] == closed["connection"] and isinstance(opened["connection"], int)
    assert opened["peer"] == closed["peer"] and opened["peer"].startswith("127.0.0.1:")
    assert opened["path"] == closed["path"] == "/ws/echo"
    assert (closed["code"], closed["ending"], closed["aborted"]) == (1000, "peer closed", False)
    assert closed["duration"] >= 0 and closed["level"] == "INFO"
    assert not [r for r in records if r["level"] in ("WARNING", "ERROR", "CRITICAL")]
