"""Small shared helpers for the test suite."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def count_tasks() -> int:
    """Every task alive in this trio run, found by walking the task tree."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    todo = [root]
    seen = 0
    while todo:
        task = todo.pop()
        seen += 1
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return seen


def count_fds() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def task_names() -> list[str]:
    """Names of every live task (for leak diagnostics)."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    todo, names = [root], []
    while todo:
        task = todo.pop()
        names.append(task.name)
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return sorted(names)


async def start_stoppable(nursery: trio.Nursery, server: object) -> tuple[int, trio.CancelScope]:
    """Start ``server.run(port=0)`` in ``nursery``; cancel the scope to stop only it."""
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[int]) -> None:
        with scope:
            await server.run(port=0, task_status=task_status)  # type: ignore[attr-defined]

    return await nursery.start(run), scope


@contextlib.asynccontextmanager
async def serving(routes: object, config: object = None) -> AsyncIterator[int]:
    """A wstrio server for ``routes`` on a free loopback port while the block runs."""
    import wstrio

    server = wstrio.Server(routes, config=config or wstrio.Config())  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        port, stop = await start_stoppable(nursery, server)
        yield port
        stop.cancel()


async def http_get(port: int, path: str) -> tuple[bytes, bytes]:
    """GET ``path`` from 127.0.0.1 with Connection: close; (head, body)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    response = b""
    async with stream:
        await stream.send_all(request.encode())
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return head, body


def python_blocks(path: Path) -> list[str]:
    """The ```python code blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```", path.read_text(), re.M | re.S)


def run_block(code: str, name: str = "doc_sample") -> dict[str, Any]:
    """Execute a code block as a module that is not __main__; its namespace."""
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(code, name, "exec"), namespace)
    return namespace
