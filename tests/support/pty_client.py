"""A program run on a pseudo-terminal, for tests of interactive command lines."""

from __future__ import annotations

import contextlib
import fcntl
import os
import termios
from collections.abc import AsyncIterator, Sequence

import trio

#: The pty answers no cursor-position request: prompt_toolkit must not wait for one.
PTY_ENV = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1"}


def _controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """The master side of a pty: what the program wrote so far (``seen``), and typing."""

    def __init__(self, proc: trio.Process, master: trio.lowlevel.FdStream) -> None:
        self.proc = proc
        self.seen = b""
        self._master = master

    async def expect(self, text: bytes, count: int = 1) -> None:
        """Read until ``text`` has appeared ``count`` times in all output so far."""
        while self.seen.count(text) < count:
            self.seen += await self._master.receive_some()

    async def read(self) -> None:
        """Read what the program writes next (at least a byte)."""
        self.seen += await self._master.receive_some()

    async def type(self, keys: bytes) -> None:
        await self._master.send_all(keys)

    async def read_to_end(self) -> None:
        """Read what is left once the program has exited (the pty then reports EIO)."""
        with contextlib.suppress(trio.BrokenResourceError):
            while chunk := await self._master.receive_some():
                self.seen += chunk


@contextlib.asynccontextmanager
async def on_a_pty(command: Sequence[str], *, controlling: bool = False) -> AsyncIterator[Terminal]:
    """Run ``command`` with a pty as stdin, stdout and stderr (with ``controlling``, also its
    controlling terminal, so Ctrl-C typed becomes SIGINT); killed when the block ends."""
    master, slave = os.openpty()
    extra = {"start_new_session": True, "preexec_fn": _controlling_terminal} if controlling else {}
    proc = await trio.lowlevel.open_process(
        list(command), stdin=slave, stdout=slave, stderr=slave, env=PTY_ENV, **extra
    )
    os.close(slave)
    terminal = trio.lowlevel.FdStream(master)
    try:
        yield Terminal(proc, terminal)
    finally:
        proc.kill()
        await proc.wait()
        await terminal.aclose()
