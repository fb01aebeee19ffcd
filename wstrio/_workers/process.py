"""The parent's handle on one worker process: start, readiness, signals, exit status."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable

import trio

from .worker import Worker, run_worker

_SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked Trio state


def describe(status: int | None) -> str:
    """``exit status 1`` or ``killed by SIGKILL``, from ``multiprocessing``'s exit code."""
    if status is None:
        return "still running"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


class WorkerProcess:
    """One worker process of a pool, from start to exit (one per start: a restart is a new
    one with the same number)."""

    def __init__(
        self,
        number: int,
        target: Callable[[Worker], object],
        sockets: tuple[socket.socket, ...],
    ) -> None:
        self.number = number
        self.retiring = False  # told to stop for a rolling restart
        self.exited = trio.Event()  # set once reaped (by the pool's watcher of this process)
        self.exitcode: int | None = None
        self.pid = 0  # once started
        self.started_at = trio.current_time()
        self._ready_read, ready_write = _SPAWN.Pipe(duplex=False)
        level = logging.getLogger("wstrio").getEffectiveLevel()
        worker = Worker(number, sockets, ready_write, level)
        self._process = _SPAWN.Process(
            target=run_worker, args=(target, worker), name=f"wstrio-worker-{number}"
        )
        self._ready_write = ready_write

    def __str__(self) -> str:
        return f"worker {self.number} (pid {self.pid})"

    async def start(self) -> None:
        """Start the process (in a thread: spawning writes the pickled worker to a pipe)."""
        try:
            await trio.to_thread.run_sync(self._process.start)
            self.pid = self._process.pid or 0
        finally:
            self._ready_write.close()  # the child holds the only write end: EOF if it dies

    async def wait_ready(self) -> bool:
        """True once the worker serves; False if it exited (or closed the pipe) first."""
        try:
            await trio.lowlevel.wait_readable(self._ready_read.fileno())
            return self._ready_read.recv_bytes() == b"ready"
        except (EOFError, OSError, trio.ClosedResourceError):  # exited, and reaped already
            return False

    async def wait(self) -> int:
        """Wait for the process to exit and reap it; its exit code (negative: a signal)."""
        await trio.lowlevel.wait_readable(self._process.sentinel)
        self._process.join()  # exited: the sentinel closed, so this returns at once
        self.exitcode = self._process.exitcode
        assert self.exitcode is not None
        self._process.close()
        if not self._ready_read.closed:
            trio.lowlevel.notify_closing(self._ready_read.fileno())  # wakes wait_ready
            self._ready_read.close()
        self.exited.set()
        return self.exitcode

    def signal(self, signum: int) -> None:
        """Send ``signum`` unless the process has been reaped already."""
        if self.exitcode is None and self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)
