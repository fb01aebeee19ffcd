"""``RedisServer``: a real ``redis-server`` of a test's (or a benchmark's) own, on a unix
socket in a directory it is given, with no persistence; never the system service."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


class RedisServer:
    """A ``redis-server`` process for :class:`wstrio.RedisBus` tests: ``start()``, ``stop()``
    (``kill=True``: SIGKILL), and ``url`` (``unix://<directory>/redis.sock``), which stays
    the same across a restart as a real server's address would. RuntimeError if
    ``redis-server`` is not installed or does not start within 10 seconds."""

    def __init__(self, directory: Path) -> None:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(executable).exists():
            raise RuntimeError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        self.executable = executable
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and return once it accepts connections (10 s at most)."""
        self.process = subprocess.Popen(
            [self.executable, "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(self.socket))
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.01)  # a start-up poll of another process, not a wait for a result
        raise RuntimeError(f"redis-server did not start (status {self.process.poll()})")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGKILL if ``kill``) and wait for it to exit."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=10)
        self.process = None
        self.socket.unlink(missing_ok=True)
