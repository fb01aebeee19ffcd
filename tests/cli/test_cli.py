"""`python -m wstrio`: prints its URL, echoes, and stops cleanly on Ctrl-C with 1001."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys

import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import connect


async def test_cli_serves_echo_and_stops_on_sigint() -> None:
    """SIGINT: open sessions get 1001, the process logs the close and exits 0."""
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "wstrio", "serve", "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = b""
            while not line.endswith(b"\n"):
                line += await proc.stdout.receive_some(1)
            url = re.search(r"ws://127\.0\.0\.1:\d+/ws/echo", line.decode())
            assert url, line
            async with connect(url.group(0)) as ws:
                await ws.send("ping me")
                assert await ws.recv() == "ping me"
                proc.send_signal(signal.SIGINT)
                with contextlib.suppress(ConnectionClosed):
                    await ws.recv()
            assert (ws.close_code, ws.close_reason) == (1001, "going away")
            assert await proc.wait() == 0
            log = b""
            while chunk := await proc.stderr.receive_some():
                log += chunk
        finally:
            proc.kill()
            await proc.wait()
    assert b"open /ws/echo" in log and b"1001 going away" in log


def test_help_exits_zero() -> None:
    """--help on the command and on serve exits 0 and lists options with defaults."""
    for args in (["--help"], ["serve", "--help"]):
        result = subprocess.run([sys.executable, "-m", "wstrio", *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0
    assert "--ping-interval" in result.stdout and "default: 20.0" in result.stdout


def test_bad_config_option_is_a_clear_error() -> None:
    """A nonsense option value exits 2 with the reason, not a traceback."""
    result = subprocess.run([sys.executable, "-m", "wstrio", "--inbox-size", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "inbox_size" in result.stderr and "Traceback" not in result.stderr
